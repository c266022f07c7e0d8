"""Speed benchmarks on CartPole-v1 (not part of CI). Prints a table and writes JSON.

    python benchmarks/speed.py                      # all parts, 100,000 env steps
    python benchmarks/speed.py --parts raw loop     # a subset
    pip install -e .[bench]                         # adds Stable-Baselines3 for the 'sb3' part

Parts:
  raw    the env alone with random actions (gym.make, and a 1-env SyncVectorEnv): the ceiling
  loop   our training loop with learning off (acting + storing), CleanRL's settings; again with
         16 envs stepped together (one batched action choice and one replay write per vector step)
  full   our full training with CleanRL's dqn.py settings (configs/benchmarks/cleanrl_cartpole.yaml)
  fullc  the same with --compile (the whole update compiled; the compile, 3-10 s at the first
         update, counts in the time)
  sb3    Stable-Baselines3's DQN on the same settings, when installed, with the ratio to ours
  parts  one gradient step (us) and one greedy action (us) in isolation
  atari  ALE/Breakout-v5 with the Atari DQN preset (configs/dqn/atari.yaml): the whole pipeline's
         env steps/s with learning off and on (an update every 4 steps from step 1,000, 10,000-
         transition buffer), and the replay buffer's bytes per transition at 1,000,000
  t475   wall-clock seconds until a greedy evaluation (20 episodes) first reaches 475: our
         CartPole-v1 preset (configs/dqn/CartPole-v1.yaml) against Stable-Baselines3 with its RL
         Zoo's tuned CartPole-v1 settings, both evaluated every 2,500 env steps, one seed per
         repeat (seeds 1, 2, ...); evaluation time counts, as it does for anyone watching
  t475c  the same for our preset with --compile (the compile counts), without SB3

Each timed run is a separate process, one torch thread, repeated ``--repeats`` times (median).
Env steps per second count the training loop only (start-up and imports excluded), the same way
for every framework.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402

CLEANRL_CONFIG = ROOT / "configs" / "benchmarks" / "cleanrl_cartpole.yaml"


def bench_raw(steps: int) -> dict:
    import gymnasium as gym
    import numpy as np
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    actions = np.random.default_rng(0).integers(0, 2, size=steps)
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    single = steps / (time.perf_counter() - start)
    vector = SyncVectorEnv([lambda: gym.make("CartPole-v1")], autoreset_mode=AutoresetMode.NEXT_STEP)
    vector.reset(seed=0)
    batched = actions.reshape(-1, 1)
    start = time.perf_counter()
    for action in batched:
        vector.step(action)
    return {"env_sps": single, "vector_env_sps": steps / (time.perf_counter() - start)}


def bench_train(steps: int, learning: bool, overrides: dict) -> dict:
    import shutil
    import tempfile

    from dqn_family import train
    from dqn_family.configs import resolve_config

    run_dir = Path(tempfile.mkdtemp()) / "run"
    fields = {
        "env_id": "CartPole-v1",
        "total_steps": steps,
        "eval_frequency": 0,
        "checkpoint_every": 0,
        "progress": False,
        "run_dir": str(run_dir),
        **overrides,
    }
    if not learning:
        fields["learning_starts"] = 2 * steps  # never reached, whatever num_envs is
    config = resolve_config(fields, str(CLEANRL_CONFIG))
    result = train.train(config)
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return {"sps": result.env_steps / result.seconds, "seconds": result.seconds, "updates": result.updates}


def bench_loop(steps: int, overrides: dict) -> dict:
    """Learning off with CleanRL's settings: one env, then 16 stepped together."""
    one = bench_train(steps, False, overrides)
    sixteen = bench_train(steps, False, {**overrides, "num_envs": 16})
    return {"sps": one["sps"], "sps_16_envs": sixteen["sps"]}


def bench_sb3(steps: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    # CleanRL's settings in SB3's vocabulary. SB3 always uses the Huber loss (CleanRL: MSE) and
    # clips gradients; a huge max_grad_norm turns the clipping off in effect.
    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        learning_rate=2.5e-4,
        buffer_size=10_000,
        learning_starts=10_000,
        batch_size=128,
        tau=1.0,
        gamma=0.99,
        train_freq=10,
        gradient_steps=1,
        target_update_interval=500,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.05,
        exploration_fraction=250_000 / steps,
        max_grad_norm=1e10,
        policy_kwargs={"net_arch": [120, 84]},
        device="cpu",
        seed=1,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    return {"sps": steps / seconds, "seconds": seconds}


def bench_parts(repeats: int = 3000) -> dict:
    import numpy as np
    import torch

    from dqn_family.agents import DQNAgent, MLPQNetwork
    from dqn_family.replay import ReplayBuffer

    torch.set_num_threads(1)
    results = {}
    for numpy_acting in (False, True):
        torch.manual_seed(0)
        agent = DQNAgent(
            q_network=MLPQNetwork((4,), 2, hidden_sizes=(120, 84)),
            n_actions=2,
            device=torch.device("cpu"),
            seed=0,
            learning_rate=2.5e-4,
            loss="mse",
            numpy_acting=numpy_acting,
        )
        observation = np.zeros((1, 4), dtype=np.float32)
        for _ in range(200):
            agent.greedy_actions(observation)
        start = time.perf_counter()
        for _ in range(repeats):
            agent.greedy_actions(observation)
        results["act_numpy_us" if numpy_acting else "act_torch_us"] = (time.perf_counter() - start) / repeats * 1e6
    buffer = ReplayBuffer(capacity=10_000, observation_shape=(4,), observation_dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    buffer.add(
        rng.normal(size=(10_000, 4)).astype(np.float32),
        rng.integers(0, 2, 10_000),
        np.ones(10_000, np.float32),
        rng.normal(size=(10_000, 4)).astype(np.float32),
        np.zeros(10_000, bool),
        np.zeros(10_000, bool),
        0.99,
    )
    for compiled in (False, True):
        torch.manual_seed(0)
        agent = DQNAgent(
            q_network=MLPQNetwork((4,), 2, hidden_sizes=(120, 84)),
            n_actions=2,
            device=torch.device("cpu"),
            seed=0,
            learning_rate=2.5e-4,
            loss="mse",
            compile=compiled,
        )
        start = time.perf_counter()
        agent.update(buffer.sample(128).to_torch("cpu"))
        if compiled:
            results["compile_seconds"] = time.perf_counter() - start
        for _ in range(200):
            agent.update(buffer.sample(128).to_torch("cpu"))
        start = time.perf_counter()
        for _ in range(repeats):
            agent.update(buffer.sample(128).to_torch("cpu"))
        results["update_compiled_us" if compiled else "update_us"] = (time.perf_counter() - start) / repeats * 1e6
    start = time.perf_counter()
    for _ in range(repeats):
        buffer.sample(128).to_torch("cpu")
    results["sample_us"] = (time.perf_counter() - start) / repeats * 1e6
    return results


def bench_atari(steps: int) -> dict:
    import shutil
    import tempfile

    import numpy as np

    from dqn_family import train
    from dqn_family.configs import resolve_config
    from dqn_family.replay import frame_window_for, replay_bytes

    results = {}
    for name, learning_starts in (("loop_sps", steps + 1), ("full_sps", 1000)):
        run_dir = Path(tempfile.mkdtemp()) / "run"
        config = resolve_config(
            {
                "env_id": "ALE/Breakout-v5",
                "total_steps": steps,
                "buffer_size": 10_000,
                "learning_starts": learning_starts,
                "eval_frequency": 0,
                "checkpoint_every": 0,
                "progress": False,
                "run_dir": str(run_dir),
            }
        )
        result = train.train(config)
        shutil.rmtree(run_dir.parent, ignore_errors=True)
        results[name] = result.env_steps / result.seconds
    for prioritized in (False, True):
        nbytes = replay_bytes(
            capacity=1_000_000,
            observation_shape=(4, 84, 84),
            observation_dtype=np.uint8,
            stacked_frames=True,
            prioritized=prioritized,
            frame_window=frame_window_for(num_envs=1, n_step=1, stack=4),
        )
        results["replay_bytes_per_transition" + ("_prioritized" if prioritized else "")] = nbytes / 1_000_000
    return results


def bench_t475_ours(seed: int, overrides: dict) -> dict:
    import tempfile

    from benchmarks.presets import run_seed

    run_dir = str(Path(tempfile.mkdtemp()) / "run")
    result = run_seed(({"env_id": "CartPole-v1", "seed": seed, "checkpoint_every": 0, **overrides}, None, run_dir))
    return {
        "seconds_to_475": result["seconds_to_threshold"],
        "steps_to_475": result["steps_to_threshold"],
        "final_eval": result["final_eval"],
    }


# RL Zoo's hyperparams/dqn.yml for CartPole-v1 (rl-baselines3-zoo): 50,000 steps.
ZOO_CARTPOLE = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}


def bench_t475_sb3(seed: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=seed + 10_000)

    class StopAt475(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start, self.reached = time.perf_counter(), None

        def _on_step(self) -> bool:
            if self.num_timesteps % 2500:
                return True
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=20, deterministic=True)
            if mean >= 475:
                self.reached = (time.perf_counter() - self.start, self.num_timesteps)
                return False
            return True

    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        policy_kwargs={"net_arch": [256, 256]},
        device="cpu",
        seed=seed,
        verbose=0,
        **ZOO_CARTPOLE,
    )
    callback = StopAt475()
    model.learn(total_timesteps=50_000, callback=callback)
    seconds, steps = callback.reached or (None, None)
    return {"seconds_to_475": seconds, "steps_to_475": steps}


def run_isolated(part: str, steps: int, overrides: dict) -> dict:
    """Run one part in a fresh process so that imports and caches do not carry over."""
    command = [sys.executable, __file__, "--child", part, "--steps", str(steps), "--overrides", json.dumps(overrides)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def child(part: str, steps: int, overrides: dict) -> None:
    import torch

    torch.set_num_threads(1)
    seed = overrides.pop("seed", 1)
    runners = {
        "t475_ours": lambda: bench_t475_ours(seed, overrides),
        "t475_sb3": lambda: bench_t475_sb3(seed),
        "t475c_ours": lambda: bench_t475_ours(seed, {**overrides, "compile": True}),
        "atari": lambda: bench_atari(steps),
        "raw": lambda: bench_raw(steps),
        "loop": lambda: bench_loop(steps, overrides),
        "full": lambda: bench_train(steps, True, overrides),
        "fullc": lambda: bench_train(steps, True, {**overrides, "compile": True}),
        "sb3": lambda: bench_sb3(steps),
        "parts": bench_parts,
    }
    print(json.dumps(runners[part]()))


def bench_t475(repeats: int, results: dict[str, list[dict]], sides: tuple[str, ...]) -> None:
    """Seeds 1..repeats, each side per seed in its own process."""
    have_sb3 = subprocess.run([sys.executable, "-c", "import stable_baselines3"], capture_output=True).returncode == 0
    for seed in range(1, repeats + 1):
        for side in (side for side in sides if have_sb3 or side != "t475_sb3"):
            results.setdefault(side, []).append({"seed": seed, **run_isolated(side, 0, {"seed": seed})})
            print(side, results[side][-1], flush=True)


def _median(values: list) -> float | None:
    """Median of the values that exist (a run that never reached 475 has None)."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["raw", "loop", "full", "fullc", "sb3", "parts", "t475"],
        choices=["raw", "loop", "full", "fullc", "sb3", "parts", "t475", "t475c", "atari"],
    )
    parser.add_argument("--steps", type=int, default=100_000, help="Env steps per timed run (atari: a tenth).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="Config overrides for our runs, e.g. fused_adam=true."
    )
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, json.loads(args.overrides))

    from benchmarks.presets import parse_overrides

    overrides = parse_overrides(args.set)
    results: dict[str, list[dict]] = {}
    for part in args.parts:
        if (
            part == "sb3"
            and subprocess.run([sys.executable, "-c", "import stable_baselines3"], capture_output=True).returncode != 0
        ):
            print("sb3: stable-baselines3 is not installed (pip install -e .[bench]); skipped")
            continue
        if part in ("t475", "t475c"):
            bench_t475(args.repeats, results, ("t475_ours", "t475_sb3") if part == "t475" else ("t475c_ours",))
            continue
        for _ in range(args.repeats):
            steps = args.steps // 10 if part == "atari" else args.steps
            results.setdefault(part, []).append(run_isolated(part, steps, overrides))
            print(part, results[part][-1], flush=True)
    medians = {part: {key: _median([r[key] for r in runs]) for key in runs[0]} for part, runs in results.items()}
    rows = [
        [part, key, "-" if value is None else f"{value:,.1f}"]
        for part, values in medians.items()
        for key, value in values.items()
    ]
    for full in ("full", "fullc"):
        if full in medians and "sb3" in medians:
            rows.append([f"{full}/sb3", "sps ratio", f"{medians[full]['sps'] / medians['sb3']['sps']:.2f}x"])
    for ours in ("t475_ours", "t475c_ours"):
        if ours in medians and "t475_sb3" in medians and medians["t475_sb3"]["seconds_to_475"]:
            ratio = medians[ours]["seconds_to_475"] / medians["t475_sb3"]["seconds_to_475"]
            rows.append([f"{ours}/sb3", "seconds ratio", f"{ratio:.2f}"])
    if "loop" in medians and "raw" in medians:
        for key in ("sps", "sps_16_envs"):
            rows.append(["loop/raw", f"{key} ratio", f"{medians['loop'][key] / medians['raw']['env_sps']:.2f}"])
    print(
        f"\nCartPole-v1 (atari: ALE/Breakout-v5, a tenth of the steps), {args.steps:,} env steps per run, "
        f"median of {args.repeats} (t475: {args.repeats} seeds); overrides {overrides}"
    )
    print_table(["part", "figure", "median"], rows)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()}
    write_json(
        args.out,
        {
            "steps": args.steps,
            "repeats": args.repeats,
            "overrides": overrides,
            "machine": machine,
            "medians": medians,
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
