"""Replay buffer state: a round trip restores contents, write position, priorities and the
sampling generator bit for bit; a state that does not fit is refused before anything changes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dqn_family.replay import PrioritizedReplayBuffer, ReplayBuffer
from dqn_family.replay.buffer import TRANSITION_ARRAYS


def make(kind: str, seed: int = 0, capacity: int = 5, observation_shape=(2,), dtype=np.float32) -> ReplayBuffer:
    options = dict(capacity=capacity, observation_shape=observation_shape, observation_dtype=dtype, seed=seed)
    return PrioritizedReplayBuffer(**options, alpha=0.6) if kind == "prioritized" else ReplayBuffer(**options)


def fill(buffer: ReplayBuffer, count: int) -> ReplayBuffer:
    for t in range(count):
        observation = np.full((1, 2), t, dtype=np.float32)
        buffer.add(
            observation,
            np.array([t % 2]),
            np.array([float(t)]),
            observation + 1,
            np.array([t % 3 == 0]),
            np.array([t % 4 == 0]),
            0.9 ** (t % 3),
        )
    if isinstance(buffer, PrioritizedReplayBuffer):
        buffer.update_priorities(np.array([0, len(buffer) - 1]), np.array([3.0, 0.1]))
    return buffer


def sample(buffer: ReplayBuffer):
    return buffer.sample(4, 0.5) if isinstance(buffer, PrioritizedReplayBuffer) else buffer.sample(4)


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
@pytest.mark.parametrize("count", [3, 7], ids=["partly filled", "wrapped"])
def test_load_state_dict_restores_buffer_bit_for_bit(kind, count):
    original = fill(make(kind), count)
    restored = make(kind, seed=99)
    restored.load_state_dict(copy.deepcopy(original.state_dict()))
    assert (restored.size, restored.position) == (original.size, original.position)
    for name in TRANSITION_ARRAYS:
        assert getattr(restored, name)[:count].tobytes() == getattr(original, name)[:count].tobytes()
    if kind == "prioritized":
        assert restored.tree.nodes.tobytes() == original.tree.nodes.tobytes()
        assert restored.max_priority == original.max_priority
    first, second = sample(original), sample(restored)  # the same generator state: the same draws
    np.testing.assert_array_equal(first.indices, second.indices)
    np.testing.assert_array_equal(first.weights, second.weights)


def test_state_dict_holds_views_of_the_stored_slots_only():
    buffer = fill(make("uniform"), 3)
    state = buffer.state_dict()
    assert state["observations"].shape == (3, 2) and np.shares_memory(state["observations"], buffer.observations)


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(capacity=6), "capacity is 6, this buffer holds 5"),
        (lambda s: s.update(position=1), "size 3 and position 1 do not fit"),
        (lambda s: s.update(size=9), "do not fit capacity"),
        (lambda s: s.update(size="3"), "size must be an integer"),
        (
            lambda s: s.update(observations=s["observations"][:, :1]),
            r"observations is float32\[3, 1\], expected float32\[3, 2\]",
        ),
        (lambda s: s.update(actions=s["actions"].astype(np.int32)), "actions is int32"),
        (lambda s: s.update(rng={"bit_generator": "MT19937"}), "PCG64"),
    ],
    ids=["capacity", "position", "size", "size type", "observation shape", "dtype", "rng"],
)
def test_load_state_dict_refuses_state_that_does_not_fit_and_changes_nothing(kind, change, message):
    target = fill(make(kind, seed=3), 2)
    before = copy.deepcopy(target.state_dict())
    state = fill(make(kind), 3).state_dict()
    change(state)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    after = target.state_dict()
    assert (after["size"], after["position"], after["rng"]) == (before["size"], before["position"], before["rng"])
    np.testing.assert_array_equal(after["observations"], before["observations"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(sum_tree=s["sum_tree"][:-1]), "sum tree is float64"),
        (lambda s: s["sum_tree"].__setitem__(1, np.nan), "finite and >= 0"),
        (lambda s: s.update(max_priority=float("inf")), "max_priority must be a finite number > 0"),
    ],
)
def test_prioritized_load_state_dict_refuses_bad_priorities(change, message):
    target = make("prioritized")
    state = copy.deepcopy(fill(make("prioritized"), 3).state_dict())
    change(state)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert target.size == 0 and target.tree.total == 0.0
