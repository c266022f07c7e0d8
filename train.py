"""Train a DQN-family agent: ``python train.py --env CartPole-v1 [--flag value ...]``; continue a
stopped run with ``python train.py --resume RUN_DIR``.

One loop, read top to bottom: seed, build, then per vector step {act, step, store, maybe update,
maybe sync target, maybe log, maybe evaluate and save, maybe checkpoint}. The loop decides *when*;
the agent decides *what the maths is*. ``train(config)`` and ``resume(run_dir)`` are the same
things as Python functions.

A checkpoint (every ``checkpoint_every`` env steps, and at exit, including after SIGINT or SIGTERM
on the command line) holds the full training state: networks, optimizer, replay contents and
priorities, every generator (Python, numpy, torch), the counters and the loss sums not yet logged
(``checkpoints/`` has the file protocol). A resumed run restarts its envs at fresh episodes seeded
from the checkpoint's env-seed generator: the n-step windows and episode returns in progress at
the checkpoint are not saved, so those partial episodes are neither stored nor logged. Resuming
the same checkpoint twice gives identical runs on the CPU, and the TensorBoard curves go on from
the checkpoint's step, the steps the stopped process logged after it being purged.
"""

from __future__ import annotations

import os
import sys

try:  # Ctrl-C during the imports (torch's take seconds): one line and the shell's code for SIGINT, not a traceback
    import dataclasses
    import json
    import math
    import platform
    import signal
    import time
    from dataclasses import dataclass
    from pathlib import Path
    from typing import Any

    import gymnasium as gym
    import numpy as np
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from agents import (SCHEDULES, DQNAgent, NetworkFactory, factory_spec, linear_schedule, make_agent,
                        resolve_device, save_model, set_torch_threads)
    from checkpoints import (HARMLESS_ON_RESUME, CheckpointError, check_global_rng_state, check_same_run,
                             find_run_dir, global_rng_state, latest_checkpoint, load_checkpoint, lock_run_dir,
                             record_resume, resume_config, save_checkpoint, set_global_rng_state,
                             set_numpy_generator_state, stop_on_signals, to_arrays, to_storable,
                             wait_for_later_event_file_name)
    from configs import (Config, ConfigError, add_config_arguments, config_from_args, config_to_dict, env_file_name,
                         make_parser, read_config_file, report_user_errors, save_config)
    from configs.config import FIELD_NAMES
    from configs.errors import os_errors_in
    from configs.trust import IMPORTING_FIELDS, allow_imports_from_cwd, check_run_imports
    from envs import AutoresetTracker, EnvOptions, make_vector_env, observation_states
    from evaluate import EVAL_SEED_OFFSET, EvalResult, evaluate_policy
    from fileio import short_repr, write_text_atomic
    from replay import NStepAccumulator, ReplayBuffer
    from training import MetricLog, NonFiniteError, Progress, build_replay, is_count
except KeyboardInterrupt:
    sys.stderr.write(f"\n{os.path.basename(sys.argv[0])}: interrupted\n")  # the script run (train.py imports evaluate.py)
    raise SystemExit(130) from None


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    updates: int
    episodes: int
    seconds: float  # training wall-clock time, over every session of a resumed run
    final_eval: EvalResult | None
    best_eval_mean: float | None
    resumed_from: int | None = None  # env step of the checkpoint this session started from


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training, after a checkpoint of the step reached was saved."""

    def __init__(self, signal_number: int, run_dir: Path, env_steps: int) -> None:
        self.exit_code = 128 + signal_number  # the shell's convention for "ended by this signal"
        super().__init__(f"stopped by {signal.Signals(signal_number).name} at env step {env_steps:,}; "
                         f"checkpoint saved. Resume with: python train.py --resume {run_dir}")


def crossed(before: int, after: int, interval: int) -> int:
    """How many multiples of ``interval`` lie in (before, after]: how often an every-N-steps
    event fires when a vector step moves the env-step counter from ``before`` to ``after``."""
    return after // interval - before // interval


@dataclass
class _Run:
    """What the loop works on, built by train() or resume()."""

    config: Config
    run_dir: Path
    device: torch.device
    envs: gym.vector.VectorEnv
    agent: DQNAgent
    buffer: ReplayBuffer
    env_seeds: np.random.Generator  # seeds the envs' fresh episodes when the run resumes


def train(config: Config, *, network: NetworkFactory | None = None, handle_signals: bool = False) -> TrainResult:
    """Train from ``config``; ``network`` optionally gives your own Q-network factory.
    ``handle_signals`` (main thread only) makes SIGINT and SIGTERM save a checkpoint and raise
    TrainingInterrupted, instead of their usual effect; from the run directory's creation on, so
    that a signal before the first step leaves a run that ``resume`` continues (from step 0)."""
    if network is not None and config.network is None and (spec := factory_spec(network)) is not None:
        config = dataclasses.replace(config, network=spec)  # recorded so evaluate.py can rebuild it
    device = resolve_device(config.device)
    envs, agent, buffer, env_seeds = _build(config, device, network)
    try:
        with stop_on_signals(handle_signals):  # the loop goes on with this request (a signal now stops at step 0)
            run_dir = create_run_dir(config, device)
            if network is not None and config.network is None:
                print("note: this network cannot be imported by name, so evaluate.py cannot rebuild it (nor --resume "
                      "continue the run); define it in an importable module to make the run reloadable",
                      file=sys.stderr)
            run = _Run(config, run_dir, device, envs, agent, buffer, env_seeds)
            with os_errors_in(run_dir), lock_run_dir(run_dir), SummaryWriter(log_dir=str(run_dir)) as writer:
                writer.add_text("hyperparameters", _markdown_table(config_to_dict(dataclasses.replace(config, run_dir=str(run_dir)))))
                return _loop(run, writer, None, handle_signals)
    finally:
        envs.close()


def resume(path: str | Path, overrides: dict[str, Any] | None = None, *, handle_signals: bool = False,
           trust_imports: bool = False) -> TrainResult:
    """Continue the run in directory ``path`` from its latest checkpoint to its total_steps.
    ``overrides`` may change only harmless settings (``checkpoints.HARMLESS_ON_RESUME``). A
    ``module:Name`` in the run's config is imported only if ``overrides`` give the same value or
    with ``trust_imports`` (configs.trust)."""
    run_dir = find_run_dir(path)
    overrides = overrides or {}
    with os_errors_in(run_dir), lock_run_dir(run_dir):
        config = resume_config(run_dir, overrides)
        check_run_imports(config_to_dict(config), run_dir, given=[overrides.get(name) for name in IMPORTING_FIELDS],
                          trust_imports=trust_imports)
        checkpoint_path = latest_checkpoint(run_dir)
        payload = load_checkpoint(checkpoint_path)
        check_same_run(payload.get("config"), config, checkpoint_path)
        if payload["env_step"] >= config.total_steps:  # nothing left to do
            counters, final_eval = _checked(checkpoint_path, _progress_from, payload)
            return TrainResult(run_dir, counters.env_steps, counters.updates, counters.episodes, counters.seconds,
                               final_eval, counters.best_eval_mean, resumed_from=counters.env_steps)
        device = resolve_device(config.device)
        envs, agent, buffer, env_seeds = _build(config, device)
        try:
            run = _Run(config, run_dir, device, envs, agent, buffer, env_seeds)
            resumed = _checked(checkpoint_path, _restore, run, payload)
            record_resume(run_dir, env_step=payload["env_step"], device=str(device))
            wait_for_later_event_file_name(run_dir)
            # Steps after the checkpoint, logged by the stopped process, are hidden from TensorBoard.
            with SummaryWriter(log_dir=str(run_dir), purge_step=payload["env_step"] + 1) as writer:
                return _loop(run, writer, resumed, handle_signals)
        finally:
            envs.close()


def _build(config: Config, device: torch.device, network: NetworkFactory | None = None
           ) -> tuple[gym.vector.VectorEnv, DQNAgent, ReplayBuffer, np.random.Generator]:
    """Seed, then make the envs, the agent, the replay buffer and the env-seed generator."""
    set_torch_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    agent_seed, buffer_seed, env_seed = (int(s.generate_state(1)[0])
                                         for s in np.random.SeedSequence(config.seed).spawn(3))
    envs = make_vector_env(config.env_id, config.num_envs, mode=config.vector_mode, options=EnvOptions.of(config))
    try:
        observation_space, action_space = envs.single_observation_space, envs.single_action_space
        agent = make_agent(config, observation_shape=observation_space.shape, n_actions=int(action_space.n),
                           device=device, seed=agent_seed, network=network,
                           observation_states=observation_states(observation_space))
        buffer = build_replay(config, observation_space.shape, observation_space.dtype, buffer_seed,
                              device=device if config.device_replay and device.type != "cpu" else None)
    except BaseException:
        envs.close()
        raise
    return envs, agent, buffer, np.random.default_rng(env_seed)


@dataclass
class Counters:
    """The loop's progress: what a checkpoint needs besides networks, buffer, RNGs and metrics."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    best_eval_mean: float | None = None
    seconds: float = 0.0  # training wall-clock time up to the last checkpoint, over all sessions


@dataclass(frozen=True)
class _Resumed:
    """A checkpoint's loop state, checked, for _loop to start from."""

    counters: Counters
    metrics: dict[str, Any]
    final_eval: EvalResult | None


def _loop(run: _Run, writer: SummaryWriter, resumed: _Resumed | None, handle_signals: bool) -> TrainResult:
    config, agent, buffer, envs = run.config, run.agent, run.buffer, run.envs
    num_envs = config.num_envs
    epsilon_at = SCHEDULES[config.exploration_schedule]
    autoreset = AutoresetTracker(num_envs)
    n_step = NStepAccumulator(num_envs, config.n_step, config.gamma) if config.n_step > 1 else None
    episode_return, episode_length = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)
    count, log, final_eval, saved_step = Counters(), MetricLog(writer, run.device), None, None
    if resumed is None:
        observations, _ = envs.reset(seed=config.seed)  # sub-env i is seeded seed + i
    else:
        count, final_eval, saved_step = resumed.counters, resumed.final_eval, resumed.counters.env_steps
        log.load_state_dict(resumed.metrics)
        observations, _ = envs.reset(seed=int(run.env_seeds.integers(2**31)))  # fresh episodes, from the checkpoint
    resumed_from = saved_step
    started = time.perf_counter() - count.seconds  # so that elapsed times count earlier sessions too
    progress = Progress(total=config.total_steps, initial=count.env_steps, enabled=config.progress)
    with stop_on_signals(handle_signals) as stop:
        try:
            while count.env_steps < config.total_steps and stop.signal is None:
                epsilon = epsilon_at(count.env_steps, start=config.epsilon_start, end=config.epsilon_end,
                                     decay_steps=config.epsilon_decay_steps)
                actions = agent.act(observations, epsilon)
                next_observations, rewards, terminated, truncated, infos = envs.step(actions)

                # Under NEXT_STEP autoreset, the step after an episode's end only resets that sub-env:
                # it is not a transition, so it is neither stored nor counted.
                real = autoreset.real_steps(terminated, truncated)
                # Indexing with slice(None) copies nothing: the common step, where every sub-env's is real.
                stored = slice(None) if autoreset.all_real else real
                learn_rewards, learn_terminated = learning_signal(config, rewards, terminated, infos)
                if n_step is None:  # 1-step: the transitions are the real steps themselves
                    buffer.add(observations[stored], actions[stored], learn_rewards[stored],
                               next_observations[stored], learn_terminated[stored], truncated[stored], config.gamma)
                else:
                    buffer.add(**n_step.push(observations, actions, learn_rewards, next_observations,
                                             learn_terminated, truncated, real).as_dict())
                observations = next_observations
                before = count.env_steps
                count.env_steps += num_envs if autoreset.all_real else int(real.sum())
                progress.update(count.env_steps - before)

                if autoreset.all_real:
                    episode_return += rewards
                    episode_length += 1
                else:
                    episode_return[real] += rewards[real]
                    episode_length[real] += 1
                if autoreset.any_pending:  # an episode ended on this step (the autoreset step reports no end)
                    for i in np.flatnonzero(real & autoreset.pending):
                        log.add_episode(float(episode_return[i]), int(episode_length[i]), count.env_steps)
                        episode_return[i], episode_length[i] = 0.0, 0
                        count.episodes += 1

                if count.env_steps >= config.learning_starts and len(buffer) >= config.batch_size:
                    due = crossed(before, count.env_steps, config.train_frequency)
                    if due:
                        if config.compile and count.updates == 0:
                            progress.note("compiling the update with torch.compile (once, about 3-15 s)...")
                        _learn(config, agent, buffer, log, count, due, run.device)
                    if crossed(before, count.env_steps, config.target_update_interval):
                        agent.sync_target(config.tau)

                if crossed(before, count.env_steps, config.log_frequency):
                    progress.set_status(**log.flush(count.env_steps, epsilon))

                finished = count.env_steps >= config.total_steps
                if config.eval_frequency and (crossed(before, count.env_steps, config.eval_frequency) or finished):
                    _check_finite(agent, log, count.env_steps)
                    final_eval = _evaluate_and_save(config, agent, writer, run.run_dir, count, run.device)
                    progress.set_status(eval=f"{final_eval.mean:.1f}")
                    writer.add_scalar("eval/elapsed_seconds", time.perf_counter() - started, count.env_steps)

                if config.checkpoint_every and crossed(before, count.env_steps, config.checkpoint_every):
                    count.seconds = time.perf_counter() - started
                    saved_step = _checkpoint(run, writer, count, log, final_eval)
            if count.env_steps > config.total_steps:  # a vector step moves every sub-env at once
                progress.note(f"stopped at {count.env_steps:,} env steps: the last step of the {num_envs} envs "
                              f"together went past total_steps {config.total_steps:,}")
            progress.close()
            count.seconds = time.perf_counter() - started
            if saved_step != count.env_steps:  # at exit: finished, or stopped by a signal
                saved_step = _checkpoint(run, writer, count, log, final_eval)
        except NonFiniteError as error:
            kept = ("no checkpoint was written yet" if saved_step is None else
                    f"the last good checkpoint (env step {saved_step:,}) is kept in {run.run_dir / 'checkpoints'}")
            raise NonFiniteError(f"{error}; training stopped, {kept} (a lower --learning-rate or "
                                 "--max-grad-norm may help, or check the env's rewards)") from None
        finally:
            progress.close()
            log.write_episodes()  # the episodes since the last log, whatever stopped the loop

    if not config.eval_frequency:
        save_model(run.run_dir / "model_latest.pt", agent.q_network.state_dict(), env_step=count.env_steps)
    if stop.signal is not None and count.env_steps < config.total_steps:
        raise TrainingInterrupted(stop.signal, run.run_dir, count.env_steps)
    result = TrainResult(run_dir=run.run_dir, env_steps=count.env_steps, updates=count.updates,
                         episodes=count.episodes, seconds=count.seconds, final_eval=final_eval,
                         best_eval_mean=count.best_eval_mean, resumed_from=resumed_from)
    _write_summary(result)
    return result


def learning_signal(config: Config, rewards: np.ndarray, terminated: np.ndarray,
                    infos: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """What learning sees of a vector step: sign(reward) under ``clip_rewards``, and a lost life
    as terminal under ``terminal_on_life_loss`` (Atari envs report it as ``info["life_loss"]``).
    Logged returns and episode ends stay the env's own."""
    if config.clip_rewards:
        rewards = np.sign(rewards)
    if config.terminal_on_life_loss and "life_loss" in infos:
        terminated = terminated | (infos["life_loss"] & infos["_life_loss"])
    return rewards, terminated


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
            priorities = metrics["priorities"].cpu().numpy()  # this sync is needed anyway
            if not np.isfinite(priorities).all():
                raise NonFiniteError(f"TD errors are NaN or infinite at env step {count.env_steps:,}")
            buffer.update_priorities(batch.indices, priorities)
        log.add_update(metrics)
        count.updates += 1


def _evaluate_and_save(config: Config, agent, writer: SummaryWriter, run_dir: Path, count: Counters,
                       device: torch.device) -> EvalResult:
    """Greedy evaluation on a separate env; save the model as latest, and as best if it is."""
    step = count.env_steps
    result = evaluate_policy(agent.q_network, config.env_id, episodes=config.eval_episodes,
                             seed=config.seed + EVAL_SEED_OFFSET, epsilon=config.eval_epsilon, device=device,
                             env_options=EnvOptions.of(config), numpy_acting=config.numpy_acting)
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


# --- checkpoints ------------------------------------------------------------------------------

def _checkpoint(run: _Run, writer: SummaryWriter, count: Counters, log: MetricLog,
                final_eval: EvalResult | None) -> int:
    """Save the full training state at this env step, once it is known to be finite."""
    _check_finite(run.agent, log, count.env_steps)
    log.write_episodes()
    writer.flush()  # the curves up to this step reach the disk before the checkpoint that continues them
    save_checkpoint(run.run_dir, training_state(run, count, log, final_eval), env_step=count.env_steps,
                    keep=run.config.keep_checkpoints)
    return count.env_steps


def training_state(run: _Run, count: Counters, log: MetricLog, final_eval: EvalResult | None) -> dict[str, Any]:
    """Everything a resumed run needs, as tensors, numbers, strings, lists, tuples and dicts."""
    return {"config": config_to_dict(run.config), "spaces": _spaces(run.envs), "counters": dataclasses.asdict(count),
            "agent": run.agent.state_dict(), "replay": to_storable(run.buffer.state_dict()),
            "rng": {**global_rng_state(), "env_seeds": run.env_seeds.bit_generator.state},
            "metrics": log.state_dict(),
            "final_eval": None if final_eval is None else dataclasses.asdict(final_eval)}


def _restore(run: _Run, payload: dict[str, Any]) -> _Resumed:
    """Put a checkpoint's state into freshly built parts, each checked against this run's config
    and spaces before it is loaded (a misfit is a ValueError, see _checked). The process-wide
    generators are set last, once every part has passed; the caller records the resume only then."""
    spaces = _part(payload, "spaces")
    if spaces != _spaces(run.envs):
        raise ValueError(f"it was written for an env with {short_repr(spaces, 200)}, but {run.config.env_id} has "
                         f"{_spaces(run.envs)}")
    counters, final_eval = _progress_from(payload)
    metrics = MetricLog.check_state(_part(payload, "metrics"))
    if metrics["pending_updates"] > counters.updates:
        raise ValueError(f"its metric sums cover {metrics['pending_updates']:,} updates, more than the "
                         f"{counters.updates:,} it counts")
    rng = _part(payload, "rng")
    check_global_rng_state(rng)
    set_numpy_generator_state(run.env_seeds, _part(rng, "env_seeds"))
    run.agent.load_state_dict(_part(payload, "agent"))
    run.buffer.load_state_dict(to_arrays(_part(payload, "replay")), n_actions=int(run.envs.single_action_space.n))
    if len(run.buffer) > counters.env_steps:
        raise ValueError(f"its replay holds {len(run.buffer):,} transitions, more than its {counters.env_steps:,} "
                         "env steps")
    set_global_rng_state(rng)
    return _Resumed(counters, metrics, final_eval)


def _part(state: Any, key: str) -> Any:
    """``state[key]`` of a checkpoint; ValueError if it is missing."""
    if not isinstance(state, dict) or key not in state:
        raise ValueError(f"it has no {key!r}")
    return state[key]


def _progress_from(payload: dict[str, Any]) -> tuple[Counters, EvalResult | None]:
    """The counters and the last evaluation of a checkpoint, checked (ValueError if malformed)."""
    values = _part(payload, "counters")
    names = {f.name for f in dataclasses.fields(Counters)}
    if not isinstance(values, dict) or not set(values) <= names:
        raise ValueError(f"its counters must be a dict of {', '.join(sorted(names))}")
    counters = Counters(**values)
    best, seconds = counters.best_eval_mean, counters.seconds
    if (not all(is_count(getattr(counters, name)) for name in ("env_steps", "updates", "episodes"))
            or counters.env_steps != payload["env_step"] or counters.episodes > counters.env_steps
            or not (best is None or (isinstance(best, float) and math.isfinite(best)))
            or not (isinstance(seconds, float) and 0 <= seconds < math.inf)):
        raise ValueError(f"its counters are malformed: {short_repr(values, 200)}")
    return counters, _final_eval_from(_part(payload, "final_eval"))


def _final_eval_from(evaluated: Any) -> EvalResult | None:
    if evaluated is None:
        return None
    returns = evaluated.get("returns") if isinstance(evaluated, dict) else None
    lengths = evaluated.get("lengths") if isinstance(evaluated, dict) else None
    if (not isinstance(returns, list) or not isinstance(lengths, list) or not 0 < len(returns) == len(lengths)
            or not all(isinstance(r, float) and math.isfinite(r) for r in returns)
            or not all(is_count(n) for n in lengths)):
        raise ValueError("its final evaluation must be as many finite returns as episode lengths, at least one")
    return EvalResult(returns=returns, lengths=lengths)


def _checked(path: Path, function, *args):
    """``function(*args)``, its ValueError made a one-line CheckpointError. ValueError is how every
    check of a checkpoint's contents reports a misfit (here, in the load_state_dicts and in
    checkpoints.state); anything else is a bug, and keeps its traceback."""
    try:
        return function(*args)
    except ValueError as error:
        reason = " ".join(str(error).split())
        raise CheckpointError(f"checkpoint {path} does not fit this run: {reason[:300]}") from None


def _check_finite(agent: DQNAgent, log: MetricLog, step: int) -> None:
    """NonFiniteError if a loss sum not yet logged or a weight is NaN or infinite (one device sync)."""
    named = [*log.sums.items(), *((f"q_network.{n}", p) for n, p in agent.q_network.named_parameters()),
             *((f"target_network.{n}", p) for n, p in agent.target_network.named_parameters())]
    finite = torch.stack([tensor.detach().isfinite().all() for _, tensor in named]).cpu().numpy()
    if not finite.all():
        raise NonFiniteError(f"{named[int(np.argmin(finite))][0]} became NaN or infinite by env step {step:,}")


def _spaces(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    space = envs.single_observation_space
    return {"observation_shape": list(space.shape), "observation_dtype": str(space.dtype),
            "n_actions": int(envs.single_action_space.n)}


# --- run directory ------------------------------------------------------------------------------

def create_run_dir(config: Config, device: torch.device) -> Path:
    """Make the run directory and write the resolved config and version info before step 0.

    All or nothing: if writing them fails (a full disk, a signal's SystemExit), what was made here
    is removed again, so the same --run-dir can be used once the cause is gone. A run directory
    that exists must be an empty folder (a folder the user made for it)."""
    if config.run_dir is not None:
        run_dir = Path(config.run_dir)
        if run_dir.is_symlink() and not run_dir.exists():
            raise ConfigError(f"run directory {run_dir} is a symbolic link to {os.readlink(run_dir)}, which does not "
                              "exist; choose another --run-dir")
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise ConfigError(f"run directory {run_dir} already exists and is not empty; choose another --run-dir "
                              "(or continue that run with --resume)")
    else:
        stem = Path("runs") / f"{env_file_name(config.env_id)}__{config.algo}__s{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir, suffix = stem, 1
        while run_dir.exists():
            suffix += 1
            run_dir = stem.with_name(f"{stem.name}-{suffix}")
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with os_errors_in(run_dir):
            save_config(dataclasses.replace(config, run_dir=str(run_dir)), run_dir / "config.yaml")
            meta = {"command": sys.argv, "device": str(device), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "python": platform.python_version(), "torch": torch.__version__, "gymnasium": gym.__version__,
                    "numpy": np.__version__, "platform": platform.platform()}
            write_text_atomic(run_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    except BaseException:
        for name in ("meta.json", "config.yaml"):
            (run_dir / name).unlink(missing_ok=True)
        if made:
            run_dir.rmdir()
        raise
    return run_dir


def _write_summary(result: TrainResult) -> None:
    summary = {"env_steps": result.env_steps, "updates": result.updates, "episodes": result.episodes,
               "seconds": round(result.seconds, 3),
               "steps_per_second": round(result.env_steps / max(result.seconds, 1e-9), 1),
               "final_eval_mean_return": result.final_eval.mean if result.final_eval else None,
               "final_eval_std_return": result.final_eval.std if result.final_eval else None,
               "best_eval_mean_return": result.best_eval_mean}
    write_text_atomic(result.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def _markdown_table(values: dict) -> str:
    rows = "\n".join(f"|{key}|{value}|" for key, value in values.items())
    return f"|param|value|\n|-|-|\n{rows}"


# --- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = make_parser("train.py", "Train a DQN-family agent on a Gymnasium environment. "
                         "Settings apply in order: defaults < env preset (configs/) < --config FILE < flags.")
    add_config_arguments(parser)
    harmless = ", ".join("--" + name.replace("_", "-") for name in HARMLESS_ON_RESUME)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="Continue the run in RUN_DIR from its latest checkpoint to its total_steps. Other "
                             f"settings given must equal the run's, except {harmless}.")
    parser.add_argument("--trust-imports", action="store_true",
                        help="With --resume: import the modules the run's config names ('module:EnvId', "
                             "'module:Factory'), running their code; without it they must be given again as flags. "
                             "Never from inside the run directory.")
    args = parser.parse_args(argv)
    allow_imports_from_cwd()
    return report_user_errors("train.py", args, lambda: _train_command(args))


def _train_command(args) -> int:
    try:
        if args.resume is not None:
            result = resume(args.resume, _resume_overrides(args), handle_signals=True, trust_imports=args.trust_imports)
        else:
            result = train(config_from_args(args), handle_signals=True)
    except TrainingInterrupted as stop:
        print(f"train.py: {stop}", file=sys.stderr)
        return stop.exit_code
    if result.resumed_from == result.env_steps:
        print(f"nothing to do: {result.run_dir} already finished ({result.env_steps:,} env steps)")
        return 0
    final = (f"final eval {result.final_eval.mean:.1f} ± {result.final_eval.std:.1f}, best {result.best_eval_mean:.1f}; "
             if result.final_eval else "")
    print(f"done: {result.env_steps:,} env steps, {result.episodes:,} episodes in {result.seconds:.1f} s "
          f"({result.env_steps / max(result.seconds, 1e-9):,.0f} steps/s); {final}run directory: {result.run_dir}")
    return 0


def _resume_overrides(args) -> dict[str, Any]:
    """The settings given with --resume: from --config FILE, then the flags."""
    from_file = read_config_file(args.config) if args.config else {}
    return {**from_file, **{name: value for name, value in vars(args).items() if name in FIELD_NAMES}}


if __name__ == "__main__":
    sys.exit(main())
