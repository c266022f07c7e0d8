"""Recurrent Q-networks (R2D2-style) on partially observed envs: what issue 15's targets ask for.

    python benchmarks/recurrent.py                      # every part, seeds 1-5, one worker
    python benchmarks/recurrent.py --parts ablation --seeds 1 2 --workers 2
    python benchmarks/recurrent.py --smoke              # a few thousand steps each: checks the script

Parts (each writes benchmarks/results/recurrent_<part>.json and prints a table):

- ``presets``: the recurrent preset (configs/dqn/CartPoleNoVelocity-v1.yaml) against the
  feed-forward DQN preset of CartPole-v1 (configs/dqn/CartPole-v1.yaml, no frame stacking) on
  envs.pomdp:CartPoleNoVelocity-v1, both for 300,000 env steps;
- ``ablation``: the recurrent preset with stored state + burn-in against R2D2's "zero start
  state" strategy (stored_state off, burn_in 0), same budget;
- ``distributed``: distributed R2D2, the recurrent preset plus ``--actors 2`` (Ray actors feeding a
  sequence replay, the learner in this process), same budget; printed beside the presets part's
  single-process runs of the same seeds (from benchmarks/results/recurrent_presets.json). Run it
  with ``--workers 1``: each run starts its own Ray instance with 3 CPUs' worth of processes;
- ``popgym``: the recurrent preset's settings on POPGym's StatelessCartPoleEasy (``popgym``'s
  PositionOnlyCartPoleEasy: cart position and pole angle only, 200-step episodes, each step worth
  0.005 so that a whole episode returns 1.0), at ``--popgym-steps`` (default 300,000). Published:
  Morad et al. 2023, "POPGym: Benchmarking Partially Observable Reinforcement Learning" (ICLR),
  appendix Table 3, MMER (the best mean episodic return seen in training) 1.000 +- 0.000 for PPO
  with a GRU and with an LSTM, 3 trials of 15M env steps each. Run it with ``--seeds 1 2 3``.

Per seed: env steps to the first periodic greedy evaluation >= the threshold (475 for CartPole,
0.999 for StatelessCartPoleEasy, i.e. every evaluation episode lasts its 200 steps),
the final and best evaluation, wall seconds and steps/s. Seeds run in ``--workers`` processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, median_iqr, print_table, write_json  # noqa: E402
from dqn_family.analysis.runs import read_scalars  # noqa: E402
from dqn_family.configs import resolve_config  # noqa: E402
from dqn_family.configs.loading import CONFIG_DIR, read_config_file  # noqa: E402

ENV = "envs.pomdp:CartPoleNoVelocity-v1"
POPGYM_ENV = "envs.popgym_tasks:POPGym-StatelessCartPoleEasy-v0"
THRESHOLDS = {"presets": 475.0, "ablation": 475.0, "distributed": 475.0, "popgym": 0.999}
RESULTS = Path(__file__).resolve().parent / "results"
STEPS = 300_000
SAME_AS_PRESET = "stored_state_burn_in"  # the ablation arm that is exactly the presets part's recurrent_lstm


def variants(popgym_steps: int) -> dict[str, dict[str, dict]]:
    """part -> variant name -> config overrides (over the env presets)."""
    feed_forward = {**read_config_file(CONFIG_DIR / "dqn" / "CartPole-v1.yaml"), "recurrent": "off"}
    return {
        "presets": {
            "recurrent_lstm": {"env_id": ENV},
            "feed_forward_dqn": {**feed_forward, "env_id": ENV, "total_steps": STEPS, "learning_rate_end": 1e-4},
        },
        "ablation": {
            SAME_AS_PRESET: {"env_id": ENV},
            "zero_state_no_burn_in": {"env_id": ENV, "stored_state": False, "burn_in": 0},
        },
        "distributed": {"recurrent_lstm_actors_2": {"env_id": ENV, "actors": 2}},
        "popgym": {
            "recurrent_lstm": {
                **read_config_file(CONFIG_DIR / "dqn" / "CartPoleNoVelocity-v1.yaml"),
                "env_id": POPGYM_ENV,
                "total_steps": popgym_steps,
            },
        },
    }


def run_seed(job: tuple[dict, str, float | None]) -> dict:
    overrides, run_dir, threshold = job
    from dqn_family import train  # imported in the worker process

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False})
    result = train.train(config)
    evals = read_scalars(run_dir, "eval/mean_return")
    reached = [step for step, value in evals if threshold is not None and value >= threshold]
    return {
        "seed": config.seed,
        "run_dir": run_dir,
        "total_steps": config.total_steps,
        "steps_to_threshold": reached[0] if reached else None,
        "final_eval": result.final_eval.mean if result.final_eval else None,
        "best_eval": result.best_eval_mean,
        "train_seconds": result.seconds,
        "steps_per_second": result.env_steps / max(result.seconds, 1e-9),
        "evals": evals,
    }


def run_variant(part: str, name: str, overrides: dict, threshold: float | None, args: argparse.Namespace) -> list:
    jobs = [({**overrides, "seed": seed}, f"{args.runs}/{part}/{name}/s{seed}", threshold) for seed in args.seeds]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            return pool.map(run_seed, jobs)
    return [run_seed(job) for job in jobs]


def earlier_results(path: Path, seeds: list[int]) -> dict[str, list]:
    """Variants already measured in ``path`` on exactly these seeds (kept when only some variants run)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: runs for name, runs in data["results"].items() if [run["seed"] for run in runs] == seeds}


def runs_of_seeds(path: Path, variant: str, seeds: list[int]) -> list[dict] | None:
    """``variant``'s runs of exactly ``seeds`` (in that order) in ``path``, if it has them all."""
    if not path.exists():
        return None
    runs = {run["seed"]: run for run in json.loads(path.read_text())["results"].get(variant, [])}
    return [runs[seed] for seed in seeds] if all(seed in runs for seed in seeds) else None


def summary_row(name: str, seeds: list[dict], threshold: float, digits: int) -> list[str]:
    solved = sum(s["steps_to_threshold"] is not None for s in seeds)
    return [
        name,
        f"{solved}/{len(seeds)}" if threshold else "-",
        median_iqr([s["steps_to_threshold"] for s in seeds if s["steps_to_threshold"] is not None]),
        median_iqr([s["final_eval"] for s in seeds], digits),
        median_iqr([s["best_eval"] for s in seeds], digits),
        median_iqr([s["steps_per_second"] for s in seeds]),
        median_iqr([s["train_seconds"] for s in seeds]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=["presets", "ablation", "distributed", "popgym"], default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--popgym-steps", type=int, default=STEPS)
    parser.add_argument("--variants", nargs="+", default=None, help="Run only these variants (others kept from JSON).")
    parser.add_argument(
        "--rerun-same",
        action="store_true",
        help="Run the ablation's stored-state arm again instead of reusing the presets part's identical runs.",
    )
    parser.add_argument("--runs", default="runs/bench_recurrent", help="Folder for the runs' directories.")
    parser.add_argument("--smoke", action="store_true", help="3,000 steps per run: checks the script, not the targets.")
    args = parser.parse_args(argv)
    parts = args.parts or ["presets", "ablation", "distributed", "popgym"]
    for part in parts:
        threshold = THRESHOLDS[part]
        digits = 3 if threshold < 1 else 0  # POPGym's returns are at most 1
        rows = []
        suffix = "_smoke" if args.smoke else ""
        path = RESULTS / f"recurrent_{part}{suffix}.json"
        results = earlier_results(path, args.seeds)
        for name, overrides in variants(args.popgym_steps)[part].items():
            reused = None
            if part == "distributed":  # beside it, the single-process preset's runs of the same seeds
                single = runs_of_seeds(RESULTS / f"recurrent_presets{suffix}.json", "recurrent_lstm", args.seeds)
                if single is not None:
                    results["single_process_preset"] = single
                    rows.append(summary_row("single_process_preset (presets part)", single, threshold, digits))
            if part == "ablation" and name == SAME_AS_PRESET and not args.rerun_same:
                reused = earlier_results(RESULTS / f"recurrent_presets{suffix}.json", args.seeds).get("recurrent_lstm")
            if reused is not None:
                print(f"ablation/{name}: the presets part's recurrent_lstm runs (the same config and seeds)")
                seeds = reused
            elif args.variants is not None and name not in args.variants:
                if name not in results:
                    continue
                seeds = results[name]  # not asked for: kept as measured before
            else:
                if args.smoke:
                    overrides = {**overrides, "total_steps": 3_000, "learning_starts": 500, "eval_frequency": 1_500}
                    overrides["eval_episodes"] = 2
                seeds = run_variant(part, name, overrides, threshold, args)
            results[name] = seeds
            rows.append(summary_row(name, seeds, threshold, digits))
        print(f"\n{part} ({ENV if part != 'popgym' else POPGYM_ENV}), seeds {args.seeds}")
        print_table(
            ["variant", f">= {threshold:g}", f"steps to {threshold:g}", "final eval", "best eval", "steps/s", "s"], rows
        )
        write_json(path, {"part": part, "seeds": args.seeds, "results": results, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
