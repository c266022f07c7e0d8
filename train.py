"""Train a DQN-family agent: ``python train.py --env CartPole-v1 [--flag value ...]``.

One loop, read top to bottom: seed, build, then per vector step {act, step, store, maybe update,
maybe sync target, maybe log, maybe evaluate and save}. The loop decides *when*; the agent
decides *what the maths is*. ``train(config)`` is the same thing as a Python function.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents import (SCHEDULES, NetworkFactory, factory_spec, make_agent, resolve_device, save_model,
                    set_torch_threads)
from configs import (Config, ConfigError, UserError, add_config_arguments, config_from_args, config_to_dict,
                     make_parser, save_config, write_text_atomic)
from envs import AutoresetTracker, make_vector_env
from evaluate import EVAL_SEED_OFFSET, EvalResult, evaluate_policy
from replay import ReplayBuffer


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    updates: int
    episodes: int
    seconds: float
    final_eval: EvalResult | None
    best_eval_mean: float | None


def crossed(before: int, after: int, interval: int) -> int:
    """How many multiples of ``interval`` lie in (before, after]: how often an every-N-steps
    event fires when a vector step moves the env-step counter from ``before`` to ``after``."""
    return after // interval - before // interval


def train(config: Config, *, network: NetworkFactory | None = None) -> TrainResult:
    """Train from ``config``; ``network`` optionally gives your own Q-network factory."""
    if network is not None and config.network is None and (spec := factory_spec(network)) is not None:
        config = dataclasses.replace(config, network=spec)  # recorded so evaluate.py can rebuild it
    device = resolve_device(config.device)
    set_torch_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    agent_seed, buffer_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(config.seed).spawn(2))

    envs = make_vector_env(config.env_id, config.num_envs, mode=config.vector_mode)
    observation_space, action_space = envs.single_observation_space, envs.single_action_space
    try:
        agent = make_agent(config, observation_shape=observation_space.shape, n_actions=int(action_space.n),
                           device=device, seed=agent_seed, network=network)
        buffer = ReplayBuffer(capacity=config.buffer_size, observation_shape=observation_space.shape,
                              observation_dtype=observation_space.dtype, seed=buffer_seed)
        run_dir = create_run_dir(config, device)
        if network is not None and config.network is None:
            print("note: this network cannot be imported by name, so evaluate.py cannot rebuild it; "
                  "define it in an importable module to make the run reloadable", file=sys.stderr)
        with SummaryWriter(log_dir=str(run_dir)) as writer:
            writer.add_text("hyperparameters", _markdown_table(config_to_dict(config)))
            return _loop(config, agent, buffer, envs, writer, run_dir, device)
    finally:
        envs.close()


def _loop(config: Config, agent, buffer: ReplayBuffer, envs: gym.vector.VectorEnv, writer: SummaryWriter,
          run_dir: Path, device: torch.device) -> TrainResult:
    num_envs = config.num_envs
    epsilon_at = SCHEDULES[config.exploration_schedule]
    autoreset = AutoresetTracker(num_envs)
    episode_return, episode_length = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
    recent_returns: list[float] = []
    loss_sum, q_sum, pending_updates = torch.zeros((), device=device), torch.zeros((), device=device), 0
    global_step, updates, episodes = 0, 0, 0
    final_eval, best_eval_mean = None, None
    start = last_log_time = time.perf_counter()
    last_log_step = 0
    progress = tqdm(total=config.total_steps, unit="step", disable=not config.progress, dynamic_ncols=True)

    observations, _ = envs.reset(seed=config.seed)  # sub-env i is seeded seed + i
    while global_step < config.total_steps:
        epsilon = epsilon_at(global_step, start=config.epsilon_start, end=config.epsilon_end,
                             decay_steps=config.epsilon_decay_steps)
        actions = agent.act(observations, epsilon)
        next_observations, rewards, terminated, truncated, _ = envs.step(actions)

        # Under NEXT_STEP autoreset, the step after an episode's end only resets that sub-env:
        # it is not a transition, so it is neither stored nor counted.
        real = autoreset.real_steps(terminated, truncated)
        buffer.add(observations[real], actions[real], rewards[real], next_observations[real],
                   terminated[real], truncated[real], config.gamma)
        observations = next_observations
        before, global_step = global_step, global_step + int(real.sum())
        progress.update(global_step - before)

        episode_return[real] += rewards[real]
        episode_length[real] += 1
        for i in np.flatnonzero(real & (terminated | truncated)):
            writer.add_scalar("charts/episodic_return", episode_return[i], global_step)
            writer.add_scalar("charts/episodic_length", episode_length[i], global_step)
            recent_returns = (recent_returns + [float(episode_return[i])])[-20:]
            episode_return[i], episode_length[i] = 0.0, 0
            episodes += 1

        if global_step >= config.learning_starts and len(buffer) >= config.batch_size:
            for _ in range(crossed(before, global_step, config.train_frequency) * config.gradient_steps):
                metrics = agent.update(buffer.sample(config.batch_size).to_torch(device))
                loss_sum += metrics["td_loss"]
                q_sum += metrics["q_values"]
                pending_updates += 1
                updates += 1
            if crossed(before, global_step, config.target_update_interval):
                agent.sync_target(config.tau)

        if crossed(before, global_step, config.log_frequency):
            now = time.perf_counter()
            sps = (global_step - last_log_step) / max(now - last_log_time, 1e-9)
            writer.add_scalar("charts/epsilon", epsilon, global_step)
            writer.add_scalar("charts/sps", sps, global_step)
            if pending_updates:
                writer.add_scalar("losses/td_loss", (loss_sum / pending_updates).item(), global_step)
                writer.add_scalar("losses/q_values", (q_sum / pending_updates).item(), global_step)
                loss_sum.zero_(), q_sum.zero_()
                pending_updates = 0
            last_log_time, last_log_step = now, global_step
            recent = f"{np.mean(recent_returns):.1f}" if recent_returns else "-"
            progress.set_postfix(sps=f"{sps:.0f}", ret=recent, eps=f"{epsilon:.2f}", refresh=False)

        finished = global_step >= config.total_steps
        if config.eval_frequency and (crossed(before, global_step, config.eval_frequency) or finished):
            final_eval = _evaluate_and_save(config, agent, writer, run_dir, global_step, device)
            if best_eval_mean is None or final_eval.mean > best_eval_mean:
                best_eval_mean = final_eval.mean
                save_model(run_dir / "model_best.pt", agent.q_network.state_dict(), env_step=global_step,
                           eval_mean_return=final_eval.mean)
    progress.close()

    if not config.eval_frequency:
        save_model(run_dir / "model_latest.pt", agent.q_network.state_dict(), env_step=global_step)
    seconds = time.perf_counter() - start
    result = TrainResult(run_dir=run_dir, env_steps=global_step, updates=updates, episodes=episodes,
                         seconds=seconds, final_eval=final_eval, best_eval_mean=best_eval_mean)
    _write_summary(result)
    return result


def _evaluate_and_save(config: Config, agent, writer: SummaryWriter, run_dir: Path, step: int,
                       device: torch.device) -> EvalResult:
    result = evaluate_policy(agent.q_network, config.env_id, episodes=config.eval_episodes,
                             seed=config.seed + EVAL_SEED_OFFSET, epsilon=config.eval_epsilon, device=device)
    writer.add_scalar("eval/mean_return", result.mean, step)
    writer.add_scalar("eval/std_return", result.std, step)
    writer.add_scalar("eval/mean_length", float(np.mean(result.lengths)), step)
    save_model(run_dir / "model_latest.pt", agent.q_network.state_dict(), env_step=step,
               eval_mean_return=result.mean)
    return result


def create_run_dir(config: Config, device: torch.device) -> Path:
    """Make the run directory and write the resolved config and version info before step 0."""
    if config.run_dir is not None:
        run_dir = Path(config.run_dir)
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise ConfigError(f"run directory {run_dir} already exists and is not empty; choose another --run-dir")
    else:
        env_name = config.env_id.split(":")[-1].replace("/", "_")
        stem = Path("runs") / f"{env_name}__{config.algo}__s{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir, suffix = stem, 1
        while run_dir.exists():
            suffix += 1
            run_dir = stem.with_name(f"{stem.name}-{suffix}")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(dataclasses.replace(config, run_dir=str(run_dir)), run_dir / "config.yaml")
    meta = {"command": sys.argv, "device": str(device), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(), "torch": torch.__version__, "gymnasium": gym.__version__,
            "numpy": np.__version__, "platform": platform.platform()}
    write_text_atomic(run_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    return run_dir


def _write_summary(result: TrainResult) -> None:
    summary = {"env_steps": result.env_steps, "updates": result.updates, "episodes": result.episodes,
               "seconds": round(result.seconds, 3), "steps_per_second": round(result.env_steps / result.seconds, 1),
               "final_eval_mean_return": result.final_eval.mean if result.final_eval else None,
               "final_eval_std_return": result.final_eval.std if result.final_eval else None,
               "best_eval_mean_return": result.best_eval_mean}
    write_text_atomic(result.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def _markdown_table(values: dict) -> str:
    rows = "\n".join(f"|{key}|{value}|" for key, value in values.items())
    return f"|param|value|\n|-|-|\n{rows}"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("train.py", "Train a DQN-family agent on a Gymnasium environment. "
                         "Settings apply in order: defaults < env preset (configs/) < --config FILE < flags.")
    add_config_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="Show tracebacks for errors.")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = train(config)
    except UserError as error:
        if args.debug:
            raise
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    final = (f"final eval {result.final_eval.mean:.1f} ± {result.final_eval.std:.1f}, best {result.best_eval_mean:.1f}; "
             if result.final_eval else "")
    print(f"done: {result.env_steps:,} env steps, {result.episodes:,} episodes in {result.seconds:.1f} s "
          f"({result.env_steps / result.seconds:,.0f} steps/s); {final}run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
