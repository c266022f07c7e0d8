"""The learner of a distributed run (Ape-X, Horgan et al. 2018): training.loop's one loop (the same
update, target sync, logging, evaluation and checkpoints as a single-process run), its env steps
collected by actors through a replay in other processes (:class:`Fleet`, the loop's collector).

``Fleet`` drives a ``Workers`` handle (the actors and the replay): Ray's in
``distributed.ray_workers``, or ``InlineWorkers`` here, which runs the same actor and replay code in
this process, one send at a time, for tests. Per pass of the loop it hands actors their next sends,
within the flow limits, counts what the replay acknowledged, allows updates as far as the replay
ratio does, and publishes weights every ``weight_publish_updates``; the loop decides the rest at
env-step intervals (sync the target, log, evaluate, checkpoint). Every env-step count is of steps the
replay acknowledged, so a send lost with a dying actor is neither counted nor stored.

Flow control (``Flow``): the learner may make update u + 1 once the acknowledged env steps E give
(u + 1) x batch_size <= replay_ratio x (E - learning_starts) + batch_size; an actor is given a send
only while the steps in flight stay under ``max_steps_in_flight`` and E plus those steps stays
within ``max_steps_in_flight`` of what the learner's updates have consumed. So the learner waits for
data when it is ahead, the actors wait for the learner (and for a slow replay) when they are, and
memory stays flat.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from dqn_family.agents import DQNAgent, RecurrentAgent
from dqn_family.configs import Config, UserError
from dqn_family.configs.schedules import learning_rate_at, priority_beta_at
from dqn_family.distributed.actor import ActorCore, BatchInfo, Weights, actor_epsilon
from dqn_family.distributed.replay_server import ReplayServer, Sampled
from dqn_family.evaluate import evaluate_and_save
from dqn_family.training import MetricLog, Progress
from dqn_family.training.buffers import replay_capacity
from dqn_family.training.hooks import EvaluationCallback
from dqn_family.training.loop import RunFailure, count_steps, train_loop
from dqn_family.training.metrics import checked_priorities
from dqn_family.training.state import (
    Counters,
    ReplayState,
    Resumed,
    TrainResult,
)

PIPELINE = 2  # sends queued per actor: one being collected, the next waiting, so an actor never idles
UPDATES_PER_PASS = 8  # updates between looks at the actors' sends, so that they keep flowing
POLL_SECONDS = 0.02  # how long the learner waits for sends when it may not update
MAX_ACTOR_DEATHS = 20  # deaths of one actor after which the run stops (an env that kills its process)


class DistributedError(UserError, RunFailure):
    """A distributed run cannot go on: the replay died, or an actor keeps dying."""


@dataclass(frozen=True)
class Ack:
    """A send the replay stored: what the actor said about it, and how many transitions were stored."""

    info: BatchInfo
    stored: int


@dataclass
class Polled:
    acks: list[Ack] = field(default_factory=list)
    deaths: list[tuple[int, str]] = field(default_factory=list)  # (actor, why), one per send lost


class Workers(Protocol):
    """The actors and the replay, as the learner drives them."""

    @property
    def actors(self) -> int: ...
    @property
    def replay(self) -> ReplayState: ...

    def publish(self, weights: Weights) -> None:
        """Make these weights the ones actors fetch at their next sync."""

    def submit(self, actor: int, env_step: int) -> None:
        """Ask ``actor`` for its next send; ``env_step`` (acknowledged so far) sets its epsilon."""

    def pending(self, actor: int) -> int:
        """Sends asked of ``actor`` and not yet acknowledged (or lost)."""

    def steps_in_flight(self) -> int: ...

    def poll(self, timeout: float) -> Polled:
        """Forward finished sends to the replay; return the acknowledgements (waits up to ``timeout``
        for a first event)."""

    def drain(self) -> Polled:
        """Wait until every send collected is acknowledged (nothing on its way into the replay)."""

    def sample(self, batch_size: int, beta: float) -> Sampled: ...

    def update_priorities(self, indices: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> None: ...

    def replay_stats(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class Flow:
    """The replay-ratio limit and the bound on steps in flight (module docstring), as arithmetic."""

    learning_starts: int
    batch_size: int
    replay_ratio: float
    max_steps_in_flight: int

    @classmethod
    def of(cls, config: Config) -> Flow:
        return cls(config.learning_starts, config.batch_size, replay_ratio(config), config.max_steps_in_flight)

    def updates_allowed(self, env_steps: int, stored: int) -> int:
        """Updates the learner may have made by ``env_steps`` acknowledged steps."""
        if env_steps < self.learning_starts or stored < self.batch_size:
            return 0
        return math.floor((env_steps - self.learning_starts) * self.replay_ratio / self.batch_size) + 1

    def may_send(self, env_steps: int, in_flight: int, send: int, updates: int, stored: int) -> bool:
        """Whether one more send of ``send`` steps may start."""
        if in_flight + send > self.max_steps_in_flight:
            return False
        projected = env_steps + in_flight + send
        if projected <= self.learning_starts or stored < self.batch_size:
            return True  # the learner is not consuming yet
        consumed = self.learning_starts + updates * self.batch_size / self.replay_ratio
        return projected <= consumed + self.max_steps_in_flight


def replay_ratio(config: Config) -> float:
    """The config's replay ratio, or the single-process run's: batch_size x gradient_steps / train_frequency."""
    if config.replay_ratio is not None:
        return config.replay_ratio
    return config.batch_size * config.gradient_steps / config.train_frequency


def send_size(config: Config) -> int:
    """Env steps in one send: send_steps rounded up to whole vector steps."""
    return math.ceil(config.send_steps / config.num_envs) * config.num_envs


def weights_of(agent: DQNAgent | RecurrentAgent, version: int) -> Weights:
    """A snapshot of the learner's networks on the CPU, for the actors."""

    def cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}

    return {
        "version": version,
        "q_network": cpu(agent.q_network.state_dict()),
        "target_network": cpu(agent.target_network.state_dict()),
    }


@dataclass
class DistributedRun:
    """What the learner loop works on: a Run whose replay lives with the workers (training.state.CheckpointedRun)."""

    config: Config
    run_dir: Path
    device: torch.device
    agent: DQNAgent | RecurrentAgent
    workers: Workers
    env_seeds: np.random.Generator
    spaces: dict[str, Any]

    @property
    def buffer(self) -> ReplayState:
        return self.workers.replay

    @property
    def self_play(self) -> None:
        """Two-player games are not trained with actors (refused at the start)."""
        return None


# --- the actors as the loop's collector ----------------------------------------------------------


class Fleet:
    """The actors and their replay as training.loop's Collector: each pass hands actors their next
    sends within the flow limits (module docstring), counts what the replay acknowledged, and allows
    as many updates as the replay ratio does (at most UPDATES_PER_PASS a pass, so that sends keep
    flowing; all of them at the end, so a run makes its updates however far the actors ran ahead).
    Weights are published every weight_publish_updates updates."""

    def __init__(self, run: DistributedRun, writer: SummaryWriter) -> None:
        self.run, self.config, self.workers, self.writer = run, run.config, run.workers, writer
        self.flow, self.send = Flow.of(run.config), send_size(run.config)
        self.stored_count = 0

    def start(self, count: Counters, resumed: bool) -> None:
        if resumed:
            self.stored_count = len(self.workers.replay)
        self.fleet = FleetLog(self.writer, self.config, count.updates, count.env_steps)
        self.workers.publish(weights_of(self.run.agent, count.updates))

    def collect(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        workers, config = self.workers, self.config
        # No send starts once those in flight reach total_steps: a run stops at its budget, past it
        # only by the rest of a last send when total_steps is not a multiple of sends.
        for actor in range(workers.actors):
            while (
                workers.pending(actor) < PIPELINE
                and count.env_steps + workers.steps_in_flight() < config.total_steps
                and self.flow.may_send(
                    count.env_steps, workers.steps_in_flight(), self.send, count.updates, self.stored_count
                )
            ):
                workers.submit(actor, count.env_steps)
        can_update = self.flow.updates_allowed(count.env_steps, self.stored_count) > count.updates
        self._count(workers.poll(0.0 if can_update else POLL_SECONDS), count, log, progress)

    def settle(self, count: Counters, log: MetricLog, progress: Progress) -> None:
        self._count(self.workers.drain(), count, log, progress)

    def stored(self) -> int:
        return self.stored_count

    def updates_due(self, count: Counters, before: int, finished: bool) -> int:
        due = self.flow.updates_allowed(count.env_steps, self.stored_count) - count.updates
        return due if finished else min(due, UPDATES_PER_PASS)

    def learn(self, count: Counters, log: MetricLog, due: int) -> None:
        for _ in range(due):
            _learn(self.config, self.run.agent, self.workers, log, count)
            if count.updates % self.config.weight_publish_updates == 0:
                self.workers.publish(weights_of(self.run.agent, count.updates))

    def epsilon(self, count: Counters) -> float:
        return float(np.mean(self._epsilons(count)))

    def status(self, count: Counters) -> dict[str, str]:
        fields = {"eps": epsilon_range(self._epsilons(count))}
        fields.update(self.fleet.flush(count, self.workers.steps_in_flight(), self.stored_count))
        return fields

    def past_total(self) -> str:
        return f"actors send {self.send:,} env steps at a time, and the last send was stored and counted whole"

    def close(self) -> None:
        self.fleet.close()

    def _epsilons(self, count: Counters) -> list[float]:
        return [actor_epsilon(self.config, i, count.env_steps) for i in range(self.config.actors)]

    def _count(self, polled: Polled, count: Counters, log: MetricLog, progress: Progress) -> None:
        """Count the acknowledged sends (env steps, episodes) and note lost ones."""
        for actor, why in polled.deaths:
            if self.fleet.died(actor, why, progress) > MAX_ACTOR_DEATHS:
                raise DistributedError(f"actor {actor} died {MAX_ACTOR_DEATHS + 1} times (last: {why})")
        for ack in polled.acks:
            count_steps(count, log, progress, ack.info.env_steps, ack.info.episodes)
            if ack.info.illegal_actions is not None:
                log.add_illegal_actions(ack.info.illegal_actions)
            self.fleet.record(ack, count.updates, progress)
            self.stored_count = min(self.stored_count + ack.stored, replay_capacity(self.config))


def learner_loop(
    run: DistributedRun,
    writer: SummaryWriter,
    resumed: Resumed | None,
    handle_signals: bool,
    on_evaluation: EvaluationCallback | None = None,
) -> TrainResult:
    """training.loop's loop, its env steps collected by the actors."""
    return train_loop(
        run,
        writer,
        resumed,
        handle_signals,
        on_evaluation,
        collector=Fleet(run, writer),
        evaluate_and_save=evaluate_and_save,
    )


def _learn(config: Config, agent: DQNAgent | RecurrentAgent, workers: Workers, log: MetricLog, count: Counters) -> None:
    """One gradient step, as training.loop's learn takes it, on a batch sampled from the replay; the
    new priorities go back to it (without waiting for the reply)."""
    if config.learning_rate_end is not None:
        agent.set_learning_rate(learning_rate_at(config, count.env_steps))
    sampled = workers.sample(config.batch_size, priority_beta_at(config, count.env_steps))
    metrics = agent.update(sampled.batch.to_torch(agent.device))  # type: ignore[arg-type]
    if config.prioritized:
        indices = sampled.batch.indices
        assert isinstance(indices, np.ndarray)
        workers.update_priorities(indices, sampled.generations, checked_priorities(metrics, count.env_steps))
    log.add_update(metrics)
    count.updates += 1


def epsilon_range(epsilons: list[float]) -> str:
    """The actors' epsilons for the progress line: one value when they agree, else 'lowest-highest'
    (Ape-X gives each actor its own)."""
    low, high = min(epsilons), max(epsilons)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"


def replay_ratio_so_far(updates: int, batch_size: int, env_steps: int, learning_starts: int) -> float:
    """Transitions replayed per env step since learning_starts, over the whole run: the quantity
    ``Flow`` holds at the replay ratio (a window's reading swings around it as updates catch up)."""
    return updates * batch_size / max(env_steps - learning_starts, 1)


class FleetLog:
    """The distributed/ TensorBoard tags and progress fields: env steps/s in all and per actor,
    learner updates/s, replay ratio, weight lag, steps in flight, actor restarts. The replay ratio's
    tag is over the last log interval; the progress line's ``rr`` is over the whole run, the figure
    to compare with the config's replay_ratio."""

    def __init__(self, writer: SummaryWriter, config: Config, updates: int, env_steps: int) -> None:
        self.writer, self.actors, self.batch_size = writer, config.actors, config.batch_size
        self.learning_starts = config.learning_starts
        actors = config.actors
        self.pids: list[int | None] = [None] * actors
        self.restarts, self.deaths = 0, [0] * actors
        self.actor_steps = [0] * actors  # since the last flush
        self.lags: list[int] = []  # weight lag of each send since the last flush
        self.last_time, self.last_updates, self.last_steps = time.perf_counter(), updates, env_steps

    def record(self, ack: Ack, updates: int, progress: Progress) -> None:
        info = ack.info
        previous = self.pids[info.actor]
        if previous is not None and previous != info.pid:
            self.restarts += 1
            progress.note(
                f"actor {info.actor} was restarted by Ray (pid {previous} -> {info.pid}); restarts: {self.restarts}"
            )
        self.pids[info.actor] = info.pid
        self.actor_steps[info.actor] += info.env_steps
        self.lags.append(updates - max(info.weights_version, 0))

    def died(self, actor: int, why: str, progress: Progress) -> int:
        self.deaths[actor] += 1
        progress.note(f"actor {actor} lost a send: {why}")
        return self.deaths[actor]

    def flush(self, count: Counters, in_flight: int, stored: int) -> dict[str, str]:
        now = time.perf_counter()
        seconds = max(now - self.last_time, 1e-9)
        steps, updates = count.env_steps - self.last_steps, count.updates - self.last_updates
        scalars = {
            "distributed/env_steps_per_second": steps / seconds,
            "distributed/learner_updates_per_second": updates / seconds,
            "distributed/replay_ratio": updates * self.batch_size / max(steps, 1),
            "distributed/weight_lag": float(np.mean(self.lags)) if self.lags else 0.0,
            "distributed/steps_in_flight": float(in_flight),
            "distributed/actor_restarts": float(self.restarts),
            "distributed/replay_size": float(stored),
        }
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, count.env_steps)
        for actor, actor_steps in enumerate(self.actor_steps):
            self.writer.add_scalar(
                f"distributed/actor_{actor}/env_steps_per_second", actor_steps / seconds, count.env_steps
            )
        self.actor_steps = [0] * self.actors
        self.lags.clear()
        self.last_time, self.last_updates, self.last_steps = now, count.updates, count.env_steps
        return {
            "ups": f"{scalars['distributed/learner_updates_per_second']:.0f}",
            "rr": f"{replay_ratio_so_far(count.updates, self.batch_size, count.env_steps, self.learning_starts):.1f}",
            "lag": f"{scalars['distributed/weight_lag']:.0f}",
            "inflight": str(in_flight),
            "restarts": str(self.restarts),
        }

    def close(self) -> None:
        self.writer.flush()


# --- in-process workers, for tests ----------------------------------------------------------------


class InlineWorkers:
    """The actors and the replay in this process: each send is collected and stored when polled,
    in submission order. The same code as under Ray, without Ray (tests, debugging)."""

    def __init__(self, cores: list[ActorCore], server: ReplayServer) -> None:
        self.cores, self.server = cores, server
        self.queue: list[tuple[int, int]] = []
        self.weights: Weights | None = None
        self.send = send_size(cores[0].config)

    @property
    def actors(self) -> int:
        return len(self.cores)

    @property
    def replay(self) -> ReplayState:
        return self.server

    def publish(self, weights: Weights) -> None:
        self.weights = copy.deepcopy(weights)

    def published(self) -> Weights:
        assert self.weights is not None
        return self.weights

    def submit(self, actor: int, env_step: int) -> None:
        self.queue.append((actor, env_step))

    def pending(self, actor: int) -> int:
        return sum(1 for queued, _ in self.queue if queued == actor)

    def steps_in_flight(self) -> int:
        return len(self.queue) * self.send

    def poll(self, timeout: float) -> Polled:
        polled = Polled()
        queue, self.queue = self.queue, []
        for actor, env_step in queue:
            assert self.weights is not None  # the learner publishes before its first submit
            info, data = self.cores[actor].collect(env_step, self.weights["version"], self.published)
            polled.acks.append(Ack(info, self.server.add(data)))
        return polled

    def drain(self) -> Polled:
        return Polled()  # poll stores every send it collects: nothing is ever on its way

    def sample(self, batch_size: int, beta: float) -> Sampled:
        return self.server.sample(batch_size, beta)

    def update_priorities(self, indices: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> None:
        self.server.update_priorities(indices, generations, priorities)

    def replay_stats(self) -> dict[str, int]:
        return self.server.stats()
