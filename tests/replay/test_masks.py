"""Action masks in replay: bits in, the same bool masks out (host, device copy, checkpoints), the
n-step bootstrap mask, and the mask of the true final observation; nothing at all when masks are off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.replay import NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer, replay_bytes
from dqn_family.replay.masks import mask_width, pack_legal, unpack_legal, unpack_legal_torch

A = 6  # actions


def legal_of(numbers: np.ndarray, n_actions: int = A) -> np.ndarray:
    """A distinct mask per number: action a is legal where bit a of (number + 1) is set (never all False)."""
    return ((np.asarray(numbers)[:, None] + 1) >> np.arange(n_actions)) & 1 == 1


def rows(first: int, count: int, masks: bool = True) -> dict:
    numbers = np.arange(first, first + count)
    values = dict(
        observations=numbers[:, None].astype(np.float32),
        actions=numbers % A,
        rewards=numbers.astype(np.float32),
        next_observations=(numbers[:, None] + 1).astype(np.float32),
        terminated=np.zeros(count, bool),
        truncated=np.zeros(count, bool),
        discounts=0.99,
    )
    return {**values, "next_legal": legal_of(numbers + 1)} if masks else values


def buffer(capacity: int = 8, cls=ReplayBuffer, **options) -> ReplayBuffer:
    return cls(capacity=capacity, observation_shape=(1,), observation_dtype=np.dtype(np.float32), seed=0, **options)


@pytest.mark.parametrize("n_actions", [1, 6, 8, 9, 17])
def test_masks_pack_unpack_round_trip_numpy_and_torch(n_actions):
    legal = np.random.default_rng(n_actions).random((5, 3, n_actions)) < 0.5
    bits = pack_legal(legal, n_actions)
    assert bits.dtype == np.uint8 and bits.shape == (5, 3, mask_width(n_actions))
    np.testing.assert_array_equal(unpack_legal(bits, n_actions), legal)
    np.testing.assert_array_equal(unpack_legal_torch(torch.from_numpy(bits), n_actions).numpy(), legal)


def test_masks_pack_refuses_a_mask_that_is_not_bool_over_the_actions():
    with pytest.raises(ValueError, match=r"bool mask \[\.\.\., 6\], got int8"):
        pack_legal(np.ones((2, A), np.int8), A)
    with pytest.raises(ValueError, match=r"got bool\[2, 5\]"):
        pack_legal(np.ones((2, 5), bool), A)


def test_buffer_with_masks_gives_back_each_transitions_next_mask_across_wraparound():
    replay = buffer(capacity=8, action_masks=A)
    replay.add(**rows(0, 5))
    replay.add(**rows(5, 6))  # wraps: slots hold transitions 8, 9, 10, 3, ..., 7
    replay.add(**rows(11, 20))  # more than the capacity at once: only 23..30 are kept
    batch = replay.gather(np.arange(8))
    numbers = batch.rewards.astype(np.int64)
    assert sorted(numbers.tolist()) == list(range(23, 31))
    np.testing.assert_array_equal(batch.next_legal, legal_of(numbers + 1))
    assert batch.next_legal.dtype == np.bool_
    assert replay.next_legal_bits.nbytes == 8 * mask_width(A)  # one byte per transition for 6 actions


def test_buffer_without_masks_holds_no_mask_and_gives_none():
    replay = buffer()
    replay.add(**rows(0, 3, masks=False))
    assert replay.next_legal_bits is None and replay.gather(np.arange(3)).next_legal is None
    assert replay.nbytes == replay_bytes(capacity=8, observation_shape=(1,), observation_dtype=np.dtype(np.float32))
    assert "next_legal_bits" not in replay.state_dict()


def test_buffer_refuses_masks_it_does_not_keep_and_missing_ones_it_does():
    with pytest.raises(ValueError, match="keeps no action masks"):
        buffer().add(**rows(0, 2))
    with pytest.raises(ValueError, match="add needs next_legal"):
        buffer(action_masks=A).add(**rows(0, 2, masks=False))
    with pytest.raises(ValueError, match="3 rows for 2 transitions"):
        buffer(action_masks=A).add(**{**rows(0, 2), "next_legal": legal_of(np.arange(3))})


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_buffer_nbytes_with_masks_is_what_replay_bytes_says(cls):
    replay = buffer(capacity=100, cls=cls, action_masks=17)
    expected = replay_bytes(
        capacity=100,
        observation_shape=(1,),
        observation_dtype=np.dtype(np.float32),
        prioritized=cls is PrioritizedReplayBuffer,
        action_masks=17,
    )
    assert replay.nbytes == expected
    assert expected - replay_bytes(capacity=100, observation_shape=(1,), observation_dtype=np.dtype(np.float32)) >= 300


def test_prioritized_buffer_with_masks_samples_them():
    replay = buffer(cls=PrioritizedReplayBuffer, action_masks=A)
    replay.add(**rows(0, 5))
    batch = replay.sample(16, beta=0.4)
    np.testing.assert_array_equal(batch.next_legal, legal_of(batch.rewards.astype(np.int64) + 1))


def test_device_copy_with_masks_gathers_what_the_host_gathers():
    host, device = buffer(capacity=10, action_masks=A), buffer(capacity=10, action_masks=A, device="cpu")
    written = 0
    for count in (25, 3, 9, 1):
        for replay in (host, device):
            replay.add(**rows(written, count))
        written += count
        everything = np.arange(len(host))
        host_batch, device_batch = host.gather(everything), device.gather(everything)
        assert isinstance(device_batch.next_legal, torch.Tensor) and device_batch.next_legal.dtype == torch.bool
        np.testing.assert_array_equal(device_batch.next_legal.numpy(), host_batch.next_legal)


def test_buffer_state_with_masks_round_trips():
    source, target = buffer(action_masks=A), buffer(action_masks=A)
    source.add(**rows(0, 11))
    target.load_state_dict(source.state_dict())
    everything = np.arange(8)
    np.testing.assert_array_equal(target.gather(everything).next_legal, source.gather(everything).next_legal)


@pytest.mark.parametrize(
    "forge, message",
    [
        (lambda state: state.pop("next_legal_bits"), "has no 'next_legal_bits'"),
        (lambda state: state.update(next_legal_bits=state["next_legal_bits"].astype(np.int16)), "expected uint8"),
        (lambda state: state.update(next_legal_bits=np.zeros((5, 2), np.uint8)), r"expected uint8\[5, 1\]"),
        (lambda state: state.update(next_legal_bits=np.full((5, 1), 0xFF, np.uint8)), "bits set past the 6 actions"),
    ],
)
def test_buffer_load_refuses_forged_mask_bits_and_stays_unchanged(forge, message):
    source, target = buffer(action_masks=A), buffer(action_masks=A)
    source.add(**rows(0, 5))
    target.add(**rows(100, 2))
    state = {**source.state_dict()}
    forge(state)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert len(target) == 2 and target.gather(np.arange(2)).rewards.tolist() == [100.0, 101.0]


def test_buffer_without_masks_refuses_a_state_with_masks_and_the_reverse():
    masked, plain = buffer(action_masks=A), buffer()
    masked.add(**rows(0, 3))
    plain.add(**rows(0, 3, masks=False))
    with pytest.raises(ValueError, match="holds action masks"):
        buffer().load_state_dict(masked.state_dict())
    with pytest.raises(ValueError, match="has no 'next_legal_bits'"):
        buffer(action_masks=A).load_state_dict(plain.state_dict())


# --- n-step: the mask of the state each transition bootstraps from -----------------------------------


def nstep_push(accumulator: NStepAccumulator, t: int, *, terminated=False, truncated=False, final_mask=None):
    """One step of one env: s = t, s' = t + 1 with mask legal_of(t + 1) (or ``final_mask``)."""
    next_legal = legal_of(np.array([t + 1])) if final_mask is None else np.array([final_mask])
    return accumulator.push(
        np.array([[float(t)]]),
        np.array([t % A]),
        np.array([1.0]),
        np.array([[float(t + 1)]]),
        np.array([terminated]),
        np.array([truncated]),
        np.array([True]),
        next_legal,
    )


def test_nstep_transitions_carry_the_mask_of_the_state_they_bootstrap_from():
    accumulator = NStepAccumulator(1, 3, 0.9)
    assert len(nstep_push(accumulator, 0)) == 0 and len(nstep_push(accumulator, 1)) == 0
    for t in (2, 3, 4):  # steady: s_t -> s_{t+3}
        out = nstep_push(accumulator, t)
        assert out.observations[0, 0] == t - 2 and out.next_observations[0, 0] == t + 1
        np.testing.assert_array_equal(out.next_legal, legal_of(np.array([t + 1])))


@pytest.mark.parametrize("ending", ["truncated", "terminated"])
def test_nstep_tail_at_an_episode_end_bootstraps_with_the_true_final_observations_mask(ending):
    accumulator = NStepAccumulator(1, 3, 0.9)
    nstep_push(accumulator, 0)
    nstep_push(accumulator, 1)
    final_mask = [False, False, True, False, False, True]
    out = nstep_push(accumulator, 2, final_mask=final_mask, **{ending: True})  # three transitions flushed
    assert out.observations[:, 0].tolist() == [0.0, 1.0, 2.0] and (out.next_observations == 3.0).all()
    np.testing.assert_array_equal(out.next_legal, [final_mask] * 3)
    replay = buffer(action_masks=A)
    replay.add(**out.as_dict())
    np.testing.assert_array_equal(replay.gather(np.arange(3)).next_legal, [final_mask] * 3)


def test_nstep_without_masks_gives_none():
    accumulator = NStepAccumulator(1, 1, 0.9)
    false = np.zeros(1, bool)
    out = accumulator.push(np.zeros((1, 1)), np.zeros(1, np.int64), np.zeros(1), np.ones((1, 1)), false, false, ~false)
    assert out.next_legal is None and out.as_dict()["next_legal"] is None


# --- sequences: a mask per observation position ------------------------------------------------------


def sequence_steps(accumulator, count: int, *, end: str | None = None, final_mask=None):
    """``count`` steps of one env: s = t, s' = t + 1, masks legal_of(t) and legal_of(t + 1) (the last
    next mask ``final_mask`` where given); the last step ends the episode as ``end`` says."""
    finished = []
    for t in range(count):
        last = t == count - 1
        next_legal = legal_of(np.array([t + 1]))
        if last and final_mask is not None:
            next_legal = np.array([final_mask])
        finished += accumulator.push(
            np.array([[float(t)]]),
            np.array([t % A]),
            np.array([1.0]),
            np.array([[float(t + 1)]]),
            np.array([last and end == "terminated"]),
            np.array([last and end == "truncated"]),
            np.zeros((1, 2), np.float32),
            np.array([True]),
            legal_of(np.array([t])),
            next_legal,
        )
    return finished


def test_sequence_masks_follow_each_observation_position_padding_has_none():
    from dqn_family.replay import SequenceAccumulator

    final_mask = [True, False, False, False, False, True]
    sequences = sequence_steps(SequenceAccumulator(1, 4, 2), 5, end="truncated", final_mask=final_mask)
    assert [(s.start, s.length) for s in sequences] == [(0, 4), (2, 3)]
    first, second = sequences
    np.testing.assert_array_equal(first.legal, legal_of(np.arange(5)))  # positions 0..4: s_0 .. s_4
    np.testing.assert_array_equal(second.legal[:3], legal_of(np.arange(2, 5)))
    np.testing.assert_array_equal(second.legal[3], final_mask)  # the true final observation's mask
    assert not second.legal[4].any()  # padding


def test_sequence_replay_with_masks_round_trips_and_refuses_misfits():
    from dqn_family.replay import SequenceAccumulator, SequenceReplayBuffer

    options = dict(
        capacity=3, sequence_length=4, state_size=2, observation_shape=(1,), observation_dtype=np.dtype(np.float32)
    )
    replay = SequenceReplayBuffer(**options, seed=0, action_masks=A)
    sequences = sequence_steps(SequenceAccumulator(1, 4, 2), 9, end="terminated")
    replay.add(sequences)
    batch = replay.gather(np.arange(3))
    assert batch.legal.shape == (3, 5, A) and batch.legal.dtype == np.bool_
    assert len(sequences) == 4  # starts 0, 2, 4, 6: the fourth overwrote slot 0
    for row, sequence in zip(batch.legal, [sequences[3], sequences[1], sequences[2]]):
        np.testing.assert_array_equal(row, sequence.legal)
    copy = SequenceReplayBuffer(**options, seed=1, action_masks=A)
    copy.load_state_dict(replay.state_dict())
    np.testing.assert_array_equal(copy.gather(np.arange(3)).legal, batch.legal)
    with pytest.raises(ValueError, match="holds action masks"):
        SequenceReplayBuffer(**options, seed=1).load_state_dict(replay.state_dict())
    forged = {**replay.state_dict(), "legal_bits": np.full((3, 5, 1), 0xFF, np.uint8)}
    with pytest.raises(ValueError, match="bits set past the 6 actions"):
        copy.load_state_dict(forged)
    plain = SequenceReplayBuffer(**options, seed=0)
    with pytest.raises(ValueError, match="keeps no action masks"):
        plain.add(sequences[:1])
    assert plain.gather(np.zeros(0, np.int64)).legal is None and "legal_bits" not in plain.state_dict()
