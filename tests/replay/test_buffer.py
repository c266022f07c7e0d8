"""The uniform ring buffer: wraparound, dtypes, seeded sampling, truncation vs termination."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents import dqn_target
from dqn_family.replay import Batch, ReplayBuffer


def make_buffer(capacity: int = 4, *, dtype=np.float32, seed: int = 0, shape=(2,)) -> ReplayBuffer:
    return ReplayBuffer(capacity=capacity, observation_shape=shape, observation_dtype=np.dtype(dtype), seed=seed)


def add_numbered(
    buffer: ReplayBuffer, first: int, count: int, *, terminated=None, truncated=None, discount: float = 0.99
) -> None:
    """Add ``count`` transitions numbered first, first+1, ...: obs = [n, n], action n % 3,
    reward n, next obs = [n + 1, n + 1]."""
    numbers = np.arange(first, first + count)
    observations = np.stack([numbers, numbers], axis=1).astype(buffer.observations.dtype)
    false = np.zeros(count, dtype=bool)
    buffer.add(
        observations,
        numbers % 3,
        numbers.astype(np.float32),
        observations + 1,
        false if terminated is None else np.asarray(terminated),
        false if truncated is None else np.asarray(truncated),
        discount,
    )


def test_replay_buffer_add_counts_until_full():
    buffer = make_buffer(capacity=4)
    add_numbered(buffer, 0, 3)
    assert (buffer.position, buffer.size, len(buffer)) == (3, 3, 3)


def test_replay_buffer_wraps_around_and_overwrites_oldest():
    buffer = make_buffer(capacity=4)
    add_numbered(buffer, 0, 3)
    add_numbered(buffer, 3, 3)  # 6 transitions into 4 slots: 0 and 1 are overwritten by 4 and 5
    assert (buffer.position, buffer.size) == (2, 4)
    np.testing.assert_array_equal(buffer.rewards, [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(buffer.observations[:, 0], [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(buffer.next_observations[:, 0], [5.0, 6.0, 3.0, 4.0])
    np.testing.assert_array_equal(buffer.actions, [1, 2, 2, 0])


def test_replay_buffer_add_more_than_capacity_at_once_keeps_newest():
    buffer = make_buffer(capacity=4)
    add_numbered(buffer, 0, 1)  # position 1
    add_numbered(buffer, 1, 10)  # transitions 1..10; only 7..10 fit, written from slot 1 on
    assert (buffer.position, buffer.size) == (1, 4)
    np.testing.assert_array_equal(buffer.rewards, [10.0, 7.0, 8.0, 9.0])


def test_replay_buffer_add_more_than_capacity_keeps_per_sample_discounts_aligned():
    buffer = make_buffer(capacity=2)
    buffer.add(
        np.zeros((3, 2), np.float32),
        np.array([0, 1, 2]),
        np.array([0.0, 1.0, 2.0], np.float32),
        np.zeros((3, 2), np.float32),
        np.zeros(3, bool),
        np.zeros(3, bool),
        np.array([0.5, 0.25, 0.125], np.float32),
    )
    np.testing.assert_array_equal(buffer.rewards, [1.0, 2.0])
    np.testing.assert_array_equal(buffer.discounts, [0.25, 0.125])


def test_replay_buffer_add_nothing_changes_nothing():
    buffer = make_buffer(capacity=4)
    add_numbered(buffer, 0, 0)
    assert (buffer.position, buffer.size) == (0, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_replay_buffer_keeps_observation_dtype(dtype):
    buffer = make_buffer(dtype=dtype)
    add_numbered(buffer, 250, 2)
    batch = buffer.gather(np.array([0, 1]))
    assert batch.observations.dtype == dtype
    assert batch.next_observations.dtype == dtype
    np.testing.assert_array_equal(batch.observations[:, 0], [250, 251])  # 251 fits in uint8 unchanged


def test_replay_buffer_stores_fields_with_their_dtypes():
    buffer = make_buffer()
    assert buffer.actions.dtype == np.int64
    assert buffer.rewards.dtype == np.float32
    assert buffer.terminated.dtype == np.bool_
    assert buffer.truncated.dtype == np.bool_
    assert buffer.discounts.dtype == np.float32


def test_replay_buffer_keeps_terminated_and_truncated_apart():
    buffer = make_buffer()
    add_numbered(buffer, 0, 3, terminated=[False, True, False], truncated=[False, False, True])
    np.testing.assert_array_equal(buffer.terminated[:3], [False, True, False])
    np.testing.assert_array_equal(buffer.truncated[:3], [False, False, True])


def test_replay_buffer_truncated_transition_bootstraps_and_terminated_does_not():
    buffer = make_buffer()
    # slot 0: truncated by a time limit; slot 1: terminated. Both have reward 1, discount 0.5.
    buffer.add(
        np.zeros((2, 2), np.float32),
        np.array([0, 0]),
        np.array([1.0, 1.0], np.float32),
        np.ones((2, 2), np.float32),
        np.array([False, True]),
        np.array([True, False]),
        0.5,
    )
    batch = buffer.gather(np.array([0, 1])).to_torch("cpu")
    np.testing.assert_array_equal(batch.terminated.numpy(), [0.0, 1.0])
    next_q_BA = torch.tensor([[4.0, 2.0], [4.0, 2.0]])
    target_B = dqn_target(batch.rewards, batch.discounts, batch.terminated, next_q_BA)
    torch.testing.assert_close(target_B, torch.tensor([3.0, 1.0]))  # 1 + 0.5 * 4, and 1


def test_replay_buffer_gather_returns_the_transitions_at_indices():
    buffer = make_buffer()
    add_numbered(buffer, 0, 4, terminated=[False, False, True, False], discount=0.9)
    batch = buffer.gather(np.array([2, 0]))
    np.testing.assert_array_equal(batch.rewards, [2.0, 0.0])
    np.testing.assert_array_equal(batch.actions, [2, 0])
    np.testing.assert_array_equal(batch.observations, [[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(batch.next_observations, [[3.0, 3.0], [1.0, 1.0]])
    np.testing.assert_array_equal(batch.terminated, [1.0, 0.0])
    assert batch.terminated.dtype == np.float32
    np.testing.assert_allclose(batch.discounts, [0.9, 0.9])
    np.testing.assert_array_equal(batch.indices, [2, 0])


def test_replay_buffer_sample_same_seed_draws_same_indices():
    first, second = make_buffer(capacity=100, seed=7), make_buffer(capacity=100, seed=7)
    add_numbered(first, 0, 100)
    add_numbered(second, 0, 100)
    np.testing.assert_array_equal(first.sample(32).indices, second.sample(32).indices)
    np.testing.assert_array_equal(first.sample(32).indices, second.sample(32).indices)


def test_replay_buffer_sample_different_seed_draws_different_indices():
    first, second = make_buffer(capacity=100, seed=7), make_buffer(capacity=100, seed=8)
    add_numbered(first, 0, 100)
    add_numbered(second, 0, 100)
    assert not np.array_equal(first.sample(32).indices, second.sample(32).indices)


def test_replay_buffer_sample_draws_only_filled_slots():
    buffer = make_buffer(capacity=100)
    add_numbered(buffer, 0, 3)
    indices = buffer.sample(1000).indices
    assert set(indices.tolist()) == {0, 1, 2}


def test_replay_buffer_sample_from_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        make_buffer().sample(1)


def test_replay_buffer_rejects_zero_capacity():
    with pytest.raises(ValueError, match="capacity"):
        make_buffer(capacity=0)


def test_batch_to_torch_converts_every_field_keeping_dtypes():
    buffer = make_buffer(dtype=np.uint8)
    add_numbered(buffer, 0, 2)
    batch = buffer.gather(np.array([1, 0])).to_torch("cpu")
    assert isinstance(batch, Batch)
    assert batch.observations.dtype == torch.uint8
    assert batch.actions.dtype == torch.int64
    assert batch.rewards.dtype == torch.float32
    assert batch.terminated.dtype == torch.float32
    assert batch.discounts.dtype == torch.float32
    assert batch.indices.dtype == torch.int64
    torch.testing.assert_close(batch.rewards, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(batch.next_observations, torch.tensor([[2, 2], [1, 1]], dtype=torch.uint8))


def test_replay_buffer_stores_discrete_state_indices_as_scalars():
    # Discrete observations (e.g. FrozenLake) are int64 state indices of shape (): one int per slot.
    buffer = make_buffer(capacity=3, dtype=np.int64, shape=())
    buffer.add(
        np.array([0, 4, 5]),
        np.array([1, 2, 1]),
        np.zeros(3, np.float32),
        np.array([4, 5, 15]),
        np.array([False, False, True]),
        np.zeros(3, bool),
        0.9,
    )
    buffer.add(
        np.array([15]), np.array([0]), np.ones(1, np.float32), np.array([14]), np.zeros(1, bool), np.zeros(1, bool), 0.9
    )  # wraps around into slot 0
    assert buffer.observations.shape == (3,) and buffer.nbytes == 3 * (2 * 8 + 8 + 4 + 1 + 1 + 4)
    batch = buffer.gather(np.array([0, 2]))
    assert batch.observations.dtype == np.int64
    np.testing.assert_array_equal(batch.observations, [15, 5])
    np.testing.assert_array_equal(batch.next_observations, [14, 15])
    np.testing.assert_array_equal(batch.terminated, [0.0, 1.0])
