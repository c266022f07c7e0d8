"""Speed benchmarks on CartPole-v1 (not part of CI). Prints a table and writes JSON.

    python benchmarks/speed.py                      # all parts, 100,000 env steps
    python benchmarks/speed.py --parts raw loop     # a subset
    pip install -e .[bench]                         # adds Stable-Baselines3 for the 'sb3' part

Parts:
  raw    the env alone with random actions (gym.make, and a 1-env SyncVectorEnv): the ceiling
  loop   our training loop with learning off (acting + storing), CleanRL's settings
  full   our full training with CleanRL's dqn.py settings (configs/benchmarks/cleanrl_cartpole.yaml)
  sb3    Stable-Baselines3's DQN on the same settings, when installed, with the ratio to ours
  parts  one gradient step (us) and one greedy action (us) in isolation

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

    import train
    from configs import resolve_config

    run_dir = Path(tempfile.mkdtemp()) / "run"
    fields = {"env_id": "CartPole-v1", "total_steps": steps, "eval_frequency": 0, "checkpoint_every": 0, "progress": False,
              "run_dir": str(run_dir), **overrides}
    if not learning:
        fields["learning_starts"] = steps + 1
    config = resolve_config(fields, str(CLEANRL_CONFIG))
    result = train.train(config)
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return {"sps": result.env_steps / result.seconds, "seconds": result.seconds, "updates": result.updates}


def bench_sb3(steps: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    # CleanRL's settings in SB3's vocabulary. SB3 always uses the Huber loss (CleanRL: MSE) and
    # clips gradients; a huge max_grad_norm turns the clipping off in effect.
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=2.5e-4, buffer_size=10_000,
                learning_starts=10_000, batch_size=128, tau=1.0, gamma=0.99, train_freq=10, gradient_steps=1,
                target_update_interval=500, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                exploration_fraction=250_000 / steps, max_grad_norm=1e10,
                policy_kwargs={"net_arch": [120, 84]}, device="cpu", seed=1, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    return {"sps": steps / seconds, "seconds": seconds}


def bench_parts(repeats: int = 3000) -> dict:
    import numpy as np
    import torch

    from agents import DQNAgent, MLPQNetwork
    from replay import ReplayBuffer

    torch.set_num_threads(1)
    results = {}
    for numpy_acting in (False, True):
        torch.manual_seed(0)
        agent = DQNAgent(q_network=MLPQNetwork((4,), 2, hidden_sizes=(120, 84)), n_actions=2,
                         device=torch.device("cpu"), seed=0, learning_rate=2.5e-4, loss="mse",
                         numpy_acting=numpy_acting)
        observation = np.zeros((1, 4), dtype=np.float32)
        for _ in range(200):
            agent.greedy_actions(observation)
        start = time.perf_counter()
        for _ in range(repeats):
            agent.greedy_actions(observation)
        results["act_numpy_us" if numpy_acting else "act_torch_us"] = (time.perf_counter() - start) / repeats * 1e6
    buffer = ReplayBuffer(capacity=10_000, observation_shape=(4,), observation_dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    buffer.add(rng.normal(size=(10_000, 4)).astype(np.float32), rng.integers(0, 2, 10_000),
               np.ones(10_000, np.float32), rng.normal(size=(10_000, 4)).astype(np.float32),
               np.zeros(10_000, bool), np.zeros(10_000, bool), 0.99)
    for _ in range(200):
        agent.update(buffer.sample(128).to_torch("cpu"))
    start = time.perf_counter()
    for _ in range(repeats):
        agent.update(buffer.sample(128).to_torch("cpu"))
    results["update_us"] = (time.perf_counter() - start) / repeats * 1e6
    start = time.perf_counter()
    for _ in range(repeats):
        buffer.sample(128).to_torch("cpu")
    results["sample_us"] = (time.perf_counter() - start) / repeats * 1e6
    return results


def run_isolated(part: str, steps: int, overrides: dict) -> dict:
    """Run one part in a fresh process so that imports and caches do not carry over."""
    command = [sys.executable, __file__, "--child", part, "--steps", str(steps), "--overrides", json.dumps(overrides)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def child(part: str, steps: int, overrides: dict) -> None:
    import torch

    torch.set_num_threads(1)
    runners = {"raw": lambda: bench_raw(steps), "loop": lambda: bench_train(steps, False, overrides),
               "full": lambda: bench_train(steps, True, overrides), "sb3": lambda: bench_sb3(steps),
               "parts": bench_parts}
    print(json.dumps(runners[part]()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["raw", "loop", "full", "sb3", "parts"],
                        choices=["raw", "loop", "full", "sb3", "parts"])
    parser.add_argument("--steps", type=int, default=100_000, help="Env steps per timed run.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Config overrides for our runs, e.g. fused_adam=true.")
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
        if part == "sb3" and subprocess.run([sys.executable, "-c", "import stable_baselines3"],
                                            capture_output=True).returncode != 0:
            print("sb3: stable-baselines3 is not installed (pip install -e .[bench]); skipped")
            continue
        for _ in range(args.repeats):
            results.setdefault(part, []).append(run_isolated(part, args.steps, overrides))
            print(part, results[part][-1], flush=True)
    medians = {part: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for part, runs in results.items()}
    rows = [[part, key, f"{value:,.1f}"] for part, values in medians.items() for key, value in values.items()]
    if "full" in medians and "sb3" in medians:
        rows.append(["full/sb3", "sps ratio", f"{medians['full']['sps'] / medians['sb3']['sps']:.2f}x"])
    if "loop" in medians and "raw" in medians:
        rows.append(["loop/raw", "sps ratio", f"{medians['loop']['sps'] / medians['raw']['env_sps']:.2f}"])
    print(f"\nCartPole-v1, {args.steps:,} env steps per run, median of {args.repeats}; overrides {overrides}")
    print_table(["part", "figure", "median"], rows)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()}
    write_json(args.out, {"steps": args.steps, "repeats": args.repeats, "overrides": overrides,
                          "machine": machine, "medians": medians, "runs": results})


if __name__ == "__main__":
    main()
