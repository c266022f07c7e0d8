"""The actors and the replay of a distributed run as Ray actors, driven by the learner loop
(``distributed.learner.Workers``). Ray's public API only: ``ray.remote`` with ``max_restarts`` /
``max_task_retries``, ``ray.put`` / ``ray.get`` / ``ray.wait``.

A send travels actor -> replay without passing through the learner: ``collect`` returns two
objects, a small ``BatchInfo`` the learner reads and the transitions it hands on, by reference, to
the replay's ``add``; the send counts once that ``add`` has returned. An actor that dies (SIGKILL,
out of memory) loses the sends it had not finished; Ray restarts it (``max_restarts``) with fresh
episodes, and the learner counts the restart when the new process's first send arrives (its pid
differs). The replay is never restarted: it holds the run's only copy of its transitions, so its
death ends the run (DistributedError), the last checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError

from dqn_family.configs import Config
from dqn_family.distributed.actor import ActorCore, BatchInfo, SendData, Weights
from dqn_family.distributed.learner import MAX_ACTOR_DEATHS, Ack, DistributedError, Polled, send_size
from dqn_family.distributed.replay_server import ReplayServer, Sampled
from dqn_family.fileio import one_line
from dqn_family.replay import Batch, SequenceBatch
from dqn_family.replay.dict_storage import Layout

MAX_PRIORITY_UPDATES_IN_FLIGHT = 64  # the learner waits for the replay beyond this many
SAMPLES_PER_CALL = 16  # batches the learner fetches from the replay in one round trip
START_POLL_SECONDS = 0.2  # between looks at a stop request while the actors start


class RayActorCore:
    """An ActorCore in a Ray actor process; a restarted process starts from other env seeds."""

    def __init__(self, config: Config, index: int, env_seed: int) -> None:
        if ray.get_runtime_context().was_current_actor_reconstructed:
            env_seed = (env_seed + 7919 * os.getpid()) % 2**31
        self.core = ActorCore(config, index, env_seed=env_seed)

    def pid(self) -> int:
        return os.getpid()

    @ray.method(num_returns=2)
    def collect(self, env_step: int, version: int, box: list[Any]) -> tuple[BatchInfo, SendData]:
        # ``box`` holds the weights' reference in a list, so that Ray does not fetch them for every send.
        return self.core.collect(env_step, version, lambda: ray.get(box[0]))


class RemoteReplay:
    """The replay actor as a checkpoint sees a buffer (training.state.ReplayState)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def state_dict(self) -> dict:
        return _writable(replay_call(self.handle.state_dict.remote()))

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None:
        try:
            replay_call(self.handle.load_state_dict.remote(state, n_actions=n_actions))
        except ray.exceptions.RayTaskError as error:  # the buffer's own check: the checkpoint does not fit
            cause = error.as_instanceof_cause()
            if isinstance(cause, ValueError):
                raise ValueError(one_line(cause)) from None
            raise

    def __len__(self) -> int:
        return int(replay_call(self.handle.size.remote()))


def replay_call(ref: Any) -> Any:
    """``ray.get`` of a replay call; the replay's death is a DistributedError naming it."""
    try:
        return ray.get(ref)
    except RayActorError as error:
        raise DistributedError(f"the replay actor died ({one_line(error)[:200]})") from None


def _writable(tree: Any) -> Any:
    """Objects from Ray's store are read-only views; a checkpoint writes tensors that share memory."""
    if isinstance(tree, np.ndarray):
        return tree.copy()
    if isinstance(tree, dict):
        return {key: _writable(value) for key, value in tree.items()}
    return tree


def _writable_batch(
    batch: Batch[np.ndarray] | SequenceBatch[np.ndarray],
) -> Batch[np.ndarray] | SequenceBatch[np.ndarray]:
    return dataclasses.replace(batch, **{f.name: _writable(getattr(batch, f.name)) for f in dataclasses.fields(batch)})


class RayWorkers:
    """distributed.learner.Workers on Ray: ``actors`` actor processes and one replay actor."""

    def __init__(self, config: Config, replay_handle: Any, actor_options: dict[str, Any]) -> None:
        self.config, self.replay_handle = config, replay_handle
        self.replay = RemoteReplay(replay_handle)
        self.actor_class = ray.remote(num_cpus=1, max_restarts=MAX_ACTOR_DEATHS, max_task_retries=0, **actor_options)(
            RayActorCore
        )
        self.handles: list[Any] = []
        self.collects: dict[Any, tuple[int, Any]] = {}  # BatchInfo ref -> (actor, SendData ref)
        self.adds: dict[Any, BatchInfo] = {}  # replay.add ref -> what the send said
        self.per_actor = [0] * config.actors
        self.priority_updates: list[Any] = []
        self.next_samples: Any = None  # a sample_many call on its way
        self.samples: deque[Sampled] = deque()  # batches fetched, not yet used
        self.box: list[Any] = []
        self.version = -1
        self.send = send_size(config)

    @property
    def actors(self) -> int:
        return self.config.actors

    def start_actors(self, env_seed: int, stopped: Callable[[], bool] = lambda: False) -> None:
        """Start the actors (actor i's envs seeded env_seed + i x num_envs) and wait until each is up,
        or until ``stopped()`` (a SIGTERM while many actors start: the learner loop then stops at once)."""
        self.handles = [
            self.actor_class.remote(self.config, i, env_seed + i * self.config.num_envs) for i in range(self.actors)
        ]
        starting = {handle.pid.remote(): i for i, handle in enumerate(self.handles)}
        while starting and not stopped():
            ready, _ = ray.wait(list(starting), num_returns=len(starting), timeout=START_POLL_SECONDS)
            for ref in ready:
                i = starting.pop(ref)
                try:
                    ray.get(ref)
                except RayActorError as error:
                    raise DistributedError(f"actor {i} could not start: {start_failure(error)}") from None

    def actor_pids(self) -> list[int]:
        return [int(ray.get(handle.pid.remote())) for handle in self.handles]

    def publish(self, weights: Weights) -> None:
        self.box = [ray.put(weights)]
        self.version = int(weights["version"])

    def submit(self, actor: int, env_step: int) -> None:
        info_ref, data_ref = self.handles[actor].collect.remote(env_step, self.version, self.box)
        self.collects[info_ref] = (actor, data_ref)
        self.per_actor[actor] += 1

    def pending(self, actor: int) -> int:
        return self.per_actor[actor]

    def steps_in_flight(self) -> int:
        return (len(self.collects) + len(self.adds)) * self.send

    def poll(self, timeout: float) -> Polled:
        polled = Polled()
        refs = [*self.collects, *self.adds]
        if not refs:
            time.sleep(timeout)
            return polled
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=False)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        # One ray.get for all the ready sends and one for all the acknowledgements: a get costs
        # milliseconds on a busy machine, more than the learner's update of a small network.
        collected = [ref for ref in ready if ref in self.collects]
        try:
            infos = ray.get(collected)
        except RayActorError:  # an actor died with its send unfinished: each on its own, to find which
            infos = [None] * len(collected)
        for ref, info in zip(collected, infos):
            self._forward(ref, polled, info)
        acknowledged = [ref for ref in ready if ref in self.adds]
        for ref, stored in zip(acknowledged, replay_call(acknowledged)):
            self._acknowledge(ref, polled, stored)
        self._check_priority_updates(wait=False)
        return polled

    def _forward(self, info_ref: Any, polled: Polled, info: BatchInfo | None = None) -> None:
        actor, data_ref = self.collects.pop(info_ref)
        try:
            info = info if info is not None else ray.get(info_ref)
        except RayActorError as error:  # the actor died with this send unfinished: nothing of it was stored
            self.per_actor[actor] -= 1
            polled.deaths.append((actor, one_line(error)[:200]))
            return
        self.adds[self.replay_handle.add.remote(data_ref)] = info

    def _acknowledge(self, add_ref: Any, polled: Polled, stored: int | None = None) -> None:
        info = self.adds.pop(add_ref)
        stored = stored if stored is not None else replay_call(add_ref)
        self.per_actor[info.actor] -= 1
        polled.acks.append(Ack(info, int(stored)))

    def drain(self) -> Polled:
        polled = Polled()
        for ref in list(self.adds):
            self._acknowledge(ref, polled)
        self._check_priority_updates(wait=True)
        return polled

    def sample(self, batch_size: int, beta: float) -> Sampled:
        # Batches come SAMPLES_PER_CALL at a time, and the next lot is drawn while the learner updates on
        # this one, as Ape-X's learner prefetches: a round trip to the replay costs more than an update
        # of a small network, so one per update would bound the learner by Ray's latency. The price:
        # prioritized batches are drawn with priorities up to 2 x SAMPLES_PER_CALL updates old.
        if self.next_samples is None:
            self.next_samples = self.replay_handle.sample_many.remote(batch_size, beta, SAMPLES_PER_CALL)
        if not self.samples:
            self.samples.extend(replay_call(self.next_samples))
            self.next_samples = self.replay_handle.sample_many.remote(batch_size, beta, SAMPLES_PER_CALL)
        sampled = self.samples.popleft()
        # Writable copies of the read-only arrays Ray hands over (torch warns about, and cannot own, those).
        return Sampled(_writable_batch(sampled.batch), sampled.generations)

    def update_priorities(self, indices: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> None:
        self.priority_updates.append(self.replay_handle.update_priorities.remote(indices, generations, priorities))
        if len(self.priority_updates) > MAX_PRIORITY_UPDATES_IN_FLIGHT:
            replay_call(self.priority_updates.pop(0))

    def _check_priority_updates(self, *, wait: bool) -> None:
        """Collect the replies to priority updates (an error there, e.g. the replay's death, is raised)."""
        if not self.priority_updates:
            return
        refs = self.priority_updates
        done, self.priority_updates = (
            (refs, []) if wait else ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
        )
        for ref in done:
            replay_call(ref)

    def replay_stats(self) -> dict[str, int]:
        return replay_call(self.replay_handle.stats.remote())

    def close(self) -> None:
        for handle in self.handles:
            ray.kill(handle)
        ray.kill(self.replay_handle)


def start_replay(
    config: Config,
    *,
    observation_shape: tuple[int, ...],
    observation_dtype: np.dtype | None,
    seed: int,
    options: dict,
    state_size: int | None = None,
    action_masks: int | None = None,
    observation_parts: Layout | None = None,
) -> Any:
    """The replay actor, once its buffer is allocated (a ConfigError there, e.g. too little memory, is raised here)."""
    replay_class: Any = ray.remote(num_cpus=1, max_restarts=0, **options)(ReplayServer)
    handle = replay_class.remote(
        config,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        seed=seed,
        state_size=state_size,
        action_masks=action_masks,
        observation_parts=observation_parts,
    )
    try:
        ray.get(handle.pid.remote())
    except RayActorError as error:
        raise DistributedError(f"the replay actor could not start: {start_failure(error)}") from None
    return handle


def start_failure(error: RayActorError) -> str:
    """Why an actor did not start: what its ``__init__`` raised (the last line of the traceback Ray
    reports, less the exception's class), else Ray's own message; bounded."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if error.actor_init_failed and lines:
        return lines[-1].partition(": ")[2][:300] or lines[-1][:300]
    return one_line(error)[:300]
