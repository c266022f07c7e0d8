"""SumTree: totals, prefix search and updates on hand-made trees, then property tests."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_family.replay import SumTree


def tree_with(capacity: int, priorities: list[float]) -> SumTree:
    tree = SumTree(capacity)
    tree.update(np.arange(len(priorities)), np.array(priorities, dtype=np.float64))
    return tree


def test_sum_tree_total_is_sum_of_priorities():
    assert tree_with(5, [1.0, 2.0, 3.0, 4.0]).total == 10.0


def test_sum_tree_internal_nodes_hold_subtree_sums():
    tree = tree_with(4, [1.0, 2.0, 3.0, 4.0])
    # root = 1+2+3+4, left child = 1+2, right child = 3+4
    assert tree.nodes[1:4].tolist() == [10.0, 3.0, 7.0]


def test_sum_tree_find_prefix_sum_hand_example():
    # cumulative sums 1, 3, 6, 10: leaf i owns [cumsum[i-1], cumsum[i])
    tree = tree_with(5, [1.0, 2.0, 3.0, 4.0])
    values = np.array([0.0, 0.99, 1.0, 2.5, 3.0, 5.99, 6.0, 9.99])
    assert tree.find_prefix_sum(values).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_sum_tree_update_replaces_priority():
    tree = tree_with(4, [1.0, 2.0, 3.0, 4.0])
    tree.update(np.array([1]), np.array([5.0]))
    assert tree.get(np.array([0, 1, 2, 3])).tolist() == [1.0, 5.0, 3.0, 4.0]
    assert tree.total == 13.0
    assert tree.find_prefix_sum(np.array([5.9, 6.0])).tolist() == [1, 2]  # leaf 1 now owns [1, 6)


def test_sum_tree_update_duplicate_indices_last_write_wins():
    tree = tree_with(4, [1.0, 2.0, 3.0, 4.0])
    tree.update(np.array([2, 0, 2]), np.array([7.0, 0.5, 1.0]))
    assert tree.get(np.array([0, 2])).tolist() == [0.5, 1.0]
    assert tree.total == 0.5 + 2.0 + 1.0 + 4.0


def test_sum_tree_find_prefix_sum_skips_zero_priority_leaves():
    tree = tree_with(4, [1.0, 0.0, 2.0])
    # sum(p[:1]) = sum(p[:2]) = 1, so v = 1 belongs to leaf 2, never to the empty leaf 1
    assert tree.find_prefix_sum(np.array([0.5, 1.0, 2.9])).tolist() == [0, 2, 2]


def test_sum_tree_find_prefix_sum_right_edge_returns_last_written_leaf():
    # 3 of 8 padded leaves written: a value at or past the total (rounding in the caller) must
    # land on leaf 2, not on an unwritten leaf with priority 0.
    tree = tree_with(8, [0.1, 0.2, 0.3])
    total = tree.total
    values = np.array([np.nextafter(total, 0.0), total, total * (1 + 1e-12), total + 1.0])
    assert tree.find_prefix_sum(values).tolist() == [2, 2, 2, 2]


def test_sum_tree_find_prefix_sum_right_edge_skips_zero_last_leaf():
    tree = tree_with(4, [1.0, 2.0, 3.0, 0.0])
    assert tree.find_prefix_sum(np.array([6.0])).tolist() == [2]


def test_sum_tree_capacity_one():
    tree = tree_with(1, [2.5])
    assert tree.total == 2.5
    assert tree.find_prefix_sum(np.array([0.0, 2.4])).tolist() == [0, 0]


def test_sum_tree_max_is_largest_leaf():
    assert tree_with(6, [1.0, 4.0, 3.0]).max == 4.0


def test_sum_tree_search_of_empty_tree_raises():
    with pytest.raises(ValueError, match="total priority is 0"):
        SumTree(4).find_prefix_sum(np.array([0.0]))


def test_sum_tree_update_rejects_negative_or_nan_priority():
    tree = SumTree(4)
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([np.nan]))


def test_sum_tree_update_rejects_out_of_range_index():
    with pytest.raises(IndexError):
        SumTree(5).update(np.array([5]), np.array([1.0]))  # leaf 5 exists only as padding


# --- properties ------------------------------------------------------------------------------
updates = st.lists(st.tuples(st.integers(0, 39), st.floats(0.0, 1e3, allow_nan=False)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 40), writes=updates, batch_size=st.integers(1, 8))
def test_sum_tree_total_matches_sum_of_leaves_after_updates(capacity, writes, batch_size):
    tree, expected = SumTree(capacity), np.zeros(capacity)
    writes = [(index % capacity, priority) for index, priority in writes]
    for start in range(0, len(writes), batch_size):  # batches may repeat an index
        indices, priorities = map(np.array, zip(*writes[start : start + batch_size]))
        tree.update(indices, priorities)
        for index, priority in zip(indices, priorities):
            expected[index] = priority
    np.testing.assert_array_equal(tree.get(np.arange(capacity)), expected)
    assert tree.total == pytest.approx(expected.sum(), rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    priorities=st.lists(st.integers(0, 20), min_size=1, max_size=40).filter(lambda p: sum(p) > 0),
    quarters=st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
)
def test_sum_tree_find_prefix_sum_agrees_with_searchsorted_exactly(priorities, quarters):
    # Integer priorities and values on a quarter grid are exact in float64, boundaries included.
    cumulative = np.cumsum(priorities)
    values = (np.array(quarters) % (4 * cumulative[-1])) / 4.0
    tree = tree_with(len(priorities) + 3, [float(p) for p in priorities])
    expected = np.searchsorted(cumulative, values, side="right")
    np.testing.assert_array_equal(tree.find_prefix_sum(values), expected)


@settings(max_examples=60, deadline=None)
@given(
    priorities=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=40).filter(lambda p: sum(p) > 1e-3),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=30),
)
def test_sum_tree_find_prefix_sum_agrees_with_searchsorted_up_to_rounding(priorities, fractions):
    tree = tree_with(len(priorities), priorities)
    cumulative = np.cumsum(priorities)
    values = np.array(fractions) * tree.total
    found = tree.find_prefix_sum(values)
    assert np.all(np.array(priorities)[found] > 0)
    # The tree adds in a different order from cumsum, so allow rounding-sized disagreement.
    tolerance = 1e-9 * cumulative[-1]
    lower = np.concatenate([[0.0], cumulative])[found]
    assert np.all(lower <= values + tolerance)
    assert np.all(values < cumulative[found] + tolerance)
    exact = np.searchsorted(cumulative, values, side="right")
    near_a_boundary = np.min(np.abs(values[:, None] - cumulative[None, :]), axis=1) < tolerance
    np.testing.assert_array_equal(found[~near_a_boundary], exact[~near_a_boundary])
