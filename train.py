"""Train a DQN-family agent: ``python train.py --env CartPole-v1 [--flag value ...]``.

One loop, read top to bottom: seed, build, then per vector step {act, step, store, maybe update,
maybe sync target, maybe log, maybe evaluate and save}. The loop decides *when*; the agent
decides *what the maths is*. ``train(config)`` is the same thing as a Python function.
"""

from __future__ import annotations

import collections
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

from agents import (SCHEDULES, NetworkFactory, factory_spec, linear_schedule, make_agent, resolve_device,
                    save_model, set_torch_threads)
from configs import (Config, ConfigError, UserError, add_config_arguments, config_from_args, config_to_dict,
                     make_parser, save_config, write_text_atomic)
from envs import AutoresetTracker, make_vector_env
from evaluate import EVAL_SEED_OFFSET, EvalResult, evaluate_policy
from replay import NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer


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
        buffer = build_replay(config, observation_space.shape, observation_space.dtype, buffer_seed)
        run_dir = create_run_dir(config, device)
        if network is not None and config.network is None:
            print("note: this network cannot be imported by name, so evaluate.py cannot rebuild it; "
                  "define it in an importable module to make the run reloadable", file=sys.stderr)
        with SummaryWriter(log_dir=str(run_dir)) as writer:
            writer.add_text("hyperparameters", _markdown_table(config_to_dict(config)))
            return _loop(config, agent, buffer, envs, writer, run_dir, device)
    finally:
        envs.close()


@dataclass
class Counters:
    """The loop's progress: everything a checkpoint needs besides networks, buffer and RNGs."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    best_eval_mean: float | None = None


class MetricLog:
    """Accumulates per-update metrics as tensors (no device sync per update) and writes their
    means, with episode statistics and throughput, to TensorBoard every ``log_frequency`` steps."""

    def __init__(self, writer: SummaryWriter, device: torch.device) -> None:
        self.writer = writer
        self.sums = {"losses/td_loss": torch.zeros((), device=device), "losses/q_values": torch.zeros((), device=device)}
        self.pending_updates = 0
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=20)
        self.last_time, self.last_step = time.perf_counter(), 0

    def add_update(self, metrics: dict[str, torch.Tensor]) -> None:
        self.sums["losses/td_loss"] += metrics["td_loss"]
        self.sums["losses/q_values"] += metrics["q_values"]
        self.pending_updates += 1

    def add_episode(self, episode_return: float, length: int, step: int) -> None:
        self.writer.add_scalar("charts/episodic_return", episode_return, step)
        self.writer.add_scalar("charts/episodic_length", length, step)
        self.recent_returns.append(episode_return)

    def flush(self, step: int, epsilon: float) -> dict[str, str]:
        """Write the accumulated means; return a short summary for the progress bar."""
        now = time.perf_counter()
        sps = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.writer.add_scalar("charts/epsilon", epsilon, step)
        self.writer.add_scalar("charts/sps", sps, step)
        if self.pending_updates:
            for tag, total in self.sums.items():
                self.writer.add_scalar(tag, (total / self.pending_updates).item(), step)
                total.zero_()
            self.pending_updates = 0
        self.last_time, self.last_step = now, step
        recent = f"{np.mean(self.recent_returns):.1f}" if self.recent_returns else "-"
        return {"sps": f"{sps:.0f}", "ret": recent, "eps": f"{epsilon:.2f}"}


def _loop(config: Config, agent, buffer: ReplayBuffer, envs: gym.vector.VectorEnv, writer: SummaryWriter,
          run_dir: Path, device: torch.device) -> TrainResult:
    num_envs = config.num_envs
    epsilon_at = SCHEDULES[config.exploration_schedule]
    autoreset = AutoresetTracker(num_envs)
    n_step = NStepAccumulator(num_envs, config.n_step, config.gamma) if config.n_step > 1 else None
    episode_return, episode_length = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
    count, log, final_eval = Counters(), MetricLog(writer, device), None
    start = time.perf_counter()
    progress = tqdm(total=config.total_steps, unit="step", disable=not config.progress, dynamic_ncols=True)

    observations, _ = envs.reset(seed=config.seed)  # sub-env i is seeded seed + i
    while count.env_steps < config.total_steps:
        epsilon = epsilon_at(count.env_steps, start=config.epsilon_start, end=config.epsilon_end,
                             decay_steps=config.epsilon_decay_steps)
        actions = agent.act(observations, epsilon)
        next_observations, rewards, terminated, truncated, _ = envs.step(actions)

        # Under NEXT_STEP autoreset, the step after an episode's end only resets that sub-env:
        # it is not a transition, so it is neither stored nor counted.
        real = autoreset.real_steps(terminated, truncated)
        if n_step is None:  # 1-step: the transitions are the real steps themselves
            buffer.add(observations[real], actions[real], rewards[real], next_observations[real],
                       terminated[real], truncated[real], config.gamma)
        else:
            buffer.add(**n_step.push(observations, actions, rewards, next_observations, terminated, truncated,
                                     real).as_dict())
        observations = next_observations
        before = count.env_steps
        count.env_steps += int(real.sum())
        progress.update(count.env_steps - before)

        episode_return[real] += rewards[real]
        episode_length[real] += 1
        for i in np.flatnonzero(real & (terminated | truncated)):
            log.add_episode(float(episode_return[i]), int(episode_length[i]), count.env_steps)
            episode_return[i], episode_length[i] = 0.0, 0
            count.episodes += 1

        if count.env_steps >= config.learning_starts and len(buffer) >= config.batch_size:
            _learn(config, agent, buffer, log, count, crossed(before, count.env_steps, config.train_frequency), device)
            if crossed(before, count.env_steps, config.target_update_interval):
                agent.sync_target(config.tau)

        if crossed(before, count.env_steps, config.log_frequency):
            progress.set_postfix(log.flush(count.env_steps, epsilon), refresh=False)

        finished = count.env_steps >= config.total_steps
        if config.eval_frequency and (crossed(before, count.env_steps, config.eval_frequency) or finished):
            final_eval = _evaluate_and_save(config, agent, writer, run_dir, count, device)
            writer.add_scalar("eval/elapsed_seconds", time.perf_counter() - start, count.env_steps)
    progress.close()

    if not config.eval_frequency:
        save_model(run_dir / "model_latest.pt", agent.q_network.state_dict(), env_step=count.env_steps)
    result = TrainResult(run_dir=run_dir, env_steps=count.env_steps, updates=count.updates, episodes=count.episodes,
                         seconds=time.perf_counter() - start, final_eval=final_eval,
                         best_eval_mean=count.best_eval_mean)
    _write_summary(result)
    return result


def _learn(config: Config, agent, buffer: ReplayBuffer, log: MetricLog, count: Counters, due: int,
           device: torch.device) -> None:
    """Run the gradient steps that are due; prioritized replay gets its new priorities back."""
    if config.learning_rate_end is not None:
        agent.set_learning_rate(linear_schedule(count.env_steps, start=config.learning_rate,
                                                end=config.learning_rate_end, decay_steps=config.total_steps))
    for _ in range(due * config.gradient_steps):
        if config.prioritized:
            beta = linear_schedule(count.env_steps, start=config.priority_beta_start, end=1.0,
                                   decay_steps=config.total_steps)
            batch = buffer.sample(config.batch_size, beta)
        else:
            batch = buffer.sample(config.batch_size)
        metrics = agent.update(batch.to_torch(device))
        if config.prioritized:
            buffer.update_priorities(batch.indices, metrics["priorities"].cpu().numpy())
        log.add_update(metrics)
        count.updates += 1


def build_replay(config: Config, observation_shape: tuple[int, ...], observation_dtype: np.dtype,
                 seed: int) -> ReplayBuffer:
    common = {"capacity": config.buffer_size, "observation_shape": observation_shape,
              "observation_dtype": observation_dtype, "seed": seed}
    if config.prioritized:
        return PrioritizedReplayBuffer(**common, alpha=config.priority_alpha, epsilon=config.priority_epsilon)
    return ReplayBuffer(**common)


def _evaluate_and_save(config: Config, agent, writer: SummaryWriter, run_dir: Path, count: Counters,
                       device: torch.device) -> EvalResult:
    """Greedy evaluation on a separate env; save the model as latest, and as best if it is."""
    step = count.env_steps
    result = evaluate_policy(agent.q_network, config.env_id, episodes=config.eval_episodes,
                             seed=config.seed + EVAL_SEED_OFFSET, epsilon=config.eval_epsilon, device=device)
    writer.add_scalar("eval/mean_return", result.mean, step)
    writer.add_scalar("eval/std_return", result.std, step)
    writer.add_scalar("eval/mean_length", float(np.mean(result.lengths)), step)
    save_model(run_dir / "model_latest.pt", agent.q_network.state_dict(), env_step=step,
               eval_mean_return=result.mean)
    if count.best_eval_mean is None or result.mean > count.best_eval_mean:
        count.best_eval_mean = result.mean
        save_model(run_dir / "model_best.pt", agent.q_network.state_dict(), env_step=step,
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
