"""The training loop of every run, in-process or distributed, feed-forward or recurrent: the one
place that decides *when* (collect env steps, maybe update, maybe sync the target, maybe log, maybe
evaluate, maybe checkpoint). What differs between modes is a part plugged into it (Acme's actor
core and adder, house style 25):

- acting (:class:`Acting`): actions and next states from observations, states and an epsilon. A
  feed-forward agent is the case with an empty state ([E, 0]); a recurrent agent (R2D2: Kapturowski
  et al. 2019) carries one state per sub-env, set back to the network's initial state when a
  sub-env starts an episode;
- the adder (:class:`Adder`): what replay stores of a vector step: 1-step or n-step transitions
  (replay.nstep), or overlapping sequences with the state they started from (replay.sequence);
- the stepper (:class:`Stepper`): vector envs stepped with those two, written once for this
  process's envs and every distributed actor's; with action masks (envs.masks) it carries each
  sub-env's current mask, hands it to acting, and hands replay the mask of every next observation;
- episode starts (:class:`EpisodeStarts`, optional): told which sub-envs start an episode next, before
  they reset: two-player games' self-play sets their opponents there (training.games);
- the collector (:class:`Collector`): where env steps come from and how many updates they allow:
  :class:`InProcess`, or the actors of a distributed run (distributed.learner.Fleet);
- the learner step (:func:`learn`): batches sampled (with importance weights when
  ``config.prioritized``), the agent's update, the new priorities back.

The periodic evaluation is evaluate.py's ``evaluate_and_save``, handed in by its caller (``training``
never imports the scripts).

A resumed run restarts its envs at fresh episodes: the n-step windows and sequences in progress at
the checkpoint are not saved, and every sub-env's state starts from the initial state, so resuming
the same checkpoint twice gives identical runs on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch.utils.tensorboard import SummaryWriter

from dqn_family.agents import DQNAgent, RecurrentAgent
from dqn_family.checkpoints import stop_on_signals
from dqn_family.configs import Config
from dqn_family.configs.schedules import SCHEDULES, crossed, learning_rate_at, priority_beta_at
from dqn_family.envs import AutoresetTracker, check_some_legal, learning_signal, vector_legal
from dqn_family.replay import NStepAccumulator, Sequence, SequenceAccumulator
from dqn_family.replay.observations import take
from dqn_family.training.games import mirror_boards_of, transition_discount
from dqn_family.training.hooks import EvaluationCallback
from dqn_family.training.metrics import EpisodeTracker, MetricLog, NonFiniteError, checked_priorities
from dqn_family.training.progress import Progress
from dqn_family.training.run_dir import finish_run
from dqn_family.training.state import (
    CheckpointedRun,
    Counters,
    EvalResult,
    Resumed,
    Run,
    TrainResult,
    save_training_state,
)


# --- acting --------------------------------------------------------------------------------------
class Acting(Protocol):
    """How the loop acts: one interface for feed-forward and recurrent agents."""

    def initial_state(self, count: int) -> np.ndarray:
        """States [count, S] float32 at an episode's start (S = 0 without recurrence)."""

    def act(
        self, observations: np.ndarray, states: np.ndarray, epsilon: float, legal: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actions [E], next states [E, S]); with an action mask ``legal`` (bool [E, A]) only legal
        actions, explored or greedy."""


class StatelessActing:
    """A feed-forward agent as :class:`Acting`: its state is empty, and passes through unchanged."""

    def __init__(self, agent: DQNAgent) -> None:
        self.agent = agent

    def initial_state(self, count: int) -> np.ndarray:
        return np.zeros((count, 0), dtype=np.float32)

    def act(
        self, observations: np.ndarray, states: np.ndarray, epsilon: float, legal: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.agent.act(observations, epsilon, legal), states


def acting_of(agent: DQNAgent | RecurrentAgent) -> Acting:
    return agent if isinstance(agent, RecurrentAgent) else StatelessActing(agent)


def start_episodes(acting: Acting, states: np.ndarray, starting: np.ndarray) -> np.ndarray:
    """``states`` with the rows of sub-envs that start an episode (``starting``) set to the initial
    state: the network's own, which need not be zeros (a custom recurrent network's)."""
    if states.shape[1] == 0 or not starting.any():
        return states
    return np.where(starting[:, None], acting.initial_state(len(states)), states).astype(np.float32, copy=False)


# --- adding to replay ----------------------------------------------------------------------------
@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~4 us, one is built per env step
class Step:
    """One vector step as replay sees it: the learning signal (clipped rewards, life-loss
    terminals), the states acted from, which sub-envs' steps were real (not an autoreset), and with
    action masks those of the observations and of the next observations (bool [E, A]; the true final
    observation's where an episode ended)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    states: np.ndarray
    real: np.ndarray
    all_real: bool
    legal: np.ndarray | None = None
    next_legal: np.ndarray | None = None

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(observations, actions, rewards, next observations, terminated, truncated), in the order
        the buffer and both accumulators take them."""
        return (
            self.observations,
            self.actions,
            self.rewards,
            self.next_observations,
            self.terminated,
            self.truncated,
        )


class Adder(Protocol):
    def add(self, step: Step) -> None:
        """Store what ``step`` completes."""


class TransitionSink(Protocol):
    """Where transitions go: a ReplayBuffer, or an actor's send (distributed.actor.TransitionSend)."""

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        discounts: np.ndarray | float,
        *,
        next_legal: np.ndarray | None = None,
    ) -> None: ...


class TransitionAdder:
    """1-step transitions straight into replay, or n-step ones through a per-sub-env accumulator
    (which stops at episode ends and keeps truncation apart from termination)."""

    def __init__(self, config: Config, buffer: TransitionSink) -> None:
        self.buffer, self.gamma = buffer, transition_discount(config)
        self.n_step = NStepAccumulator(config.num_envs, config.n_step, self.gamma) if config.n_step > 1 else None

    def add(self, step: Step) -> None:
        if self.n_step is not None:
            self.buffer.add(**self.n_step.push(*step.transitions(), step.real, step.next_legal).as_dict())
            return
        if step.all_real:  # the common step: every array as it is, nothing taken
            observations, actions, rewards, next_observations, terminated, truncated = step.transitions()
            next_legal = step.next_legal
        else:
            observations, actions, rewards, next_observations, terminated, truncated = (
                take(values, step.real)
                for values in step.transitions()  # take: dictionary observations too
            )
            next_legal = None if step.next_legal is None else step.next_legal[step.real]
        self.buffer.add(
            observations, actions, rewards, next_observations, terminated, truncated, self.gamma, next_legal=next_legal
        )


class SequenceSink(Protocol):
    """Where sequences go: a SequenceReplayBuffer, or an actor's send (distributed.actor.SequenceSend)."""

    def add(self, sequences: list[Sequence]) -> None: ...


class SequenceAdder:
    """Overlapping fixed-length sequences, each with the state it started from (R2D2's stored state)."""

    def __init__(self, config: Config, buffer: SequenceSink) -> None:
        self.buffer = buffer
        self.sequences = SequenceAccumulator(config.num_envs, config.sequence_length, config.sequence_overlap)

    def add(self, step: Step) -> None:
        self.buffer.add(self.sequences.push(*step.transitions(), step.states, step.real, step.legal, step.next_legal))


def adder_of(config: Config, buffer: TransitionSink | SequenceSink) -> Adder:
    """The config's adder: sequences for a recurrent network, else (n-step) transitions."""
    if config.recurrent != "off":
        return SequenceAdder(config, cast(SequenceSink, buffer))
    return TransitionAdder(config, cast(TransitionSink, buffer))


class EpisodeStarts(Protocol):
    """A part told, before sub-envs reset, which of them start an episode next and how many real env
    steps were taken so far: two-player games' self-play picks their opponents (training.games.SelfPlay)."""

    def before_resets(self, starting: np.ndarray, env_steps: int) -> None:
        """``starting``: bool [E], the sub-envs whose next reset starts an episode (all before the first)."""


class Stepper:
    """Vector envs stepped by an acting part, each step handed to an adder: what the in-process loop
    and every distributed actor do per vector step, written once.

    An ``episode_starts`` part is told after every vector step which sub-envs the next step resets,
    and before the first reset that all of them start.

    With ``masks`` (envs.masks) each sub-env's mask comes from its info at every reset and step:
    acting gets the current one, the step's adder the next one; a sub-env whose episode goes on with
    no legal action is a MaskError naming the env and the env step (``env_steps``: the real steps
    taken before, which the caller may set), and ``illegal_actions`` counts the actions taken that
    the mask forbade (it must stay 0)."""

    def __init__(
        self,
        config: Config,
        envs: VectorEnv,
        acting: Acting,
        adder: Adder,
        *,
        masks: bool = False,
        episode_starts: EpisodeStarts | None = None,
    ) -> None:
        self.config, self.envs, self.acting, self.adder = config, envs, acting, adder
        self.episode_starts = episode_starts
        self.autoreset = AutoresetTracker(config.num_envs)
        self.episodes = EpisodeTracker(config.num_envs)
        self.masks = masks
        self.legal: np.ndarray | None = None  # [E, A] bool: the masks to act with next (with masks)
        self.env_steps = 0  # real env steps taken so far (where a run resumed: set by the caller)
        self.illegal_actions = 0  # since take_illegal_actions last emptied it

    def reset(self, seed: int) -> None:
        """Fresh episodes (sub-env i seeded ``seed + i``), each from the initial state."""
        if self.episode_starts is not None:
            self.episode_starts.before_resets(np.ones(self.config.num_envs, dtype=bool), self.env_steps)
        self.observations, infos = self.envs.reset(seed=seed)
        self.states = self.acting.initial_state(self.config.num_envs)  # [E, S]
        if self.masks:
            self.legal = self._legal(infos, np.zeros(self.config.num_envs, dtype=bool), self.env_steps)

    def step(self, epsilon: float) -> tuple[int, list[tuple[float, int]]]:
        """One vector step: (real env steps taken, (return, length) of the episodes that ended)."""
        legal = self.legal
        actions, next_states = self.acting.act(self.observations, self.states, epsilon, legal)
        next_observations, rewards, terminated, truncated, infos = self.envs.step(actions)
        # Under NEXT_STEP autoreset, the step after an episode's end only resets that sub-env: it is
        # not a transition, so it is neither stored nor counted, and the observation it returned
        # starts a new episode, from the initial state.
        autoreset = self.autoreset
        real = autoreset.real_steps(terminated, truncated)
        taken = self.config.num_envs if autoreset.all_real else int(real.sum())
        next_legal = None if legal is None else self._next_legal(infos, terminated | truncated, actions, real, taken)
        learn_rewards, learn_terminated = learning_signal(self.config, rewards, terminated, infos)
        self.adder.add(
            Step(
                self.observations,
                actions,
                learn_rewards,
                next_observations,
                learn_terminated,
                truncated,
                self.states,
                real,
                autoreset.all_real,
                legal,
                next_legal,
            )
        )
        self.states = next_states if autoreset.all_real else start_episodes(self.acting, next_states, ~real)
        self.observations = next_observations
        self.env_steps += taken
        if self.episode_starts is not None:  # the sub-envs that ended now reset at the next step
            self.episode_starts.before_resets(autoreset.pending, self.env_steps)
        return taken, self.episodes.step(rewards, real, autoreset)

    def _legal(self, infos: dict[str, Any], ended: np.ndarray, env_step: int) -> np.ndarray:
        """The masks in a reset's or step's infos, bool [E, A], checked (envs.masks)."""
        n_actions = int(getattr(self.envs.single_action_space, "n", 0))
        legal = vector_legal(infos, self.config.num_envs, n_actions, self.config.env_id)
        check_some_legal(legal, ended, self.config.env_id, env_step)
        return legal

    def _next_legal(
        self, infos: dict[str, Any], ended: np.ndarray, actions: np.ndarray, real: np.ndarray, taken: int
    ) -> np.ndarray:
        """The next observations' masks (the true final observation's where an episode ended, which
        may have no legal action); counts the illegal actions just taken; sets the masks to act with."""
        assert self.legal is not None
        next_legal = self._legal(infos, ended, self.env_steps + taken)
        taken_legal = self.legal[np.arange(len(actions)), actions]
        self.illegal_actions += int(np.count_nonzero(~taken_legal & real))
        # A sub-env whose episode ended is reset by its next step, which ignores the action: any will do.
        self.legal = next_legal | ended[:, None] if ended.any() else next_legal
        return next_legal

    def take_illegal_actions(self) -> int:
        """Illegal actions taken since the last call."""
        count, self.illegal_actions = self.illegal_actions, 0
        return count


# --- learning ------------------------------------------------------------------------------------
class _Batch(Protocol):
    indices: Any

    def to_torch(self, device: torch.device) -> Any: ...


class _PrioritizedReplay(Protocol):
    """What a prioritized replay (of transitions or of sequences) offers the learner step."""

    def sample(self, batch_size: int, beta: float) -> _Batch: ...

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None: ...


class _UniformReplay(Protocol):
    def sample(self, batch_size: int) -> _Batch: ...


def learn(run: Run, log: MetricLog, count: Counters, due: int) -> None:
    """The gradient steps that are due; prioritized replay (``config.prioritized``, the one test of
    it) samples with importance weights and gets its new priorities back, one per transition or
    one per sequence; with mirror_boards each batch goes through training.games.MirrorBoards."""
    config, agent = run.config, run.agent
    mirror = mirror_boards_of(config, run.device)
    if config.learning_rate_end is not None:
        agent.set_learning_rate(learning_rate_at(config, count.env_steps))
    for _ in range(due * config.gradient_steps):
        if config.prioritized:
            prioritized = cast(_PrioritizedReplay, run.buffer)
            batch = prioritized.sample(config.batch_size, priority_beta_at(config, count.env_steps))
        else:
            batch = cast(_UniformReplay, run.buffer).sample(config.batch_size)
        on_device = batch.to_torch(run.device)
        if mirror is not None:
            on_device = mirror(on_device, count.updates)
        metrics = agent.update(on_device)
        if config.prioritized:
            prioritized.update_priorities(np.asarray(batch.indices), checked_priorities(metrics, count.env_steps))
        log.add_update(metrics)
        count.updates += 1


def count_steps(
    count: Counters, log: MetricLog, progress: Progress, taken: int, ended: list[tuple[float, int]]
) -> None:
    """Count ``taken`` env steps and the episodes that ``ended`` (return, length) among them: every
    collector's bookkeeping of what it collected."""
    count.env_steps += taken
    progress.update(taken)
    for episode_return, length in ended:
        log.add_episode(episode_return, length, count.env_steps)
        count.episodes += 1


# --- where env steps come from -------------------------------------------------------------------
class Collector(Protocol):
    """Where the loop's env steps come from, and how many updates they allow: this process's envs
    (:class:`InProcess`), or actors feeding a replay in other processes (distributed.learner.Fleet).
    The loop owns the counters, the log and the progress display, and hands them in."""

    def start(self, count: Counters, resumed: bool) -> None:
        """Before the first pass: fresh episodes (seeded from the checkpoint when ``resumed``)."""

    def collect(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        """Take (or receive) env steps, store them, and count them and their finished episodes."""

    def settle(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        """Count what is on its way into replay (before a checkpoint, and at the end)."""

    def stored(self) -> int:
        """Transitions (or sequences) in replay."""

    def updates_due(self, count: Counters, before: int, finished: bool) -> int:
        """Learner steps allowed now that env steps went from ``before`` to ``count.env_steps``."""

    def learn(self, count: Counters, log: MetricLog, due: int) -> None:
        """Take ``due`` learner steps."""

    def epsilon(self, count: Counters) -> float:
        """The exploration rate to log."""

    def status(self, count: Counters) -> dict[str, str]:
        """Progress fields of its own (and TensorBoard scalars of its own), at each log."""

    def past_total(self) -> str:
        """Why a run can end past total_steps."""

    def close(self) -> None: ...


class InProcess:
    """This process's vector envs, acted in with the run's acting part and stored through its adder;
    updates every train_frequency env steps (gradient_steps each)."""

    def __init__(self, run: Run) -> None:
        self.run, self.config = run, run.config
        masks = run.buffer.mask_actions is not None  # the replay keeps masks exactly when the run acts with them
        self.stepper = Stepper(
            run.config,
            run.envs,
            acting_of(run.agent),
            adder_of(run.config, run.buffer),
            masks=masks,
            episode_starts=run.self_play,
        )
        self.epsilon_at = SCHEDULES[run.config.exploration_schedule]
        self.last_epsilon = run.config.epsilon_start

    def start(self, count: Counters, resumed: bool) -> None:
        self.stepper.env_steps = count.env_steps
        self.stepper.reset(int(self.run.env_seeds.integers(2**31)) if resumed else self.config.seed)

    def collect(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        config = self.config
        self.last_epsilon = self.epsilon_at(
            count.env_steps, start=config.epsilon_start, end=config.epsilon_end, decay_steps=config.epsilon_decay_steps
        )
        count_steps(count, log, progress, *self.stepper.step(self.last_epsilon))
        if self.stepper.masks:
            log.add_illegal_actions(self.stepper.take_illegal_actions())

    def settle(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        """Nothing is ever on its way: each step is stored as it is taken."""

    def stored(self) -> int:
        return len(self.run.buffer)

    def updates_due(self, count: Counters, before: int, finished: bool) -> int:
        return crossed(before, count.env_steps, self.config.train_frequency)

    def learn(self, count: Counters, log: MetricLog, due: int) -> None:
        learn(self.run, log, count, due)

    def epsilon(self, count: Counters) -> float:
        return self.last_epsilon

    def status(self, count: Counters) -> dict[str, str]:
        return {}

    def past_total(self) -> str:
        return f"the last step of the {self.config.num_envs} envs together went past it"

    def close(self) -> None:
        """The envs belong to the run (train.py closes them)."""


# --- the loop ------------------------------------------------------------------------------------
# A periodic evaluation: evaluate.py's evaluate_and_save, handed in by train.py and the distributed learner.
EvaluateStep = Callable[
    [CheckpointedRun, MetricLog, Counters, Progress, float, EvaluationCallback | None], tuple[EvalResult, str | None]
]


class RunFailure(Exception):
    """A failure that stops a run with its checkpoints kept (a Collector's: a dead replay)."""


def train_loop(
    run: CheckpointedRun,
    writer: SummaryWriter,
    resumed: Resumed | None,
    handle_signals: bool,
    on_evaluation: EvaluationCallback | None = None,
    *,
    collector: Collector,
    evaluate_and_save: EvaluateStep,
) -> TrainResult:
    """The loop of every run: in-process or distributed is the ``collector`` it is given."""
    config = run.config
    count, log, final_eval, saved_step = Counters(), MetricLog(writer, run.device), None, None
    if resumed is not None:
        count, final_eval, saved_step = resumed.counters, resumed.final_eval, resumed.counters.env_steps
        log.load_state_dict(resumed.metrics)
    collector.start(count, resumed is not None)
    resumed_from, stopped_early = saved_step, None
    started = time.perf_counter() - count.seconds  # so that elapsed times count earlier sessions too
    progress = Progress(total=config.total_steps, initial=count.env_steps, enabled=config.progress)
    with stop_on_signals(handle_signals) as stop:
        try:
            while count.env_steps < config.total_steps and stop.signal is None and stopped_early is None:
                before = count.env_steps
                collector.collect(count, log, progress)
                if count.env_steps >= config.total_steps or (
                    config.checkpoint_every and crossed(before, count.env_steps, config.checkpoint_every)
                ):  # what is on its way into replay counts too (at the end, and before a checkpoint)
                    collector.settle(count, log, progress)
                finished = count.env_steps >= config.total_steps  # decided after settling: it may finish a run

                if count.env_steps >= config.learning_starts and collector.stored() >= config.batch_size:
                    due = collector.updates_due(count, before, finished)
                    if due:
                        if config.compile and count.updates == 0:
                            progress.note("compiling the update with torch.compile (once, about 3-15 s)...")
                        collector.learn(count, log, due)
                    if crossed(before, count.env_steps, config.target_update_interval):
                        run.agent.sync_target(config.tau)

                if crossed(before, count.env_steps, config.log_frequency):
                    status = log.flush(count.env_steps, collector.epsilon(count))
                    progress.set_status(**{**status, **collector.status(count)})

                if config.eval_frequency and (crossed(before, count.env_steps, config.eval_frequency) or finished):
                    final_eval, stopped_early = evaluate_and_save(run, log, count, progress, started, on_evaluation)

                if config.checkpoint_every and crossed(before, count.env_steps, config.checkpoint_every):
                    count.seconds = time.perf_counter() - started
                    saved_step = save_training_state(run, writer, count, log, final_eval)
            collector.settle(count, log, progress)
            if count.env_steps > config.total_steps:
                progress.note(
                    f"stopped at {count.env_steps:,} env steps, past total_steps {config.total_steps:,}: "
                    f"{collector.past_total()}"
                )
            progress.close()
            count.seconds = time.perf_counter() - started
            if saved_step != count.env_steps:  # at exit: finished, or stopped by a signal
                saved_step = save_training_state(run, writer, count, log, final_eval)
        except NonFiniteError as error:
            raise NonFiniteError(f"{error}; training stopped, {kept_checkpoint(run, saved_step)}{HINT}") from None
        except RunFailure as error:
            raise type(error)(f"{error}; training stopped, {kept_checkpoint(run, saved_step)}") from None
        finally:
            progress.close()
            log.write_episodes()  # the episodes since the last log, whatever stopped the loop
            collector.close()

    return finish_run(
        run, count, final_eval, resumed_from=resumed_from, stopped_early=stopped_early, stop_signal=stop.signal
    )


HINT = " (a lower --learning-rate or --max-grad-norm may help, or check the env's rewards)"


def kept_checkpoint(run: CheckpointedRun, saved_step: int | None) -> str:
    """What a stopped run keeps."""
    if saved_step is None:
        return "no checkpoint was written yet"
    return f"the last good checkpoint (env step {saved_step:,}) is kept in {run.run_dir / 'checkpoints'}"
