"""The replay of a distributed run, as plain Python (``distributed.ray_workers`` runs it as a Ray
actor): the same buffer a single-process run builds (``training.buffers.build_replay``: transitions
or, for a recurrent network, sequences; prioritized when ``prioritized`` is on, as in Ape-X,
otherwise uniform), fed by the actors' sends and sampled by the learner. It is the only holder of
what the actors collected: a send counts once ``add`` has returned.

Priorities come back from the learner a little later than in the single-process loop, and actors
may have overwritten a sampled slot in between (the ring evicts the oldest, FIFO); each slot
therefore remembers which item (transition or sequence) it holds (its generation, the count of
items added before it), and a priority for an item that is gone is dropped instead of landing on
its successor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

import numpy as np

from dqn_family.configs import Config
from dqn_family.distributed.actor import SendData, item_count
from dqn_family.replay import (
    Batch,
    FrameStackStorage,
    PrioritizedReplayBuffer,
    Sequence,
    SequenceBatch,
    SequenceReplayBuffer,
)
from dqn_family.replay.dict_storage import Layout
from dqn_family.training.buffers import build_replay


@dataclass(frozen=True)
class Sampled:
    """A sampled batch (numpy, on the host) and the generations of its slots, for update_priorities."""

    batch: Batch[np.ndarray] | SequenceBatch[np.ndarray]
    generations: np.ndarray  # [B] int64


class ReplayServer:
    """The run's one replay buffer, with counts of what it received."""

    def __init__(
        self,
        config: Config,
        *,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype | None,
        seed: int,
        state_size: int | None = None,
        action_masks: int | None = None,
        observation_parts: Layout | None = None,
    ) -> None:
        self.buffer = build_replay(
            config,
            observation_shape,
            observation_dtype,
            seed,
            state_size=state_size,
            action_masks=action_masks,
            observation_parts=observation_parts,
        )
        self.prioritized = config.prioritized
        self.generations = np.zeros(self.buffer.capacity, dtype=np.int64)
        self.added = 0  # items added since this server started (its checkpointed contents not counted)
        self.sends = 0

    def pid(self) -> int:
        return os.getpid()

    def __len__(self) -> int:
        return len(self.buffer)

    def __bool__(self) -> bool:
        # Ray tests the actor's truth when its __init__ failed (to store the error): without this,
        # __len__ would run on a server with no buffer and kill the worker, hiding the error.
        return True

    def size(self) -> int:
        return len(self.buffer)

    def stats(self) -> dict[str, int]:
        stats = {"size": len(self.buffer), "added": self.added, "sends": self.sends, "bytes": self.buffer.nbytes}
        if isinstance(self.buffer.storage, FrameStackStorage):
            stats["live_frames"] = self.buffer.storage.live_frames  # distinct frames the stored items use
        return stats

    def add(self, data: SendData) -> int:
        """Store one send; returns the number of items stored (the acknowledgement)."""
        items = data.items
        count = item_count(items)
        if count:
            written = min(count, self.buffer.capacity)  # the buffer keeps only the newest `capacity`
            slots = self.buffer.slots_for(written)
            if isinstance(self.buffer, SequenceReplayBuffer):
                self.buffer.add(cast(list[Sequence], items), stream=data.actor)
            else:
                self.buffer.add(**cast(dict[str, np.ndarray], items), stream=data.actor)
            self.generations[slots] = self.added + count - written + np.arange(written)
            if data.priorities is not None and isinstance(self.buffer, PrioritizedReplayBuffer):  # transitions
                indices = np.arange(self.buffer.capacity)[slots]
                self.buffer.update_priorities(indices, data.priorities[count - written :])
        self.added += count
        self.sends += 1
        return count

    def sample(self, batch_size: int, beta: float) -> Sampled:
        """A batch as the single-process loop samples it (prioritized with importance weights, or uniform)."""
        batch = self.buffer.sample(batch_size, beta) if self.prioritized else self.buffer.sample(batch_size)  # type: ignore[call-arg]
        assert isinstance(batch.indices, np.ndarray)  # a host buffer: numpy batches
        return Sampled(batch, self.generations[batch.indices])  # type: ignore[arg-type]

    def sample_many(self, batch_size: int, beta: float, count: int) -> list[Sampled]:
        """``count`` batches drawn one after another: the learner's next updates, in one round trip."""
        return [self.sample(batch_size, beta) for _ in range(count)]

    def update_priorities(self, indices: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        """The learner's new priorities for the sampled items still stored; returns how many applied."""
        if not self.prioritized:
            return 0
        current = self.generations[indices] == generations
        prioritized = cast(PrioritizedReplayBuffer | SequenceReplayBuffer, self.buffer)
        prioritized.update_priorities(indices[current], priorities[current])
        return int(current.sum())

    def state_dict(self) -> dict:
        """The buffer's state, as a single-process run checkpoints it (copies: it leaves this process)."""
        return self.buffer.state_dict()

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None:
        self.buffer.load_state_dict(state, n_actions=n_actions)
        # The restored transitions count as one generation each, in slot order: any will do, as
        # long as they differ from those that later adds give.
        self.generations[:] = np.arange(self.buffer.capacity)
        self.added = 0
        self.generations -= self.buffer.capacity
