"""A sum tree: leaf priorities whose prefix sums can be searched in O(log N), for proportional
prioritized replay (Schaul et al. 2016, "Prioritized Experience Replay", appendix B.2.1).

The tree lives in one float64 array. The leaves are padded to the next power of two L, so every
leaf sits at the same depth: node 1 is the root, node k has children 2k and 2k + 1, and leaf i is
node L + i. Padding leaves hold 0 and are never returned by a search. Batched updates and searches
are vectorised over the batch; Python loops only over the log2(L) levels.
"""

from __future__ import annotations

import numpy as np

NODE_DTYPE = np.dtype(np.float64)


def node_count(capacity: int) -> int:
    """Length of the node array of a tree with ``capacity`` leaves: twice the leaves padded to a power of two."""
    return 2 * (1 << int(capacity - 1).bit_length())


class SumTree:
    """Priorities of ``capacity`` leaves (all 0 at first) and the sums of every subtree."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.depth = int(capacity - 1).bit_length()  # levels below the root
        self.first_leaf = 1 << self.depth  # node number of leaf 0
        self.nodes = np.zeros(node_count(capacity), dtype=NODE_DTYPE)  # nodes[0] is unused

    @property
    def total(self) -> float:
        """Sum of all leaf priorities."""
        return float(self.nodes[1])

    @property
    def max(self) -> float:
        """Largest leaf priority (0 for an empty tree). O(capacity): not for the sampling hot path."""
        return float(self.nodes[self.first_leaf : self.first_leaf + self.capacity].max())

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of the leaves at ``indices``."""
        return self.nodes[self.first_leaf + self._check_indices(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of leaves; where an index repeats, the last write wins."""
        indices = self._check_indices(indices)
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        if indices.size == 0:
            return
        if not np.all(np.isfinite(priorities)) or np.any(priorities < 0):
            raise ValueError("priorities must be finite and >= 0")
        # NumPy does not promise which duplicate wins a fancy assignment, so keep only the last of each.
        unique_reversed, first_in_reversed = np.unique(indices[::-1], return_index=True)
        last = indices.size - 1 - first_in_reversed
        nodes = self.first_leaf + unique_reversed
        self.nodes[nodes] = priorities[last]
        # Recompute each ancestor from its two children (no running deltas, so no drift builds up).
        # Siblings share a parent: the duplicate parents write the same value.
        for _ in range(self.depth):
            nodes = nodes >> 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """For each v in [0, total), the leaf i with sum(p[:i]) <= v < sum(p[:i + 1]).

        Only leaves with positive priority are returned: a value at or past the right edge (where
        rounding can put it) lands on the last positive leaf, and the descent never enters a subtree
        whose sum is 0. Raises if the tree's total is 0.
        """
        if not self.nodes[1] > 0.0:
            raise ValueError("cannot search a sum tree whose total priority is 0")
        remaining = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
        nodes = np.ones(remaining.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.nodes[left]
            go_right = (remaining >= left_sum) & (self.nodes[left + 1] > 0.0)
            remaining = np.where(go_right, remaining - left_sum, remaining)
            nodes = left + go_right
        return nodes - self.first_leaf

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(f"leaf indices must lie in [0, {self.capacity})")
        return indices
