"""replay/observations.py and what builds on it: a batch of dictionary observations (a dict of arrays
by key) taken, put, stacked and counted like one array; n-step windows per key giving exactly the
transitions of each key's array alone, and sequences likewise; a buffer with ``observation_parts``
storing each key in its own dtype, the newest transitions kept when more arrive than it holds."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.replay import (
    NStepAccumulator,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SequenceAccumulator,
    SequenceReplayBuffer,
    replay_bytes,
)
from dqn_family.replay.observations import map_observations, observation_count, one_batch, put, stack, take

LAYOUT = {"image": ((2, 2), np.dtype(np.uint8)), "state": ((), np.dtype(np.int64)), "vector": ((3,), np.float32)}


def parts(count: int, offset: int = 0) -> dict[str, np.ndarray]:
    """``count`` observations whose parts all say which one they are: row i holds offset + i."""
    index = np.arange(offset, offset + count)
    return {
        "image": np.broadcast_to((index % 256).astype(np.uint8)[:, None, None], (count, 2, 2)).copy(),
        "state": index.astype(np.int64),
        "vector": np.repeat(index[:, None], 3, axis=1).astype(np.float32),
    }


def test_observation_count_is_the_batch_size_not_the_number_of_keys():
    assert observation_count(parts(5)) == 5
    assert observation_count(np.zeros((5, 3))) == 5


def test_take_and_put_index_every_key_like_one_array():
    batch = parts(4)
    taken = take(batch, np.array([3, 1]))
    assert {key: part.tolist() for key, part in taken.items()} == {
        "image": [[[3, 3], [3, 3]], [[1, 1], [1, 1]]],
        "state": [3, 1],
        "vector": [[3.0, 3.0, 3.0], [1.0, 1.0, 1.0]],
    }
    target = map_observations(np.zeros_like, batch)
    put(target, slice(0, 2), taken)
    assert target["state"].tolist() == [3, 1, 0, 0] and target["image"].dtype == np.uint8


def test_stack_and_one_batch_keep_each_keys_dtype():
    single = take(parts(3), 2)
    stacked = stack([single, single])
    assert {key: (part.shape, part.dtype) for key, part in stacked.items()} == {
        "image": ((2, 2, 2), np.uint8),
        "state": ((2,), np.int64),
        "vector": ((2, 3), np.float32),
    }
    assert one_batch(single)["state"].tolist() == [2]
    assert one_batch(7).tolist() == [7]  # a Discrete observation, a Python int


def test_nstep_windows_of_dict_observations_give_each_keys_transitions_alone():
    """Pushed with episodes ending at different steps in two sub-envs: the dict transitions, key by
    key, are those of an accumulator fed that key's array alone."""
    rng = np.random.default_rng(0)
    together = NStepAccumulator(2, 3, 0.9)
    alone = {key: NStepAccumulator(2, 3, 0.9) for key in LAYOUT}
    for step in range(12):
        observations, next_observations = parts(2, 10 * step), parts(2, 10 * step + 5)
        actions, rewards = rng.integers(0, 2, 2), rng.random(2)
        terminated, truncated = np.array([step % 4 == 3, False]), np.array([False, step % 5 == 4])
        real = np.ones(2, dtype=bool)
        emitted = together.push(observations, actions, rewards, next_observations, terminated, truncated, real)
        for key, accumulator in alone.items():
            expected = accumulator.push(
                observations[key], actions, rewards, next_observations[key], terminated, truncated, real
            )
            np.testing.assert_array_equal(emitted.observations[key], expected.observations)
            np.testing.assert_array_equal(emitted.next_observations[key], expected.next_observations)
            np.testing.assert_array_equal(emitted.discounts, expected.discounts)
            assert emitted.observations[key].dtype == LAYOUT[key][1]


@pytest.mark.parametrize("buffer_class", [ReplayBuffer, PrioritizedReplayBuffer])
def test_buffer_with_observation_parts_stores_each_key_in_its_dtype(buffer_class):
    buffer = buffer_class(capacity=4, seed=0, observation_parts=LAYOUT)
    count = 6  # more than it holds: the newest 4 (rows 2..5) are kept, slots 0..3
    flags = np.zeros(count, dtype=bool)
    buffer.add(parts(count), np.arange(count), np.zeros(count), parts(count, 100), flags, flags, 0.99)
    assert {key: array.dtype for key, array in buffer.storage.observations.items()} == dict(
        image=np.uint8, state=np.int64, vector=np.float32
    )
    assert buffer.storage.observations["state"].tolist() == [2, 3, 4, 5]
    assert buffer.storage.next_observations["image"][:, 0, 0].tolist() == [102, 103, 104, 105]
    batch = buffer.sample(8, **({"beta": 0.5} if buffer_class is PrioritizedReplayBuffer else {}))
    np.testing.assert_array_equal(batch.observations["state"], batch.actions)  # each row is one transition
    np.testing.assert_array_equal(batch.next_observations["vector"][:, 0], batch.actions + 100)
    assert batch.to_torch("cpu").observations["image"].dtype.is_floating_point is False
    # bytes: 2 x 4 x (4 uint8 + 8 int64 + 12 float32) for the parts, plus the buffer's own fields
    assert buffer.storage.nbytes == 2 * 4 * (4 + 8 + 12)
    assert replay_bytes(capacity=4, observation_parts=LAYOUT, prioritized=buffer_class is PrioritizedReplayBuffer) == (
        buffer.nbytes
    )


def test_buffer_with_observation_parts_round_trips_its_state():
    buffer = ReplayBuffer(capacity=4, seed=0, observation_parts=LAYOUT)
    flags = np.zeros(3, dtype=bool)
    buffer.add(parts(3), np.arange(3), np.ones(3), parts(3, 50), flags, flags, 0.9)
    restored = ReplayBuffer(capacity=4, seed=1, observation_parts=LAYOUT)
    restored.load_state_dict(buffer.state_dict())
    for key in LAYOUT:
        np.testing.assert_array_equal(restored.storage.observations[key][:3], buffer.storage.observations[key][:3])
    single = ReplayBuffer(capacity=4, seed=0, observation_shape=(3,), observation_dtype=np.dtype(np.float32))
    with pytest.raises(ValueError, match="dictionary observations"):
        restored.load_state_dict(single.state_dict())


def test_buffer_needs_one_observation_layout():
    with pytest.raises(ValueError, match="or observation_parts"):
        ReplayBuffer(capacity=4, seed=0)
    with pytest.raises(ValueError, match="not observation_parts"):
        ReplayBuffer(capacity=4, seed=0, observation_parts=LAYOUT, stacked_frames=True)


def test_buffer_with_observation_parts_gathers_the_same_batch_from_its_device_copy():
    """The device mirror (here on the CPU) holds each key's arrays: batches equal the host's."""
    host = ReplayBuffer(capacity=4, seed=3, observation_parts=LAYOUT)
    mirrored = ReplayBuffer(capacity=4, seed=3, observation_parts=LAYOUT, device="cpu")
    flags = np.zeros(3, dtype=bool)
    for offset in (0, 10):  # the second add wraps around the ring
        for buffer in (host, mirrored):
            buffer.add(parts(3, offset), np.arange(3), np.ones(3), parts(3, offset + 50), flags, flags, 0.9)
    expected, gathered = host.sample(6).to_torch("cpu"), mirrored.sample(6)
    for field in ("observations", "next_observations"):
        for key in LAYOUT:
            got = getattr(gathered, field)[key]
            assert got.dtype == getattr(expected, field)[key].dtype
            np.testing.assert_array_equal(got.numpy(), getattr(expected, field)[key].numpy())


def test_sequences_of_dict_observations_give_each_keys_sequences_alone_and_replay_keeps_them():
    """Sequences (L = 4, overlap 2) over episodes of different lengths in two sub-envs: each key's
    observations are those of an accumulator fed that key's array alone (padding included), and a
    sequence replay with observation_parts gives them back [B, L + 1, *shape_k] in each key's dtype."""
    together = SequenceAccumulator(2, 4, 2)
    alone = {key: SequenceAccumulator(2, 4, 2) for key in LAYOUT}
    states, real = np.zeros((2, 3), np.float32), np.ones(2, dtype=bool)
    emitted: list = []
    for step in range(14):
        observations, next_observations = parts(2, 10 * step), parts(2, 10 * step + 5)
        actions, rewards = np.array([step % 2, 1]), np.ones(2)
        terminated, truncated = np.array([step % 6 == 5, False]), np.array([False, step % 9 == 8])
        made = together.push(observations, actions, rewards, next_observations, terminated, truncated, states, real)
        for key, accumulator in alone.items():
            expected = accumulator.push(
                observations[key], actions, rewards, next_observations[key], terminated, truncated, states, real
            )
            assert len(made) == len(expected)
            for sequence, reference in zip(made, expected):
                np.testing.assert_array_equal(sequence.observations[key], reference.observations)
                assert sequence.observations[key].dtype == LAYOUT[key][1]
        emitted += made
    assert any(sequence.length < 4 for sequence in emitted)  # a padded one is among them
    buffer = SequenceReplayBuffer(
        capacity=len(emitted), sequence_length=4, state_size=3, seed=0, observation_parts=LAYOUT
    )
    buffer.add(emitted)
    batch = buffer.gather(np.arange(len(emitted)))
    for key, (shape, dtype) in LAYOUT.items():
        assert batch.observations[key].shape == (len(emitted), 5, *shape) and batch.observations[key].dtype == dtype
        np.testing.assert_array_equal(batch.observations[key], np.stack([s.observations[key] for s in emitted]))
