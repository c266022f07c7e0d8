"""Action masks on Taxi (issue 23's target: Taxi with the info mask learns at least as fast as without it).

    python benchmarks/masks.py                       # 5 seeds, 100,000 env steps each
    python benchmarks/masks.py --seeds 3 --budget 20000 --workers 2

Gymnasium's Taxi gives ``info["action_mask"]``: moves into walls and pickups/dropoffs that would fail
(-10 each) are illegal. Each seed trains twice with the same settings (TAXI below), once with
``--action-mask info`` and once with ``--action-mask off``; for each: the env steps to the first
periodic greedy evaluation at or above the threshold (Taxi's registered reward threshold, 8) and the
final evaluation (the agent at the end of training; the masked run is evaluated with its mask, the
unmasked one without). Runs go under runs/bench/; prints a table, writes
benchmarks/results/masks_taxi.json (or --out).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, median_iqr, print_table, write_json  # noqa: E402
from dqn_family.analysis.runs import read_scalars  # noqa: E402
from dqn_family.configs import resolve_config  # noqa: E402

ENV = "Taxi-v4"
THRESHOLD = 8.0  # gymnasium's reward_threshold for Taxi
MODES = ("info", "off")
# DQN on Taxi's 500 states (one-hot): the same settings for both modes; budget-dependent ones scale with --budget.
TAXI = {
    "env_id": ENV,
    "hidden_sizes": (64, 64),
    "learning_rate": 1e-3,
    "batch_size": 64,
    "train_frequency": 1,
    "target_update_interval": 500,
    "gamma": 0.99,
    "epsilon_end": 0.05,
    "eval_episodes": 20,
}


def settings(budget: int) -> dict:
    """TAXI with the step counts that follow the budget (eval every 5% of it, exploration over 40%)."""
    return {
        **TAXI,
        "total_steps": budget,
        "buffer_size": min(budget, 50_000),
        "learning_starts": max(budget // 100, 64),
        "epsilon_decay_steps": max(budget * 2 // 5, 1),
        "eval_frequency": max(budget // 20, 1),
        "checkpoint_every": 0,
        "log_frequency": max(budget // 20, 1),
    }


def run_one(job: tuple[dict, str]) -> dict:
    overrides, run_dir = job
    from dqn_family import train  # imported in the worker process

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False}, None)
    result = train.train(config)
    evals = read_scalars(run_dir, "eval/mean_return")
    reached = [step for step, value in evals if value >= THRESHOLD]
    return {
        "seed": config.seed,
        "action_mask": config.action_mask,
        "run_dir": run_dir,
        "total_steps": config.total_steps,
        "steps_to_threshold": reached[0] if reached else None,
        "final_eval": result.final_eval.mean if result.final_eval else None,
        "best_eval": result.best_eval_mean,
        "train_seconds": result.seconds,
        "evals": evals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="Seeds 1..N (default 5).")
    parser.add_argument("--budget", type=int, default=100_000, help="Env steps per run (default 100,000).")
    parser.add_argument("--workers", type=int, default=2, help="Runs in parallel (default 2).")
    parser.add_argument("--out", default="benchmarks/results/masks_taxi.json")
    args = parser.parse_args()
    if args.seeds < 1 or args.budget < 100 or args.workers < 1:
        parser.error("--seeds and --workers must be >= 1 and --budget >= 100")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = settings(args.budget)
    jobs = [
        ({**base, "seed": seed, "action_mask": mode}, f"runs/bench/masks_{ENV}__{mode}__s{seed}__{stamp}")
        for seed in range(1, args.seeds + 1)
        for mode in MODES
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_one, jobs)

    rows = [
        [
            r["seed"],
            r["action_mask"],
            r["steps_to_threshold"] or "never",
            f"{r['final_eval']:.2f}",
            f"{r['best_eval']:.2f}",
            f"{r['train_seconds']:.0f}",
        ]
        for r in results
    ]
    print(f"\n{ENV}, threshold {THRESHOLD}, budget {args.budget:,} env steps")
    print_table(["seed", "action_mask", "steps to threshold", "final eval", "best eval", "train s"], rows)
    summary = {}
    for mode in MODES:
        mine = [r for r in results if r["action_mask"] == mode]
        summary[mode] = {
            "steps_to_threshold": median_iqr([r["steps_to_threshold"] for r in mine]),
            "final_eval": median_iqr([r["final_eval"] for r in mine], digits=2),
            "reached": f"{sum(r['steps_to_threshold'] is not None for r in mine)}/{len(mine)}",
        }
        print(
            f"--action-mask {mode}: steps to threshold, median [IQR] {summary[mode]['steps_to_threshold']} "
            f"(reached {summary[mode]['reached']}); final eval {summary[mode]['final_eval']}"
        )
    write_json(
        args.out,
        {
            "env": ENV,
            "threshold": THRESHOLD,
            "budget": args.budget,
            "settings": {**base, "hidden_sizes": list(base["hidden_sizes"])},
            "summary": summary,
            "results": results,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
