"""Proportional prioritized experience replay (Schaul et al. 2016, "Prioritized Experience Replay",
ICLR; section 3.3 and algorithm 1).

Transition i is sampled with probability

    P(i) = p_i / sum_k p_k,    p_i = (|delta_i| + epsilon)^alpha

where delta_i is its latest TD error, alpha in [0, 1] sets how strongly priorities skew sampling
(0 is uniform) and epsilon > 0 keeps every transition reachable. The tree stores p_i, i.e. the
priority already raised to alpha. A new transition gets the largest priority given so far (1 at
first), so it is replayed at least once soon. The bias this sampling adds is corrected by
importance-sampling weights, normalised by their largest value in the batch so they only scale
updates down:

    w_i = (N * P(i))^(-beta) / max_j w_j

with N the number of stored transitions and beta annealed towards 1 by the caller. Sampling is
stratified: [0, total) is cut into B equal segments and one value is drawn uniformly in each.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
import torch

from dqn_family.replay.buffer import Batch, ReplayBuffer
from dqn_family.replay.storage import check_integer, entry
from dqn_family.replay.sum_tree import SumTree


def proportional_sample(
    tree: SumTree, size: int, batch_size: int, beta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified draw of ``batch_size`` leaves in proportion to their priority, and their
    importance weights (size * P(i))^-beta / max as float32 (module docstring). ``size``: the items
    stored (N)."""
    total = tree.total
    values = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
    indices = tree.find_prefix_sum(values)
    weights = (size * (tree.get(indices) / total)) ** -beta
    return indices, (weights / weights.max()).astype(np.float32)


def check_sum_tree(tree: SumTree, nodes: np.ndarray, size: int, items: str) -> None:
    """ValueError unless ``nodes`` can stand for ``tree``'s with ``size`` ``items`` stored: the leaves
    > 0 for the stored items (each stays reachable), 0 past them (sampling never returns an empty
    slot); every inner node the exact sum of its children, as updates leave it (a forged sum would
    steer the search)."""
    leaves = nodes[tree.first_leaf :]
    if not (np.all(leaves[:size] > 0) and np.all(leaves[size:] == 0)):
        raise ValueError(f"sum tree leaves must be > 0 for the {size} stored {items} and 0 past them")
    inner = np.arange(1, tree.first_leaf)
    if not np.array_equal(nodes[inner], nodes[2 * inner] + nodes[2 * inner + 1]):
        raise ValueError("sum tree inner nodes must be the sums of their children")


class ProportionalSampler:
    """The sampler part of a prioritized replay (of transitions or of sequences): priorities of
    ``capacity`` slots in a sum tree, new items at the largest priority so far, stratified draws
    with importance weights (module docstring). The replay owns the items and the generator."""

    def __init__(self, capacity: int, *, alpha: float, epsilon: float, items: str) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0 so every {items[:-1]} stays reachable, got {epsilon}")
        self.alpha, self.epsilon, self.items = alpha, epsilon, items
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # largest p_i = (|delta| + epsilon)^alpha given so far

    @property
    def nbytes(self) -> int:
        return self.tree.nodes.nbytes

    def added(self, slots: np.ndarray) -> None:
        """Slots just written: each gets the largest priority so far, to be replayed soon."""
        self.tree.update(slots, np.full(len(slots), self.max_priority))

    def sample(
        self, size: int, batch_size: int, beta: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(indices, importance weights) of ``batch_size`` draws among the ``size`` stored items;
        ``beta`` in [0, 1] is the importance-correction exponent (1 corrects the bias fully)."""
        if size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        return proportional_sample(self.tree, size, batch_size, beta, rng)

    def update(self, indices: npt.ArrayLike, errors: npt.ArrayLike, size: int) -> None:
        """Set p_i = (|error_i| + epsilon)^alpha for sampled ``indices`` among the ``size`` stored."""
        indices = np.asarray(indices, dtype=np.int64)
        errors = np.asarray(errors, dtype=np.float64)
        if indices.shape != errors.shape:
            raise ValueError(f"indices {indices.shape} and td_errors {errors.shape} must have the same shape")
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= size:
            raise IndexError(f"indices must lie in [0, {size}), the stored {self.items}")
        if not np.all(np.isfinite(errors)):
            raise ValueError("td_errors must be finite: a NaN or inf priority would break all sampling")
        priorities = (np.abs(errors) + self.epsilon) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict:
        return {"sum_tree": self.tree.nodes, "max_priority": self.max_priority}

    def checked_state(self, state: dict, size: int | None) -> tuple[np.ndarray, float]:
        """The state's sum tree and largest priority, checked against ``size`` stored items (None:
        the size is itself wrong, which the replay reports); ValueError if they do not fit."""
        nodes, max_priority = np.asarray(entry(state, "sum_tree")), entry(state, "max_priority")
        if nodes.shape != self.tree.nodes.shape or nodes.dtype != self.tree.nodes.dtype:
            raise ValueError(
                f"sum tree is {nodes.dtype}{list(nodes.shape)}, "
                f"expected {self.tree.nodes.dtype}{list(self.tree.nodes.shape)}"
            )
        if not np.all(np.isfinite(nodes)) or np.any(nodes < 0):
            raise ValueError("sum tree priorities must be finite and >= 0")
        if size is not None:
            check_sum_tree(self.tree, nodes, size, self.items)
        if (
            isinstance(max_priority, bool)
            or not isinstance(max_priority, (int, float))
            or not (0 < max_priority < float("inf"))
        ):
            raise ValueError(f"max_priority must be a finite number > 0, got {max_priority!r}")
        return nodes, float(max_priority)

    def load(self, checked: tuple[np.ndarray, float]) -> None:
        """Restore what ``checked_state`` returned."""
        self.tree.nodes[:], self.max_priority = checked


class PrioritizedReplayBuffer(ReplayBuffer):
    """A ReplayBuffer that samples in proportion to priority and returns importance weights
    (its sampler: a :class:`ProportionalSampler`)."""

    def __init__(
        self,
        *,
        capacity: int,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype,
        seed: int,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        stacked_frames: bool = False,
        frame_window: int = 64,
        spare_frames: int | None = None,
        streams: int = 1,
        device: torch.device | str | None = None,
        action_masks: int | None = None,
    ) -> None:
        self.sampler = ProportionalSampler(capacity, alpha=alpha, epsilon=epsilon, items="transitions")
        super().__init__(
            capacity=capacity,
            observation_shape=observation_shape,
            observation_dtype=observation_dtype,
            seed=seed,
            stacked_frames=stacked_frames,
            frame_window=frame_window,
            spare_frames=spare_frames,
            streams=streams,
            device=device,
            action_masks=action_masks,
        )

    @property
    def tree(self) -> SumTree:
        return self.sampler.tree

    @property
    def max_priority(self) -> float:
        return self.sampler.max_priority

    @property
    def nbytes(self) -> int:
        """Bytes of all the arrays the buffer allocated, the sum tree's included."""
        return super().nbytes + self.sampler.nbytes

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        discounts: np.ndarray | float,
        stream: int = 0,
        next_legal: np.ndarray | None = None,
    ) -> None:
        """Append K transitions (see ReplayBuffer.add); each gets the current max priority."""
        written = min(len(actions), self.capacity)  # the base class keeps only the newest `capacity`
        slots = self.slots_for(written)
        slots = np.arange(slots.start, slots.stop) if isinstance(slots, slice) else slots
        super().add(
            observations, actions, rewards, next_observations, terminated, truncated, discounts, stream, next_legal
        )
        self.sampler.added(slots)

    # Not a drop-in ReplayBuffer.sample: prioritized sampling cannot go without its importance
    # exponent, and no default beta is right for every caller (the loop anneals it).
    def sample(self, batch_size: int, beta: float) -> Batch[np.ndarray] | Batch[torch.Tensor]:  # type: ignore[override]
        """Draw ``batch_size`` transitions in proportion to priority, with importance weights."""
        indices, weights = self.sampler.sample(self.size, batch_size, beta, self.rng)
        return dataclasses.replace(self.gather(indices), weights=weights)

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """Set p_i = (|delta_i| + epsilon)^alpha for sampled ``indices`` (call before the next add,
        or a slot overwritten in between would get the old transition's priority). Any array-like
        will do: a batch's indices, numpy or (after ``Batch.to_torch``) a CPU tensor."""
        self.sampler.update(indices, td_errors, self.size)

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """ReplayBuffer's state plus the whole sum tree (a view) and the largest priority so far."""
        return {**super().state_dict(), **self.sampler.state_dict()}

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None:
        """Restore ``state_dict()``; on a mismatch (ValueError) the buffer is unchanged."""
        size = check_integer(state, "size")
        checked = self.sampler.checked_state(state, size if 0 <= size <= self.capacity else None)
        super().load_state_dict(state, n_actions=n_actions)
        self.sampler.load(checked)
