"""PrioritizedReplayBuffer: priorities of new and updated transitions, stratified proportional
sampling, importance weights and wraparound, against hand-computed numbers."""

import numpy as np
import pytest

from dqn_family.replay import PrioritizedReplayBuffer


def make_buffer(
    capacity: int = 4, *, alpha: float = 1.0, epsilon: float = 0.5, seed: int = 0
) -> PrioritizedReplayBuffer:
    return PrioritizedReplayBuffer(
        capacity=capacity, observation_shape=(2,), observation_dtype=np.float32, seed=seed, alpha=alpha, epsilon=epsilon
    )


def add(buffer: PrioritizedReplayBuffer, actions: list[int]) -> None:
    """K transitions at once; action a has observation [a, a] so stored rows are recognisable."""
    count = len(actions)
    observations = np.repeat(np.array(actions, dtype=np.float32)[:, None], 2, axis=1)
    buffer.add(
        observations,
        np.array(actions),
        np.ones(count),
        observations + 1,
        np.zeros(count, bool),
        np.zeros(count, bool),
        0.99,
    )


def buffer_with_priorities_1_2_3_4() -> PrioritizedReplayBuffer:
    # alpha = 1, epsilon = 0.5: p = |delta| + 0.5, so these TD errors give p = 1, 2, 3, 4
    buffer = make_buffer()
    add(buffer, [0, 1, 2, 3])
    buffer.update_priorities(np.arange(4), np.array([0.5, -1.5, 2.5, -3.5]))
    return buffer


def test_prioritized_new_transitions_get_initial_priority_one():
    buffer = make_buffer()
    add(buffer, [0, 1, 2])
    assert buffer.tree.get(np.arange(4)).tolist() == [1.0, 1.0, 1.0, 0.0]


def test_prioritized_update_priorities_applies_epsilon_and_alpha():
    buffer = make_buffer(alpha=0.5, epsilon=0.5)
    add(buffer, [0, 1])
    buffer.update_priorities(np.array([0, 1]), np.array([-3.5, 8.5]))
    # (3.5 + 0.5)^0.5 = 2, (8.5 + 0.5)^0.5 = 3
    assert buffer.tree.get(np.array([0, 1])).tolist() == [2.0, 3.0]


def test_prioritized_new_transitions_get_running_max_priority():
    buffer = make_buffer()
    add(buffer, [0, 1])
    buffer.update_priorities(np.array([0]), np.array([2.5]))  # p = 3
    buffer.update_priorities(np.array([0]), np.array([0.0]))  # p = 0.5: the running max stays 3
    add(buffer, [2])
    assert buffer.max_priority == 3.0
    assert buffer.tree.get(np.array([0, 1, 2])).tolist() == [0.5, 1.0, 3.0]


def test_prioritized_stratified_sampling_draws_one_value_per_segment():
    # total 10, 10 segments of width 1; cumulative sums 1, 3, 6, 10 put each segment in one leaf
    batch = buffer_with_priorities_1_2_3_4().sample(10, beta=0.5)
    assert batch.indices.tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]


def test_prioritized_weights_match_hand_computed_values():
    # P = 0.1, 0.2, 0.3, 0.4; w = (N P)^-beta / max w, with beta = 0.5 and the max at index 0:
    # w_i = (P_0 / P_i)^0.5 = 1, 1/sqrt(2), 1/sqrt(3), 1/2
    batch = buffer_with_priorities_1_2_3_4().sample(10, beta=0.5)
    expected = [1.0] + [2**-0.5] * 2 + [3**-0.5] * 3 + [0.5] * 4
    np.testing.assert_allclose(batch.weights, expected, rtol=1e-6)
    assert batch.weights.dtype == np.float32


def test_prioritized_weights_are_one_when_beta_is_zero():
    batch = buffer_with_priorities_1_2_3_4().sample(10, beta=0.0)
    assert batch.weights.tolist() == [1.0] * 10


def test_prioritized_weights_are_one_for_equal_priorities():
    buffer = make_buffer()
    add(buffer, [0, 1, 2, 3])
    assert buffer.sample(8, beta=1.0).weights.tolist() == [1.0] * 8


def test_prioritized_batch_rows_match_sampled_indices():
    batch = buffer_with_priorities_1_2_3_4().sample(10, beta=0.5)
    assert batch.actions.tolist() == batch.indices.tolist()  # slot i holds action i here
    np.testing.assert_array_equal(batch.observations[:, 0], batch.indices)


def test_prioritized_sampling_frequencies_follow_priorities():
    # 500 batches of 32 = 16,000 draws. With independent draws the frequency of P = 0.4 would have
    # a standard deviation sqrt(0.4 * 0.6 / 16000) = 0.0039; stratification only lowers it, so
    # 0.015 is a margin of more than 3.8 sigma for every leaf, and the seed makes it repeatable.
    buffer = buffer_with_priorities_1_2_3_4()
    indices = np.concatenate([buffer.sample(32, beta=0.4).indices for _ in range(500)])
    frequencies = np.bincount(indices, minlength=4) / len(indices)
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_prioritized_update_priorities_changes_sampling():
    buffer = make_buffer(epsilon=1e-6)
    add(buffer, [0, 1, 2, 3])
    assert buffer.sample(8, beta=0.4).indices.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # equal priorities
    buffer.update_priorities(np.arange(4), np.array([0.0, 0.0, 1000.0, 0.0]))
    # leaf 2 now holds all but 3e-6 of the total 1000.000004
    assert buffer.sample(8, beta=0.4).indices.tolist() == [2] * 8


def test_prioritized_wraparound_gives_overwritten_slots_max_priority():
    buffer = buffer_with_priorities_1_2_3_4()  # max priority 4
    add(buffer, [4, 5])  # overwrite slots 0 and 1
    assert buffer.actions.tolist() == [4, 5, 2, 3]
    assert buffer.tree.get(np.arange(4)).tolist() == [4.0, 4.0, 3.0, 4.0]
    assert buffer.tree.total == 15.0


def test_prioritized_add_more_than_capacity_keeps_newest_with_max_priority():
    buffer = make_buffer()
    add(buffer, [0, 1, 2, 3, 4, 5])
    assert buffer.actions.tolist() == [2, 3, 4, 5]
    assert buffer.tree.get(np.arange(4)).tolist() == [1.0] * 4
    assert buffer.tree.total == 4.0


def test_prioritized_many_envs_adding_k_at_once_wrap_around():
    buffer = make_buffer(capacity=5)
    add(buffer, [0, 1, 2])
    buffer.update_priorities(np.array([1]), np.array([1.5]))  # p = 2 becomes the max
    add(buffer, [3, 4, 5])  # slots 3, 4, 0
    add(buffer, [6, 7, 8])  # slots 1, 2, 3
    assert buffer.actions.tolist() == [5, 6, 7, 8, 4]
    assert buffer.tree.get(np.arange(5)).tolist() == [2.0] * 5
    assert (len(buffer), buffer.position) == (5, 4)


def test_prioritized_sampling_never_returns_empty_slots():
    buffer = make_buffer(capacity=10)
    add(buffer, [0, 1, 2])
    indices = buffer.sample(64, beta=0.4).indices
    assert set(indices.tolist()) == {0, 1, 2}


def test_prioritized_sampling_is_seeded():
    first, second = buffer_with_priorities_1_2_3_4(), buffer_with_priorities_1_2_3_4()
    np.testing.assert_array_equal(first.sample(32, beta=0.4).indices, second.sample(32, beta=0.4).indices)


def test_prioritized_sample_from_empty_buffer_raises():
    with pytest.raises(ValueError, match="empty"):
        make_buffer().sample(4, beta=0.4)


def test_prioritized_update_priorities_rejects_non_finite_td_errors():
    buffer = buffer_with_priorities_1_2_3_4()
    with pytest.raises(ValueError, match="finite"):
        buffer.update_priorities(np.array([0]), np.array([np.nan]))
    assert buffer.tree.total == 10.0


def test_prioritized_update_priorities_rejects_unfilled_slots():
    buffer = make_buffer()
    add(buffer, [0, 1])
    with pytest.raises(IndexError):
        buffer.update_priorities(np.array([2]), np.array([1.0]))


def test_prioritized_batch_to_torch_carries_weights():
    batch = buffer_with_priorities_1_2_3_4().sample(10, beta=0.5).to_torch("cpu")
    assert batch.weights.dtype.is_floating_point and tuple(batch.weights.shape) == (10,)
