"""The tuning issue's target studies, and what they buy (``--env CartPole-v1`` or ``LunarLander-v3``):

    python benchmarks/tune_study.py                        # CartPole: 40 trials x 50,000 env steps, twice; 10 seed runs
    python benchmarks/tune_study.py --env LunarLander-v3 --no-unpruned   # 20 trials x 150,000; 10 runs x 300,000
    python benchmarks/tune_study.py --trials 3 --steps 2000 --seeds 101   # a smoke test (about a minute)

1. a TPE study with the median pruner (``tune.py --sampler tpe --pruner median``; objective
   ``auc`` on CartPole, the mean of the periodic evaluations, which rewards reaching 475 early;
   ``mean-last`` on LunarLander, the mean of the last 3, which is what a final evaluation measures);
2. the same study without pruning (``--pruner none``), to compare the env steps the two spent;
3. the best config of study 1 (its best.yaml) and the shipped preset, each trained on the same
   fresh seeds (not the seed the trials used) for the preset's budget (``--seed-steps``): env steps
   to the first greedy evaluation at the env's threshold, and the final evaluation.

Trials and seed runs use one torch thread each, ``--workers`` at a time. Writes JSON
(default ``benchmarks/results/tune_<env>.json``) and leaves the studies in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, median_iqr, print_table, write_json  # noqa: E402
from benchmarks.presets import THRESHOLDS, run_seed  # noqa: E402


@dataclass(frozen=True)
class Target:
    """One env's study settings: trial budget and evaluation, and the seed runs' (the preset's) budget."""

    objective: str
    trials: int
    steps: int  # env steps a trial
    eval_every: int  # env steps, in trials
    eval_episodes: int
    seed_steps: int  # env steps a seed run: the preset's budget
    seed_eval_every: int


TARGETS = {
    "CartPole-v1": Target("auc", 40, 50_000, 2_500, 20, 50_000, 2_500),
    "LunarLander-v3": Target("mean-last", 20, 150_000, 15_000, 10, 300_000, 20_000),
}


def scaled(every: int, steps: int) -> int:
    """An evaluation interval that gives a short (smoke-test) run at least 4 evaluations."""
    return min(every, max(1, steps // 4))


def run_study(out: Path, env: str, target: Target, *, pruner: str, trials: int, steps: int, workers: int) -> dict:
    """One tune.py study (in this process; its workers are processes); its trials' env steps and time."""
    from dqn_family import tune

    started = time.perf_counter()
    code = tune.main(
        [
            "--env",
            env,
            "--algo",
            "dqn",
            "--trials",
            str(trials),
            "--sampler",
            "tpe",
            "--pruner",
            pruner,
            "--objective",
            target.objective,
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--total-steps",
            str(steps),
            "--eval-frequency",
            str(scaled(target.eval_every, steps)),
            "--eval-episodes",
            str(target.eval_episodes),
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
        "best_value": _best_value(out),
    }


def _best_value(out: Path) -> float | None:
    values = [json.loads(path.read_text()).get("value") for path in out.glob("trial_*/trial.json")]
    finite = [value for value in values if isinstance(value, (int, float))]
    return max(finite) if finite else None


def run_seeds(
    config_file: str | None, env: str, target: Target, seeds: list[int], root: Path, workers: int, steps: int
) -> list[dict]:
    """The config (best.yaml, or the preset when None) trained on each seed for ``steps`` env steps."""
    name = "preset" if config_file is None else "best"
    fixed = {
        "env_id": env,
        "algo": "dqn",
        "device": "cpu",
        "total_steps": steps,
        "eval_frequency": scaled(target.seed_eval_every, steps),
        "eval_episodes": target.eval_episodes,
    }
    root.mkdir(parents=True, exist_ok=True)
    jobs = [({**fixed, "seed": seed}, config_file, str(root / f"{name}_s{seed}")) for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(run_seed, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", choices=sorted(TARGETS))
    parser.add_argument(
        "--trials", type=int, default=None, help="Finished trials per study (CartPole 40, LunarLander 20)."
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="Env steps per trial (CartPole 50,000, LunarLander 150,000)."
    )
    parser.add_argument(
        "--seed-steps",
        type=int,
        default=None,
        help="Env steps per seed run (default: the preset's budget, or --steps when given).",
    )
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
        "--no-preset",
        action="store_true",
        help="Train only the best config on the seeds (compare with the preset's recorded figures).",
    )
    parser.add_argument(
        "--only-unpruned", action="store_true", help="Run only the study without pruning (no seed runs)."
    )
    parser.add_argument(
        "--out", default=None, help="Folder of the studies and runs (default: runs/bench/tune_<env>_<time>)."
    )
    parser.add_argument("--json", default=None, help="Results file (default: benchmarks/results/tune_<env>.json).")
    args = parser.parse_args()

    env, target = args.env, TARGETS[args.env]
    trials = args.trials or target.trials
    steps = args.steps or target.steps
    seed_steps = args.seed_steps or (args.steps or target.seed_steps)
    stem = env.split("-")[0].lower()
    out = Path(args.out or f"runs/bench/tune_{stem}_{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    studies = {}
    if not args.only_unpruned:
        studies["pruned"] = run_study(
            out / "pruned", env, target, pruner="median", trials=trials, steps=steps, workers=args.workers
        )
    if not args.no_unpruned:
        studies["unpruned"] = run_study(
            out / "unpruned", env, target, pruner="none", trials=trials, steps=steps, workers=args.workers
        )
    best_yaml = out / "pruned" / "best.yaml"
    runs = {}
    if not args.only_unpruned:
        seed_root = out / f"seeds_{time.strftime('%Y%m%d-%H%M%S')}"  # fresh folders: a run directory is never reused
        if best_yaml.is_file():
            runs["best"] = run_seeds(str(best_yaml), env, target, args.seeds, seed_root, args.workers, seed_steps)
        if not args.no_preset:
            runs["preset"] = run_seeds(None, env, target, args.seeds, seed_root, args.workers, seed_steps)

    print(f"\nstudies on {env} (TPE, objective {target.objective}, {steps:,} env steps a trial):")
    print_table(
        ["study", "trials", "pruned", "env steps", "best value", "seconds"],
        [
            [
                name,
                s["trials_with_summary"],
                s["pruned"],
                f"{s['env_steps']:,}",
                "-" if s["best_value"] is None else f"{s['best_value']:.1f}",
                s["seconds"],
            ]
            for name, s in studies.items()
        ],
    )
    threshold = THRESHOLDS[env]
    print(f"\nfresh seeds {args.seeds}, {seed_steps:,} env steps: env steps to greedy eval >= {threshold:g}")
    print_table(
        ["config", "per seed", "median [IQR]", "final eval per seed", "final eval median [IQR]"],
        [
            [
                name,
                " ".join(str(r["steps_to_threshold"] or "never") for r in results),
                median_iqr([r["steps_to_threshold"] for r in results]),
                " ".join(f"{r['final_eval']:.0f}" for r in results),
                median_iqr([r["final_eval"] for r in results]),
            ]
            for name, results in runs.items()
        ],
    )
    write_json(
        args.json or f"benchmarks/results/tune_{stem}.json",
        {
            "machine": machine_info(),
            "env": env,
            "objective": target.objective,
            "trials": trials,
            "steps_per_trial": steps,
            "seed_steps": seed_steps,
            "workers": args.workers,
            "seeds": args.seeds,
            "studies": studies,
            "best_yaml": str(best_yaml),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
