"""A run's training state: its parts built and seeded from a config (``build_parts``), what the
loop works on (``Run``), its counters, and a checkpoint's contents assembled from them and saved
(``save_training_state``), then checked and put back into freshly built parts (``restore``).
Every check of a checkpoint's contents reports a misfit as a ValueError, which ``checked`` turns
into one line naming the checkpoint; anything else is a bug.

The loop (train.py) decides when to checkpoint; checkpoints/ owns the files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from dqn_family.agents import (
    DQNAgent,
    NetworkFactory,
    RecurrentAgent,
    as_recurrent,
    describe_parts,
    input_parts,
    make_agent,
    replay_layout,
    set_torch_threads,
)
from dqn_family.checkpoints import (
    CheckpointError,
    check_global_rng_state,
    global_rng_state,
    save_checkpoint,
    set_global_rng_state,
    set_numpy_generator_state,
    to_arrays,
    to_storable,
)
from dqn_family.configs import Config, config_to_dict
from dqn_family.configs.config import is_count
from dqn_family.envs import (
    EnvOptions,
    action_count,
    action_masks,
    make_vector_env,
    observation_layout,
    observation_states,
)
from dqn_family.fileio import one_line, short_repr
from dqn_family.replay import ReplayBuffer, SequenceReplayBuffer
from dqn_family.training.buffers import build_replay
from dqn_family.training.metrics import MetricLog, NonFiniteError

T = TypeVar("T")


@dataclass(frozen=True)
class EvalResult:
    """The returns and lengths of a greedy evaluation's episodes (evaluate.evaluate_policy)."""

    returns: list[float]
    lengths: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


@dataclass(frozen=True)
class TrainResult:
    """What train() and resume() return; summary.json says the same (training.run_dir.write_summary)."""

    run_dir: Path
    env_steps: int
    updates: int
    episodes: int
    seconds: float  # training wall-clock time, over every session of a resumed run
    final_eval: EvalResult | None
    best_eval_mean: float | None
    resumed_from: int | None = None  # env step of the checkpoint this session started from
    stopped_early: str | None = None  # why an on_evaluation callback ended the run before total_steps


class SelfPlayPart(Protocol):
    """Two-player games' self-play (training.games.self_play_of): told of episode starts by the
    loop's Stepper (training.loop.EpisodeStarts), its state kept by checkpoints."""

    def before_resets(self, starting: np.ndarray, env_steps: int) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint keeps (None: nothing)."""

    def load_state_dict(self, state: Any, *, env_steps: int) -> None:
        """Load a checkpoint's ``state_dict()``, checked first (ValueError if it does not fit)."""


@dataclass
class Run:
    """What the loop works on, built by train() or resume()."""

    config: Config
    run_dir: Path
    device: torch.device
    envs: gym.vector.VectorEnv
    agent: DQNAgent | RecurrentAgent  # recurrent: config.recurrent (training.loop acts through either)
    buffer: ReplayBuffer | SequenceReplayBuffer
    env_seeds: np.random.Generator  # seeds the envs' fresh episodes when the run resumes
    self_play: SelfPlayPart | None = None  # two-player games: picks the opponents of the envs

    @property
    def spaces(self) -> dict[str, Any]:
        return spaces_of(self.envs)


class ReplayState(Protocol):
    """What a checkpoint needs of a replay: a ReplayBuffer, or a proxy of one in another process."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None: ...

    def __len__(self) -> int: ...


class CheckpointedRun(Protocol):
    """What a checkpoint is assembled from and restored into: a Run, or a distributed run
    (distributed.run), whose replay lives in another process."""

    @property
    def config(self) -> Config: ...
    @property
    def run_dir(self) -> Path: ...
    @property
    def agent(self) -> DQNAgent | RecurrentAgent: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def buffer(self) -> ReplayState: ...
    @property
    def env_seeds(self) -> np.random.Generator: ...
    @property
    def spaces(self) -> dict[str, Any]: ...
    @property
    def self_play(self) -> SelfPlayPart | None: ...


@dataclass
class Counters:
    """The loop's progress: what a checkpoint needs besides networks, buffer, RNGs and metrics."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    best_eval_mean: float | None = None
    seconds: float = 0.0  # training wall-clock time up to the last checkpoint, over all sessions


@dataclass(frozen=True)
class Resumed:
    """A checkpoint's loop state, checked, for the loop to start from."""

    counters: Counters
    metrics: dict[str, Any]
    final_eval: EvalResult | None


def build_parts(
    config: Config, device: torch.device, network: NetworkFactory | None = None
) -> tuple[gym.vector.VectorEnv, DQNAgent | RecurrentAgent, ReplayBuffer | SequenceReplayBuffer, np.random.Generator]:
    """Seed, then make the envs, the agent, the replay buffer (keeping action masks when the run acts
    with them: envs.action_masks) and the env-seed generator."""
    set_torch_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    agent_seed, buffer_seed, env_seed = part_seeds(config)
    masks = action_masks(config.env_id, config.action_mask, EnvOptions.of(config))
    envs = make_vector_env(config.env_id, config.num_envs, mode=config.vector_mode, options=EnvOptions.of(config))
    try:
        observation_space = envs.single_observation_space
        parts = input_parts(observation_space)  # dictionary observations: one input per key
        observation_shape, observation_dtype = observation_layout(observation_space) if parts is None else ((), None)
        agent = make_agent(
            config,
            observation_shape=observation_shape,
            n_actions=action_count(envs.single_action_space),
            device=device,
            seed=agent_seed,
            network=network,
            observation_states=observation_states(observation_space),
            observation_parts=parts,
        )
        buffer = build_replay(
            config,
            observation_shape,
            observation_dtype,
            buffer_seed,
            device=device if config.device_replay and device.type != "cpu" else None,
            state_size=as_recurrent(agent.q_network).state_size if isinstance(agent, RecurrentAgent) else None,
            action_masks=masks,
            observation_parts=None if parts is None else replay_layout(parts),
        )
    except BaseException:
        envs.close()
        raise
    return envs, agent, buffer, np.random.default_rng(env_seed)


def part_seeds(config: Config) -> tuple[int, int, int]:
    """The agent's, the replay's and the env-seed generator's seeds, all from ``config.seed``."""
    agent_seed, buffer_seed, env_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(config.seed).spawn(3)
    )
    return agent_seed, buffer_seed, env_seed


def save_training_state(
    run: CheckpointedRun, writer: SummaryWriter, count: Counters, log: MetricLog, final_eval: EvalResult | None
) -> int:
    """Save the full training state at this env step, once it is known to be finite."""
    check_finite(run.agent, log, count.env_steps)
    log.write_episodes()
    writer.flush()  # the curves up to this step reach the disk before the checkpoint that continues them
    save_checkpoint(
        run.run_dir,
        training_state(run, count, log, final_eval),
        env_step=count.env_steps,
        keep=run.config.keep_checkpoints,
    )
    return count.env_steps


# --- run directory ------------------------------------------------------------------------------


def training_state(
    run: CheckpointedRun, count: Counters, log: MetricLog, final_eval: EvalResult | None
) -> dict[str, Any]:
    """Everything a resumed run needs, as tensors, numbers, strings, lists, tuples and dicts."""
    return {
        "config": config_to_dict(run.config),
        "spaces": run.spaces,
        "counters": dataclasses.asdict(count),
        "agent": run.agent.state_dict(),
        "replay": to_storable(run.buffer.state_dict()),
        "rng": {**global_rng_state(), "env_seeds": run.env_seeds.bit_generator.state},
        "metrics": log.state_dict(),
        "final_eval": None if final_eval is None else dataclasses.asdict(final_eval),
        "self_play": None if run.self_play is None else run.self_play.state_dict(),
    }


def restore(run: CheckpointedRun, payload: dict[str, Any]) -> Resumed:
    """Put a checkpoint's state into freshly built parts, each checked against this run's config
    and spaces before it is loaded (a misfit is a ValueError, see checked). The process-wide
    generators are set last, once every part has passed; the caller records the resume only then."""
    spaces = _part(payload, "spaces")
    if spaces != run.spaces:
        raise ValueError(
            f"it was written for an env with {short_repr(spaces, 200)}, but {run.config.env_id} has {run.spaces}"
        )
    counters, final_eval = progress_from(payload)
    metrics = MetricLog.check_state(_part(payload, "metrics"))
    if metrics["pending_updates"] > counters.updates:
        raise ValueError(
            f"its metric sums cover {metrics['pending_updates']:,} updates, more than the "
            f"{counters.updates:,} it counts"
        )
    rng = _part(payload, "rng")
    check_global_rng_state(rng)
    set_numpy_generator_state(run.env_seeds, _part(rng, "env_seeds"))
    run.agent.load_state_dict(_part(payload, "agent"))
    run.buffer.load_state_dict(to_arrays(_part(payload, "replay")), n_actions=run.spaces["n_actions"])
    if len(run.buffer) > counters.env_steps:
        raise ValueError(
            f"its replay holds {len(run.buffer):,} transitions, more than its {counters.env_steps:,} env steps"
        )
    if run.self_play is not None:  # a checkpoint from before self-play's state was kept has none
        run.self_play.load_state_dict(payload.get("self_play"), env_steps=counters.env_steps)
    set_global_rng_state(rng)
    return Resumed(counters, metrics, final_eval)


def _part(state: Any, key: str) -> Any:
    """``state[key]`` of a checkpoint; ValueError if it is missing."""
    if not isinstance(state, dict) or key not in state:
        raise ValueError(f"it has no {key!r}")
    return state[key]


def progress_from(payload: dict[str, Any]) -> tuple[Counters, EvalResult | None]:
    """The counters and the last evaluation of a checkpoint, checked (ValueError if malformed)."""
    values = _part(payload, "counters")
    names = {f.name for f in dataclasses.fields(Counters)}
    if not isinstance(values, dict) or not set(values) <= names:
        raise ValueError(f"its counters must be a dict of {', '.join(sorted(names))}")
    counters = Counters(**values)
    best, seconds = counters.best_eval_mean, counters.seconds
    if (
        not all(is_count(getattr(counters, name)) for name in ("env_steps", "updates", "episodes"))
        or counters.env_steps != payload["env_step"]
        or counters.episodes > counters.env_steps
        or not (best is None or (isinstance(best, float) and math.isfinite(best)))
        or not (isinstance(seconds, float) and 0 <= seconds < math.inf)
    ):
        raise ValueError(f"its counters are malformed: {short_repr(values, 200)}")
    return counters, _final_eval_from(_part(payload, "final_eval"))


def _final_eval_from(evaluated: Any) -> EvalResult | None:
    if evaluated is None:
        return None
    returns = evaluated.get("returns") if isinstance(evaluated, dict) else None
    lengths = evaluated.get("lengths") if isinstance(evaluated, dict) else None
    if (
        not isinstance(returns, list)
        or not isinstance(lengths, list)
        or not 0 < len(returns) == len(lengths)
        or not all(isinstance(r, float) and math.isfinite(r) for r in returns)
        or not all(is_count(n) for n in lengths)
    ):
        raise ValueError("its final evaluation must be as many finite returns as episode lengths, at least one")
    return EvalResult(returns=returns, lengths=lengths)


def checked(path: Path, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, its ValueError made a one-line CheckpointError. ValueError is how every
    check of a checkpoint's contents reports a misfit (here, in the load_state_dicts and in
    checkpoints.state); anything else is a bug, and keeps its traceback."""
    try:
        return function(*args)
    except ValueError as error:
        reason = one_line(error)
        raise CheckpointError(f"checkpoint {path} does not fit this run: {reason[:300]}") from None


def check_finite(agent: DQNAgent | RecurrentAgent, log: MetricLog, step: int) -> None:
    """NonFiniteError if a loss sum not yet logged or a weight is NaN or infinite (one device sync)."""
    named = [
        *log.sums.items(),
        *((f"q_network.{n}", p) for n, p in agent.q_network.named_parameters()),
        *((f"target_network.{n}", p) for n, p in agent.target_network.named_parameters()),
    ]
    finite = torch.stack([tensor.detach().isfinite().all() for _, tensor in named]).cpu().numpy()
    if not finite.all():
        raise NonFiniteError(f"{named[int(np.argmin(finite))][0]} became NaN or infinite by env step {step:,}")


def spaces_of(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    return spaces_for(envs.single_observation_space, envs.single_action_space)


def spaces_for(space: gym.Space, action_space: gym.Space) -> dict[str, Any]:
    """The observations and actions a checkpoint was written for: shape and dtype, or for dictionary
    observations each key's shape, dtype and Discrete states (plain lists, strings and numbers)."""
    parts = input_parts(space)
    if parts is None:
        shape, dtype = observation_layout(space)
        observations: dict[str, Any] = {"observation_shape": list(shape), "observation_dtype": str(dtype)}
    else:
        observations = {"observation_parts": describe_parts(parts)}
    return {**observations, "n_actions": action_count(action_space)}
