"""The sampler part of a replay (of transitions or of sequences): proportional prioritized experience
replay (Schaul et al. 2016, "Prioritized Experience Replay", ICLR; section 3.3 and algorithm 1).

Item i is sampled with probability

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

import numpy as np
import numpy.typing as npt

from dqn_family.replay.storage import entry
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
