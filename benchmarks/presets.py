"""Train a preset over several seeds and report what the issues' quality targets ask for.

    python benchmarks/presets.py --env CartPole-v1 --seeds 1 2 3 4 5
    python benchmarks/presets.py --env LunarLander-v3 --algo dqn --set learning_rate=5e-4

For each seed: env steps and wall seconds to the first periodic greedy evaluation at or above the
env's threshold, and the final evaluation (the agent at the end of training). Seeds run in
``--workers`` processes (one torch thread each). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_iqr, print_table, write_json  # noqa: E402
from dqn_family.analysis.runs import read_scalars  # noqa: E402
from dqn_family.configs import resolve_config  # noqa: E402

THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -120.0, "LunarLander-v3": 200.0}


def run_seed(job: tuple[dict, str | None, str]) -> dict:
    overrides, config_file, run_dir = job
    from dqn_family import train  # imported in the worker process

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False}, config_file)
    result = train.train(config)
    evals = read_scalars(run_dir, "eval/mean_return")
    elapsed = dict(read_scalars(run_dir, "eval/elapsed_seconds"))
    threshold = THRESHOLDS.get(config.env_id)
    reached = [(step, elapsed.get(step)) for step, value in evals if threshold is not None and value >= threshold]
    return {
        "seed": config.seed,
        "run_dir": run_dir,
        "total_steps": config.total_steps,
        "steps_to_threshold": reached[0][0] if reached else None,
        "seconds_to_threshold": reached[0][1] if reached else None,
        "final_eval": result.final_eval.mean if result.final_eval else None,
        "best_eval": result.best_eval_mean,
        "train_seconds": result.seconds,
        "evals": evals,
    }


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        parsed = yaml.safe_load(value)
        overrides[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--algo", default="dqn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--config", default=None, help="YAML applied over the preset.")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="Field overrides.")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/presets_<env>_<algo>.json).")
    args = parser.parse_args()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = {"env_id": args.env, "algo": args.algo, **parse_overrides(args.set)}
    jobs = [
        ({**base, "seed": seed}, args.config, f"runs/bench/{args.env.replace('/', '_')}__{args.algo}__s{seed}__{stamp}")
        for seed in args.seeds
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_seed, jobs)

    threshold = THRESHOLDS.get(args.env)
    rows = [
        [
            r["seed"],
            r["steps_to_threshold"] or "never",
            f"{r['seconds_to_threshold'] or 0:.1f}",
            f"{r['final_eval']:.1f}",
            f"{r['best_eval']:.1f}",
            f"{r['train_seconds']:.0f}",
        ]
        for r in results
    ]
    print(f"\n{args.env} ({args.algo}), threshold {threshold}, overrides {base}")
    print_table(["seed", "steps to threshold", "s to threshold", "final eval", "best eval", "train s"], rows)
    reached = [r["steps_to_threshold"] for r in results]
    final_ok = sum(
        r["final_eval"] is not None and threshold is not None and r["final_eval"] >= threshold for r in results
    )
    print(
        f"steps to threshold, median [IQR]: {median_iqr(reached)}; "
        f"seconds: {median_iqr([r['seconds_to_threshold'] for r in results])}; "
        f"final eval: {median_iqr([r['final_eval'] for r in results])}; "
        f"final >= threshold: {final_ok}/{len(results)} seeds"
    )
    out = args.out or f"benchmarks/results/presets_{args.env.replace('/', '_')}_{args.algo}.json"
    write_json(
        out,
        {
            "env": args.env,
            "algo": args.algo,
            "threshold": threshold,
            "overrides": base,
            "config_file": args.config,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
