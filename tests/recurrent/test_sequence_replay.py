"""replay.sequence: sequences cut from per-env episode streams, checked against a brute-force slicing
of the same stream (boundaries, overlap, padding masks, stored states), n-step targets inside
sequences against a hand loop, the ring's wraparound, stacked-frame storage, priorities and state."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.replay import Sequence, SequenceAccumulator, SequenceReplayBuffer
from dqn_family.replay.sequence import sequence_n_step


def episode_stream(rng: np.random.Generator, num_envs: int, lengths: list[list[int]], truncate_every: int = 3):
    """Vector steps of num_envs sub-envs playing the given episode lengths, NEXT_STEP autoreset steps
    included (not real), with observations [episode, step], states [episode * 1000 + step] and
    rewards unique per step. Yields (push arguments, the per-env list of real steps so far)."""
    position = [0] * num_envs  # step within the current episode, or -1 on an autoreset step
    episode = [0] * num_envs
    pending = [False] * num_envs
    while any(episode[i] < len(lengths[i]) for i in range(num_envs)):
        obs, next_obs = np.zeros((num_envs, 2), np.float32), np.zeros((num_envs, 2), np.float32)
        actions, rewards = rng.integers(0, 3, num_envs), np.zeros(num_envs, np.float32)
        terminated, truncated = np.zeros(num_envs, bool), np.zeros(num_envs, bool)
        states, real = np.zeros((num_envs, 1), np.float32), np.ones(num_envs, bool)
        for i in range(num_envs):
            if episode[i] >= len(lengths[i]) or pending[i]:
                real[i] = False
                pending[i] = False
                continue
            e, t = episode[i], position[i]
            obs[i], next_obs[i] = (e, t), (e, t + 1)
            rewards[i] = 100 * e + t + 0.5 * i
            states[i] = e * 1000 + t
            if t + 1 == lengths[i][e]:
                (terminated if (e + 1) % truncate_every else truncated)[i] = True
                pending[i] = True
                episode[i], position[i] = e + 1, 0
            else:
                position[i] = t + 1
        yield obs, actions, rewards, next_obs, terminated, truncated, states, real


def brute_force_sequences(length: int, sequence_length: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of the sequences of one episode: starts every L - overlap steps; full ones while
    they fit; then, if steps remain in none, one more from the next start to the episode's end."""
    period = sequence_length - overlap
    full = [(s, s + sequence_length) for s in range(0, length, period) if s + sequence_length <= length]
    covered = full[-1][1] if full else 0
    if covered < length:
        start = len(full) * period
        return [*full, (start, length)]
    return full


@pytest.mark.parametrize("sequence_length, overlap", [(4, 0), (5, 2), (5, 4), (3, 1)])
def test_accumulator_cuts_episodes_as_brute_force_slicing(sequence_length, overlap):
    rng = np.random.default_rng(0)
    lengths = [[1, 7, 4, 12, 5], [9, 2, 3, 10, 6, 1]]
    accumulator = SequenceAccumulator(2, sequence_length, overlap)
    emitted: list[Sequence] = []
    actions_seen: dict[tuple[int, int], int] = {}
    for obs, actions, rewards, next_obs, terminated, truncated, states, real in episode_stream(rng, 2, lengths):
        for i in np.flatnonzero(real):
            actions_seen[(int(obs[i, 0]) * 10 + i, int(obs[i, 1]))] = int(actions[i])
        emitted += accumulator.push(obs, actions, rewards, next_obs, terminated, truncated, states, real)
    expected = sorted(
        (i, e, start, end)
        for i in range(2)
        for e, length in enumerate(lengths[i])
        for start, end in brute_force_sequences(length, sequence_length, overlap)
    )
    got = []
    for sequence in emitted:
        episode = int(sequence.observations[0, 0])
        env = 0 if sequence.rewards[0] % 1 == 0 else 1
        got.append((env, episode, sequence.start, sequence.start + sequence.length))
        n, start = sequence.length, sequence.start
        # Observations: the real steps, the observation after the last, then zero padding.
        assert sequence.observations[: n + 1, 1].tolist() == list(range(start, start + n + 1))
        assert not sequence.observations[n + 1 :].any()
        assert sequence.rewards[:n].tolist() == [100 * episode + t + 0.5 * env for t in range(start, start + n)]
        assert not sequence.rewards[n:].any() and not sequence.actions[n:].any()
        assert sequence.actions[:n].tolist() == [actions_seen[(episode * 10 + env, t)] for t in range(start, start + n)]
        # The state the actor had before the sequence's first step.
        assert sequence.state.tolist() == [episode * 1000 + start]
        end_of_episode = start + n == lengths[env][episode]
        terminates = end_of_episode and (episode + 1) % 3 != 0
        assert sequence.terminated.tolist() == [terminates and t == n - 1 for t in range(sequence_length)]
    assert sorted(got) == expected


def test_accumulator_refuses_overlap_not_below_length():
    with pytest.raises(ValueError):
        SequenceAccumulator(1, 4, 4)


def test_sequence_n_step_matches_hand_loop():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(4, 6)).astype(np.float32)
    lengths = np.array([6, 3, 1, 6])
    terminated = np.zeros((4, 6), bool)
    terminated[1, 2] = True  # sequence 1 ends its episode by termination; 0 and 3 are cut mid-episode
    returns, discounts, done, bootstrap, mask = sequence_n_step(rewards, terminated, lengths, 3, 0.9)
    for b in range(4):
        for t in range(6):
            if t >= lengths[b]:
                assert mask[b, t] == 0.0
                continue
            k = min(3, lengths[b] - t)
            assert returns[b, t] == pytest.approx(sum(0.9**i * rewards[b, t + i] for i in range(k)), rel=1e-5)
            assert discounts[b, t] == pytest.approx(0.9**k)
            assert bootstrap[b, t] == t + k
            assert done[b, t] == float(terminated[b, t + k - 1])
            assert mask[b, t] == 1.0
    assert bootstrap.max() <= 6


def make_sequence(index: int, length: int = 4, real: int = 4, obs_shape=(2,), state_size: int = 2) -> Sequence:
    observations = np.zeros((length + 1, *obs_shape), np.float32)
    observations[: real + 1] = index + np.arange(real + 1).reshape(-1, *([1] * len(obs_shape)))
    return Sequence(
        observations=observations,
        actions=np.pad(np.full(real, index % 3, np.int64), (0, length - real)),
        rewards=np.pad(np.full(real, float(index), np.float32), (0, length - real)),
        terminated=np.zeros(length, bool),
        length=real,
        state=np.full(state_size, float(index), np.float32),
        start=0,
    )


def buffer(capacity: int = 3, **options) -> SequenceReplayBuffer:
    values = dict(
        capacity=capacity,
        sequence_length=4,
        state_size=2,
        observation_shape=(2,),
        observation_dtype=np.dtype(np.float32),
        seed=0,
    )
    return SequenceReplayBuffer(**{**values, **options})


def test_buffer_wraps_around_keeping_the_newest_sequences():
    replay = buffer(capacity=3)
    replay.add([make_sequence(i, real=1 + i % 4) for i in range(5)])
    assert (len(replay), replay.position) == (3, 2)
    batch = replay.gather(np.array([0, 1, 2]))
    # slots 0 and 1 hold sequences 3 and 4, slot 2 still sequence 2
    assert batch.states[:, 0].tolist() == [3.0, 4.0, 2.0]
    assert batch.mask.sum(axis=1).tolist() == [4.0, 1.0, 3.0]
    for row, index, real in zip(range(3), (3, 4, 2), (4, 1, 3)):
        assert batch.observations[row, : real + 1, 0].tolist() == [index + t for t in range(real + 1)]
        assert not batch.observations[row, real + 1 :].any()


def test_buffer_with_stacked_frames_returns_what_array_storage_does():
    frames = dict(observation_shape=(2, 3, 3), observation_dtype=np.dtype(np.uint8))
    plain, stacked = buffer(**frames), buffer(**frames, stacked_frames=True, frame_window=16)
    rng = np.random.default_rng(2)
    for index in range(5):
        frame_seq = rng.integers(0, 255, size=(6, 3, 3), dtype=np.uint8)  # stacks of 2 consecutive frames
        observations = np.stack([frame_seq[t : t + 2] for t in range(5)])
        observations[4] = 0 if index % 2 else observations[4]  # a padded final observation in some
        sequence = make_sequence(index, obs_shape=(2, 3, 3))
        sequence = Sequence(**{**sequence.__dict__, "observations": observations})
        plain.add([sequence])
        stacked.add([sequence])
    indices = np.array([0, 1, 2, 2])
    assert np.array_equal(plain.gather(indices).observations, stacked.gather(indices).observations)


def test_prioritized_buffer_samples_by_priority_with_importance_weights():
    replay = buffer(capacity=4, prioritized=True, alpha=1.0, epsilon=1e-9)
    replay.add([make_sequence(i) for i in range(4)])
    replay.update_priorities(np.array([0, 1, 2, 3]), np.array([0.0, 0.0, 3.0, 1.0]))
    batch = replay.sample(400, beta=1.0)
    counts = np.bincount(batch.indices, minlength=4)
    assert counts[:2].sum() == 0 and 250 < counts[2] < 350
    # w = (N P(i))^-beta / max: P = 3/4 and 1/4 -> w = 1/3 and 1
    assert np.unique(batch.weights) == pytest.approx([1 / 3, 1.0])


@pytest.mark.parametrize("prioritized", [False, True])
def test_buffer_state_round_trip_restores_contents_and_sampling(prioritized):
    replay = buffer(capacity=3, prioritized=prioritized)
    replay.add([make_sequence(i, real=1 + i % 4) for i in range(4)])
    if prioritized:
        replay.update_priorities(np.array([0, 2]), np.array([2.0, 0.5]))
    copy = buffer(capacity=3, prioritized=prioritized)
    copy.load_state_dict(replay.state_dict(), n_actions=3)
    first, second = replay.sample(8), copy.sample(8)
    for name in ("observations", "actions", "rewards", "mask", "states", "indices", "weights"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name


def test_buffer_load_refuses_a_misfit_and_stays_unchanged():
    replay = buffer(capacity=3)
    replay.add([make_sequence(0)])
    state = replay.state_dict()
    other = buffer(capacity=3)
    bad = {**state, "lengths": np.array([9])}
    with pytest.raises(ValueError, match="lengths"):
        other.load_state_dict(bad)
    assert len(other) == 0
    with pytest.raises(ValueError, match="sequences"):
        buffer(capacity=4).load_state_dict(state)


@pytest.mark.parametrize(
    "forge, message",
    [
        (lambda nodes: nodes.__setitem__(1, np.nan), "sum tree priorities must be finite"),
        (lambda nodes: nodes.__setitem__(1, nodes[1] + 1.0), "inner nodes must be the sums of their children"),
        (lambda nodes: nodes.__setitem__(len(nodes) // 2 + 3, 1.0), "leaves must be > 0 for the 2 stored sequences"),
    ],
)
def test_prioritized_buffer_load_refuses_a_forged_sum_tree(forge, message):
    replay = buffer(capacity=4, prioritized=True)
    replay.add([make_sequence(0), make_sequence(1)])
    state = replay.state_dict()
    state["sum_tree"] = state["sum_tree"].copy()
    forge(state["sum_tree"])
    other = buffer(capacity=4, prioritized=True)
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(state)
    assert len(other) == 0
