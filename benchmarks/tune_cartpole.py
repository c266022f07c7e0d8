"""The tuning issue's target study on CartPole-v1, and what it buys:

    python benchmarks/tune_cartpole.py                      # 40 trials x 50,000 env steps, twice; then 10 seed runs
    python benchmarks/tune_cartpole.py --trials 3 --steps 2000 --seeds 101   # a smoke test (about a minute)

1. a TPE study with the median pruner (``tune.py --sampler tpe --pruner median --objective auc``:
   the mean of the periodic evaluations rewards reaching 475 early, which is what is measured);
2. the same study without pruning (``--pruner none``), to compare the env steps the two spent;
3. the best config of study 1 (its best.yaml) and the shipped preset, each trained on the same
   fresh seeds (not the seed the trials used): the median env steps to the first greedy
   evaluation >= 475 (the preset's recorded figure is 17,500; the target is to beat it).

Trials and seed runs use one torch thread each, ``--workers`` at a time. Writes JSON
(default ``benchmarks/results/tune_cartpole.json``) and leaves the studies in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, median_iqr, print_table, write_json  # noqa: E402
from benchmarks.presets import run_seed  # noqa: E402

PRESET_STEPS_TO_475 = 17_500  # README, Results: the DQN preset's median over 5 seeds
EVAL_EVERY = 2_500  # env steps, as in the preset (fewer for a smoke test's short trials)


def eval_every(steps: int) -> int:
    return min(EVAL_EVERY, max(1, steps // 4))


def run_study(out: Path, *, pruner: str, trials: int, steps: int, workers: int) -> dict:
    """One tune.py study (in this process; its workers are processes); its trials' env steps and time."""
    from dqn_family import tune

    started = time.perf_counter()
    code = tune.main(
        [
            "--env",
            "CartPole-v1",
            "--algo",
            "dqn",
            "--trials",
            str(trials),
            "--sampler",
            "tpe",
            "--pruner",
            pruner,
            "--objective",
            "auc",
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--total-steps",
            str(steps),
            "--eval-frequency",
            str(eval_every(steps)),
            "--eval-episodes",
            "20",
            "--checkpoint-every",
            "0",
            "--device",
            "cpu",
        ]
    )
    summaries = [json.loads(path.read_text()) for path in sorted(out.glob("trial_*/summary.json"))]
    return {
        "out": str(out),
        "exit_code": code,
        "pruner": pruner,
        "seconds": round(time.perf_counter() - started, 1),
        "trials_with_summary": len(summaries),
        "pruned": sum(bool(s.get("stopped_early")) for s in summaries),
        "env_steps": sum(s["env_steps"] for s in summaries),
    }


def run_seeds(config_file: str | None, seeds: list[int], root: Path, workers: int, steps: int) -> list[dict]:
    """The config (best.yaml, or the preset when None) trained on each seed for ``steps`` env steps."""
    name = "preset" if config_file is None else "best"
    fixed = {
        "env_id": "CartPole-v1",
        "algo": "dqn",
        "device": "cpu",
        "total_steps": steps,
        "eval_frequency": eval_every(steps),
        "eval_episodes": 20,
    }
    jobs = [({**fixed, "seed": seed}, config_file, str(root / f"{name}_s{seed}")) for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(run_seed, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40, help="Finished trials per study (default: 40).")
    parser.add_argument("--steps", type=int, default=50_000, help="Env steps per trial (default: 50,000).")
    parser.add_argument("--workers", type=int, default=2, help="Trials or seed runs at once (default: 2).")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[101, 102, 103, 104, 105],
        help="Fresh seeds for the best config and the preset (default: 101-105).",
    )
    parser.add_argument("--no-unpruned", action="store_true", help="Skip the study without pruning.")
    parser.add_argument(
        "--out", default=None, help="Folder of the studies and runs (default: runs/bench/tune_cartpole_<time>)."
    )
    parser.add_argument("--json", default="benchmarks/results/tune_cartpole.json")
    args = parser.parse_args()

    out = Path(args.out or f"runs/bench/tune_cartpole_{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    studies = {
        "pruned": run_study(out / "pruned", pruner="median", trials=args.trials, steps=args.steps, workers=args.workers)
    }
    if not args.no_unpruned:
        studies["unpruned"] = run_study(
            out / "unpruned", pruner="none", trials=args.trials, steps=args.steps, workers=args.workers
        )
    best_yaml = out / "pruned" / "best.yaml"
    runs = {
        "best": run_seeds(str(best_yaml), args.seeds, out / "seeds", args.workers, args.steps)
        if best_yaml.is_file()
        else [],
        "preset": run_seeds(None, args.seeds, out / "seeds", args.workers, args.steps),
    }

    print("\nstudies (TPE, objective auc):")
    print_table(
        ["study", "trials", "pruned", "env steps", "seconds"],
        [
            [name, s["trials_with_summary"], s["pruned"], f"{s['env_steps']:,}", s["seconds"]]
            for name, s in studies.items()
        ],
    )
    print(
        f"\nfresh seeds {args.seeds}: env steps to greedy eval >= 475 (the preset's recorded median: "
        f"{PRESET_STEPS_TO_475:,})"
    )
    print_table(
        ["config", "per seed", "median [IQR]", "final eval median [IQR]"],
        [
            [
                name,
                " ".join(str(r["steps_to_threshold"] or "never") for r in results),
                median_iqr([r["steps_to_threshold"] for r in results]),
                median_iqr([r["final_eval"] for r in results]),
            ]
            for name, results in runs.items()
        ],
    )
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "trials": args.trials,
            "steps_per_trial": args.steps,
            "workers": args.workers,
            "seeds": args.seeds,
            "studies": studies,
            "best_yaml": str(best_yaml),
            "runs": runs,
            "preset_recorded_steps_to_475": PRESET_STEPS_TO_475,
        },
    )


if __name__ == "__main__":
    main()
