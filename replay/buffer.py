"""Uniform experience replay (Lin 1992; Mnih et al. 2015): a preallocated numpy ring buffer.

The buffer stores what a transition really was: ``terminated`` (the MDP ended: do not bootstrap)
and ``truncated`` (a time limit cut the episode: bootstrap from the true final observation, which
is stored as ``next_observation``) are kept apart, and each transition carries the discount to
apply to its bootstrap value. Sampling uses the buffer's own seeded generator.

``state_dict`` / ``load_state_dict`` give the contents, write position and generator state as
plain numpy arrays, numbers and dicts, for training checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Batch:
    """A sampled minibatch. Leading dimension B everywhere; observations keep their stored dtype."""

    observations: np.ndarray | torch.Tensor  # [B, *obs_shape]
    actions: np.ndarray | torch.Tensor  # [B] int64
    rewards: np.ndarray | torch.Tensor  # [B] float32
    next_observations: np.ndarray | torch.Tensor  # [B, *obs_shape]
    terminated: np.ndarray | torch.Tensor  # [B] float32: 1.0 where the episode truly ended
    discounts: np.ndarray | torch.Tensor  # [B] float32: gamma^n used to bootstrap this sample
    indices: np.ndarray | torch.Tensor  # [B] int64 positions in the buffer
    # [B] float32 importance-sampling weights (all 1.0 for uniform sampling); None when not given
    weights: np.ndarray | torch.Tensor | None = None

    def to_torch(self, device: torch.device | str) -> "Batch":
        """The same batch as torch tensors on ``device`` (numpy memory is shared on the CPU).

        A field that is None stays None.
        """
        return Batch(**{name: None if value is None else torch.as_tensor(value, device=device)
                        for name, value in self.__dict__.items()})


# The per-transition arrays of a ReplayBuffer, in state_dict order.
TRANSITION_ARRAYS = ("observations", "next_observations", "actions", "rewards", "terminated", "truncated",
                     "discounts")


class ReplayBuffer:
    """Fixed-capacity ring of transitions; the oldest are overwritten once it is full."""

    def __init__(self, *, capacity: int, observation_shape: tuple[int, ...],
                 observation_dtype: np.dtype, seed: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.observations = np.zeros((capacity, *observation_shape), dtype=observation_dtype)
        self.next_observations = np.zeros_like(self.observations)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # next slot to write
        self.size = 0  # slots holding a transition
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_observations: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
            discounts: np.ndarray | float) -> None:
        """Append K transitions at once (arrays with leading dimension K), wrapping around."""
        count = len(actions)
        if count == 0:
            return
        if count > self.capacity:  # only the newest `capacity` would survive anyway
            keep = slice(count - self.capacity, count)
            observations, actions, rewards = observations[keep], actions[keep], rewards[keep]
            next_observations, terminated, truncated = next_observations[keep], terminated[keep], truncated[keep]
            discounts = np.broadcast_to(discounts, (count,))[keep]
            count = self.capacity
        slots = self.slots_for(count)
        self.observations[slots] = observations
        self.next_observations[slots] = next_observations
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.truncated[slots] = truncated
        self.discounts[slots] = discounts
        self.position = int((self.position + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def slots_for(self, count: int) -> slice | np.ndarray:
        """The slots the next ``count`` (<= capacity) transitions go to: a slice unless they wrap
        around (slice writes are several times cheaper than fancy indexing for small batches)."""
        end = self.position + count
        if end <= self.capacity:
            return slice(self.position, end)
        return (self.position + np.arange(count)) % self.capacity

    def sample(self, batch_size: int) -> Batch:
        """Draw ``batch_size`` stored transitions uniformly, with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        indices = self.rng.integers(0, self.size, size=batch_size)
        return self.gather(indices)

    def gather(self, indices: np.ndarray) -> Batch:
        """The transitions at ``indices``, with importance weights of 1 (uniform sampling)."""
        return Batch(
            observations=self.observations[indices],
            actions=self.actions[indices],
            rewards=self.rewards[indices],
            next_observations=self.next_observations[indices],
            terminated=self.terminated[indices].astype(np.float32),
            discounts=self.discounts[indices],
            indices=indices.astype(np.int64),
            weights=np.ones(len(indices), dtype=np.float32),
        )

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The stored transitions (views of the first ``size`` slots, not copies), the write
        position and the sampling generator's state."""
        arrays = {name: getattr(self, name)[:self.size] for name in TRANSITION_ARRAYS}
        return {"capacity": self.capacity, "size": self.size, "position": self.position, **arrays,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` of a buffer with the same capacity and observation shape and
        dtype. Everything is checked first: on a mismatch (ValueError) the buffer is unchanged."""
        size, position = _index(state, "size"), _index(state, "position")
        if _index(state, "capacity") != self.capacity:
            raise ValueError(f"replay capacity is {state['capacity']}, this buffer holds {self.capacity}")
        if not (0 <= size <= self.capacity and 0 <= position < self.capacity) or (
                size < self.capacity and position != size):
            raise ValueError(f"replay size {size} and position {position} do not fit capacity {self.capacity}")
        arrays = {name: np.asarray(state[name]) for name in TRANSITION_ARRAYS}
        for name, array in arrays.items():
            expected = getattr(self, name)
            if array.shape != (size, *expected.shape[1:]) or array.dtype != expected.dtype:
                raise ValueError(f"replay {name} is {array.dtype}{list(array.shape)}, "
                                 f"expected {expected.dtype}{[size, *expected.shape[1:]]}")
        np.random.PCG64().state = state["rng"]  # raises on a malformed state, before anything changes
        for name, array in arrays.items():
            getattr(self, name)[:size] = array  # slots past `size` are never read
        self.size, self.position = size, position
        self.rng.bit_generator.state = state["rng"]


def _index(state: dict, key: str) -> int:
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"replay {key} must be an integer, got {value!r}")
    return int(value)
