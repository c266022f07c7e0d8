"""Distributed training (Ape-X on Ray) against the single-process loop, and how it scales.

    python benchmarks/distributed.py lunar --seeds 1 2 3
    python benchmarks/distributed.py scaling --actors 1 2 4 8 16

``lunar``: the LunarLander-v3 dqn preset, each seed single-process and then with ``--actors 2``,
one run at a time; env steps and wall seconds to the first greedy evaluation >= 200, the final
evaluation and the wall time of each run -> benchmarks/results/distributed_lunar.json.

``scaling``: CartPole (Config's defaults: batch 32, an update per 4 env steps, so a replay ratio of 8)
whose every step sleeps 2 ms (``SLEEP_MS``) without using a core, as a
remote simulator or a slow env would; for each actor count, env steps/s, learner updates/s, the
replay ratio reached, steps in flight and weight lag, and what saturates: the learner (the replay
ratio holds actors back: env steps/s ~ updates/s x batch_size / replay_ratio) or the replay (sends
wait in flight) -> benchmarks/results/distributed_scaling.json. ``--replay-ratio`` lowers the
ratio to move the limit from the learner to the actors and the replay.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLEEP_MS = 2.0
SLEEPY_ID = "SleepyCartPole-v1"
SLEEPY_SPEC = f"benchmarks.distributed:{SLEEPY_ID}"
THRESHOLD = 200.0


class SleepyStep(gym.Wrapper):
    """Each step takes ``sleep_ms`` longer, without using a core (time.sleep releases it)."""

    def __init__(self, env: gym.Env, sleep_ms: float = SLEEP_MS) -> None:
        super().__init__(env)
        self.sleep_s = sleep_ms / 1000

    def step(self, action):
        time.sleep(self.sleep_s)
        return self.env.step(action)


def _sleepy_cartpole(**kwargs) -> gym.Env:
    return SleepyStep(gym.make("CartPole-v1", **kwargs))


if SLEEPY_ID not in gym.registry:
    gym.register(SLEEPY_ID, entry_point=_sleepy_cartpole)


def _run(overrides: dict, run_dir: str) -> dict:
    from dqn_family import train
    from dqn_family.analysis.runs import read_scalars
    from dqn_family.configs import resolve_config

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False})
    started = time.perf_counter()
    result = train.train(config)
    wall = time.perf_counter() - started
    evals = read_scalars(run_dir, "eval/mean_return") if config.eval_frequency else []
    elapsed = dict(read_scalars(run_dir, "eval/elapsed_seconds")) if config.eval_frequency else {}
    reached = [(step, elapsed.get(step)) for step, value in evals if value >= THRESHOLD]
    scalars = {
        tag: [value for _, value in read_scalars(run_dir, tag)]
        for tag in (
            "distributed/env_steps_per_second",
            "distributed/learner_updates_per_second",
            "distributed/replay_ratio",
            "distributed/steps_in_flight",
            "distributed/weight_lag",
        )
    }
    return {
        "actors": config.actors,
        "seed": config.seed,
        "run_dir": run_dir,
        "env_steps": result.env_steps,
        "updates": result.updates,
        "train_seconds": result.seconds,
        "wall_seconds": wall,  # with Ray's start and stop
        "steps_to_200": reached[0][0] if reached else None,
        "seconds_to_200": reached[0][1] if reached else None,
        "final_eval": result.final_eval.mean if result.final_eval else None,
        "best_eval": result.best_eval_mean,
        "evals": evals,
        "scalars": scalars,
    }


def lunar(args: argparse.Namespace) -> dict:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = []
    for seed in args.seeds:
        for actors in (0, 2):
            overrides = {"env_id": "LunarLander-v3", "algo": "dqn", "seed": seed, "actors": actors, **args.set}
            print(f"LunarLander-v3 seed {seed}, actors {actors} ...", flush=True)
            runs.append(_run(overrides, f"runs/bench/distributed_lunar/s{seed}_a{actors}_{stamp}"))
            row = runs[-1]
            print(
                f"  steps to 200: {row['steps_to_200']}, final eval {row['final_eval']}, "
                f"train {row['train_seconds']:.0f} s, wall {row['wall_seconds']:.0f} s",
                flush=True,
            )
    summary = {}
    for actors in (0, 2):
        mine = [run for run in runs if run["actors"] == actors]
        summary[f"actors_{actors}"] = {
            "reached_200": sum(run["steps_to_200"] is not None for run in mine),
            "seeds": len(mine),
            "train_seconds": sum(run["train_seconds"] for run in mine),
            "wall_seconds": sum(run["wall_seconds"] for run in mine),
        }
    single, distributed = summary["actors_0"]["train_seconds"], summary["actors_2"]["train_seconds"]
    summary["train_seconds_ratio_distributed_to_single"] = distributed / max(single, 1e-9)
    return {"summary": summary, "runs": runs}


def scaling(args: argparse.Namespace) -> dict:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for actors in args.actors:
        overrides = {
            "env_id": SLEEPY_SPEC,
            "algo": "dqn",
            "seed": 1,
            "actors": actors,
            "total_steps": args.steps_per_actor * actors,
            "learning_starts": 1_000,
            "eval_frequency": 0,
            "checkpoint_every": 0,
            "log_frequency": 1_000,
            **({"replay_ratio": args.replay_ratio} if args.replay_ratio is not None else {}),
            **args.set,
        }
        print(f"{SLEEPY_ID} ({SLEEP_MS} ms a step), {actors} actors ...", flush=True)
        row = _run(overrides, f"runs/bench/distributed_scaling/a{actors}_{stamp}")
        steady = {tag: _steady(values) for tag, values in row.pop("scalars").items()}
        ideal = actors * 1000 / SLEEP_MS  # steps/s if stepping were the only cost
        row.update(
            env_steps_per_second=steady["distributed/env_steps_per_second"],
            updates_per_second=steady["distributed/learner_updates_per_second"],
            replay_ratio=steady["distributed/replay_ratio"],
            steps_in_flight=steady["distributed/steps_in_flight"],
            weight_lag=steady["distributed/weight_lag"],
            ideal_env_steps_per_second=ideal,
        )
        row["saturated_by"] = _saturation(row, rows[-1] if rows else None)
        rows.append(row)
        print(
            f"  {row['env_steps_per_second']:,.0f} env steps/s (ideal {ideal:,.0f}), "
            f"{row['updates_per_second']:,.0f} updates/s, in flight {row['steps_in_flight']:.0f}: "
            f"{row['saturated_by']}",
            flush=True,
        )
    return {"sleep_ms": SLEEP_MS, "rows": rows}


def _steady(values: list[float]) -> float:
    """The median of the logged values after the first (Ray's and the learner's start)."""
    import numpy as np

    return float(np.median(values[1:] if len(values) > 1 else values)) if values else float("nan")


def _saturation(row: dict, previous: dict | None) -> str:
    """What limits env steps/s at this actor count, from the figures logged."""
    efficiency = row["env_steps_per_second"] / row["ideal_env_steps_per_second"]
    if efficiency >= 0.7:
        return f"nothing yet ({efficiency:.0%} of the sleep-bound rate)"
    learner_flat = previous is not None and row["updates_per_second"] < 1.15 * previous["updates_per_second"]
    if learner_flat:
        return (
            f"the learner: updates/s flat at {row['updates_per_second']:,.0f}, and the replay ratio holds the "
            f"actors to updates x batch / ratio ({efficiency:.0%} of the sleep-bound rate)"
        )
    return (
        f"the actors' and replay's CPUs ({efficiency:.0%} of the sleep-bound rate, {row['steps_in_flight']:.0f} "
        "steps in flight): more processes than cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lunar_parser = commands.add_parser("lunar", help="LunarLander-v3: single-process vs --actors 2.")
    lunar_parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    scaling_parser = commands.add_parser("scaling", help="env steps/s against actors on a sleeping CartPole.")
    scaling_parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    scaling_parser.add_argument("--steps-per-actor", type=int, default=10_000)
    scaling_parser.add_argument("--replay-ratio", type=float, default=None)
    for sub in (lunar_parser, scaling_parser):
        sub.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="Config field overrides.")
        sub.add_argument(
            "--out", default=None, help="JSON path (default: benchmarks/results/distributed_<command>.json)."
        )
    args = parser.parse_args()
    from benchmarks.common import machine_info, write_json
    from benchmarks.presets import parse_overrides

    args.set = parse_overrides(args.set)
    results = lunar(args) if args.command == "lunar" else scaling(args)
    out = args.out or f"benchmarks/results/distributed_{args.command}.json"
    write_json(out, {"machine": machine_info(), "command": sys.argv, **results})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
