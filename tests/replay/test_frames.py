"""FrameStackStorage: stacked frames stored once each, read back byte for byte as whole-array
storage would, with reference counts that neither leak nor free a frame in use, in the memory
worked out in replay.frames.frame_count."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.replay import FrameStackStorage, PrioritizedReplayBuffer, ReplayBuffer, frame_window_for
from tests.replay.frame_envs import FRAME_SHAPE, OBSERVATION_SHAPE, STACK, distinct_frames, feed, make_buffer


def frame(value: int) -> np.ndarray:
    return np.full((2, 3), value, dtype=np.uint8)


def stack(*values: int) -> np.ndarray:
    """One observation [len(values), 2, 3] of constant frames."""
    return np.stack([frame(v) for v in values])


def storage(capacity: int, *, frame_window: int = 8, spare_frames: int = 0) -> FrameStackStorage:
    return FrameStackStorage(
        capacity=capacity,
        observation_shape=(STACK, 2, 3),
        observation_dtype=np.dtype(np.uint8),
        frame_window=frame_window,
        spare_frames=spare_frames,
    )


def write(store: FrameStackStorage, slot: int, observation: tuple[int, ...], next_observation: tuple[int, ...]) -> None:
    store.write(np.array([slot]), stack(*observation)[None], stack(*next_observation)[None])


def test_frame_stack_storage_keeps_a_padded_reset_stack_as_one_frame():
    store = storage(4)
    write(store, 0, (5, 5, 5, 5), (5, 5, 5, 6))  # a reset stack, then one step
    assert store.live_frames == 2
    assert store.observation_frames[0].tolist() == [0, 0, 0, 0]
    assert store.next_observation_frames[0].tolist() == [0, 0, 0, 1]
    assert store.refcounts[:2].tolist() == [7, 1]
    observations, next_observations = store.read(np.array([0, 0]))
    assert observations.shape == (2, STACK, 2, 3) and observations.dtype == np.uint8
    assert observations[:, :, 0, 0].tolist() == [[5, 5, 5, 5]] * 2
    assert next_observations[0, :, 0, 0].tolist() == [5, 5, 5, 6]


def test_frame_stack_storage_shares_frames_between_consecutive_transitions():
    store = storage(4)
    write(store, 0, (1, 2, 3, 4), (2, 3, 4, 5))
    write(store, 1, (2, 3, 4, 5), (3, 4, 5, 6))
    assert store.live_frames == 6  # frames 1..6
    # frame 1 is in obs 0 only; 2 in obs 0, next 0, obs 1; 3 and 4 in all four; 5 in all but obs 0; 6 in next 1
    assert store.refcounts[:6].tolist() == [1, 3, 4, 4, 3, 1]


def test_frame_stack_storage_overwrite_releases_frames_no_longer_referenced():
    store = storage(1)
    write(store, 0, (1, 2, 3, 4), (2, 3, 4, 5))
    write(store, 0, (2, 3, 4, 5), (3, 4, 5, 6))  # frame 1 is dropped, 2..5 stay, 6 is new
    assert store.live_frames == 5
    assert store.free_count == len(store.frames) - 5 and store.free[store.free_count - 1] == 0  # frame 0 held 1
    write(store, 0, (7, 7, 7, 7), (7, 7, 7, 8))  # shares nothing: all five freed, two new
    assert store.live_frames == 2 and store.refcounts.sum() == 2 * STACK
    assert store.read(np.array([0]))[1][0, :, 0, 0].tolist() == [7, 7, 7, 8]


def test_frame_stack_storage_does_not_reuse_a_freed_frame_still_in_the_window():
    store = storage(1, frame_window=64)
    write(store, 0, (1, 1, 1, 1), (1, 1, 1, 2))
    write(store, 0, (3, 3, 3, 3), (3, 3, 3, 4))  # frames 1 and 2 freed, still in the window
    write(store, 0, (1, 1, 1, 1), (1, 1, 1, 5))  # 1 must be stored anew, not taken from the free list's slot
    assert store.live_frames == 2 and store.refcounts.sum() == 2 * STACK
    assert sorted(store.free[: store.free_count].tolist()) == sorted(
        set(range(len(store.frames)))
        - set(store.observation_frames[0].tolist())
        - set(store.next_observation_frames[0].tolist())
    )
    observations, next_observations = store.read(np.array([0]))
    assert observations[0, :, 0, 0].tolist() == [1, 1, 1, 1] and next_observations[0, :, 0, 0].tolist() == [1, 1, 1, 5]


def test_frame_stack_storage_crc_collisions_cost_copies_not_wrong_frames(monkeypatch):
    monkeypatch.setattr("dqn_family.replay.frames.zlib.crc32", lambda data: 0)  # every frame collides
    store = storage(3)
    write(store, 0, (1, 2, 3, 4), (2, 3, 4, 5))
    write(store, 1, (9, 9, 9, 9), (9, 9, 9, 8))
    observations, next_observations = store.read(np.array([0, 1]))
    assert observations[:, :, 0, 0].tolist() == [[1, 2, 3, 4], [9, 9, 9, 9]]
    assert next_observations[:, :, 0, 0].tolist() == [[2, 3, 4, 5], [9, 9, 9, 8]]
    assert store.refcounts.sum() == 4 * STACK


def test_frame_stack_storage_raises_when_observations_share_no_frames():
    # capacity 10, window 8, spare 0: 10 + 0 + 8 + 2 * 4 = 26 frames; random stacks need 8 each
    store = storage(10)
    rng = np.random.default_rng(0)
    write(store, 0, tuple(range(4)), tuple(range(4, 8)))
    with pytest.raises(RuntimeError, match="do not share frames the way frame stacks"):
        for slot in range(1, 10):
            store.write(
                np.array([slot]),
                rng.integers(0, 256, (1, STACK, 2, 3), dtype=np.uint8),
                rng.integers(0, 256, (1, STACK, 2, 3), dtype=np.uint8),
            )


def test_frame_stack_storage_refuses_observations_of_another_shape():
    with pytest.raises(ValueError, match=r"shape \(3, 2, 3\) per transition, expected \(4, 2, 3\)"):
        storage(2).write(np.array([0]), np.zeros((1, 3, 2, 3), np.uint8), np.zeros((1, 3, 2, 3), np.uint8))


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_frame_stack_storage_reads_what_array_storage_reads_on_a_vector_env(kind, n_step, num_envs):
    capacity = 40
    frames = make_buffer(
        kind,
        capacity=capacity,
        stacked_frames=True,
        frame_window=num_envs * (n_step + STACK + 2),
        spare_frames=capacity,
    )
    arrays = make_buffer(kind, capacity=capacity, stacked_frames=False)

    def compare() -> None:
        everything = np.arange(len(arrays))
        assert_same_batches(frames.gather(everything), arrays.gather(everything))
        if kind == "prioritized" and len(arrays):
            assert_same_batches(frames.sample(16, beta=0.4), arrays.sample(16, beta=0.4))
        elif len(arrays):
            assert_same_batches(frames.sample(16), arrays.sample(16))

    counts = feed([frames, arrays], num_envs=num_envs, n_step=n_step, vector_steps=200, after_step=compare)
    assert counts["transitions"] > 3 * capacity  # wrapped around at least three times
    assert counts["terminated"] > 5 and counts["truncated"] > 5  # both endings, with true final observations
    assert len(frames) == capacity and frames.position == arrays.position


def assert_same_batches(first, second) -> None:
    for name, value in first.__dict__.items():
        other = second.__dict__[name]
        if value is None:  # a field neither batch has (next_legal without masks)
            assert other is None, name
            continue
        assert value.dtype == other.dtype and value.shape == other.shape and value.tobytes() == other.tobytes(), name


@pytest.mark.parametrize("n_step, num_envs", [(1, 1), (3, 3)])
def test_frame_stack_storage_live_frames_are_the_distinct_stored_frames(n_step, num_envs):
    buffer = make_buffer(
        "uniform", capacity=30, stacked_frames=True, frame_window=num_envs * (n_step + STACK + 2), spare_frames=30
    )
    counts = feed([buffer], num_envs=num_envs, n_step=n_step, vector_steps=400)
    assert counts["transitions"] > 10 * 30
    store = buffer.storage
    # Every frame of the scripted env differs, so each distinct stored frame should be held exactly once.
    assert store.live_frames == distinct_frames(buffer)
    assert store.refcounts.sum() == 2 * STACK * 30
    assert np.all(store.refcounts[store.free[: store.free_count]] == 0)
    assert np.count_nonzero(store.refcounts) == store.live_frames


def test_frame_stack_storage_default_spare_holds_long_episodes():
    # Episodes of 150-250 steps, 3 envs, 3-step: frame_count = 256 + 256 // 128 + 27 + 8 = 293.
    # No episode fits whole in 256 slots shared by 3 envs, so live frames stay within
    # 256 + 3 * (S + n) = 277 (replay.frames.frame_count's bound) after every add.
    buffer = make_buffer("uniform", capacity=256, stacked_frames=True, frame_window=3 * (3 + STACK + 2))
    store = buffer.storage
    most_live = []
    counts = feed(
        [buffer],
        num_envs=3,
        n_step=3,
        vector_steps=1200,
        length=lambda e, i: 150 + (37 * e + 11 * i) % 101,
        time_limit=1000,
        after_step=lambda: most_live.append(store.live_frames),
    )
    assert len(store.frames) == 293 and counts["transitions"] > 10 * 256
    assert max(most_live) <= 277
    assert store.live_frames == distinct_frames(buffer)


@pytest.mark.parametrize("buffer_class, extra_bytes", [(ReplayBuffer, 0), (PrioritizedReplayBuffer, 2 * 1024 * 8)])
def test_frame_stack_storage_bytes_per_transition_of_atari_stacks(buffer_class, extra_bytes):
    buffer = buffer_class(
        capacity=1000, observation_shape=(4, 84, 84), observation_dtype=np.dtype(np.uint8), seed=0, stacked_frames=True
    )
    # F = 1000 + 1000 // 128 + 64 (window) + 2 * 4 = 1079 frames of 7056 bytes, 8 bytes each for the
    # reference count and the free list; 2 x 4 int32 frame numbers and 18 bytes of fields per transition;
    # the sum tree has 2 x 1024 float64 nodes.
    assert len(buffer.storage.frames) == 1079
    # 7,672,056 bytes (+ 16,384): 7,672 per transition, 8.8% over the 7,056 of one frame, mostly the
    # 64-frame window and the 8 transient frames, which a buffer of 1M makes negligible (test_memory.py).
    assert buffer.nbytes == 1079 * (7056 + 8) + 1000 * (32 + 18) + extra_bytes


def _episode_stacks(stream: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """One episode of ``stream``'s (observation, next observation) stacks: frame t is all ``t`` with its
    first pixel the stream, the reset stack padded with frame 0 (as FrameStackObservation pads)."""
    frames = np.zeros((steps + 1, *FRAME_SHAPE), dtype=np.uint8)
    frames[:] = np.arange(steps + 1, dtype=np.uint8)[:, None, None]
    frames[:, 0, 0] = 100 + stream
    padded = np.concatenate([np.repeat(frames[:1], STACK - 1, axis=0), frames])  # [S - 1 + T + 1]
    stacks = np.stack([padded[t : t + STACK] for t in range(steps + 1)])  # stack t ends at frame t
    return stacks[:-1], stacks[1:]


@pytest.mark.parametrize("streams, expected_extra", [(2, 0), (1, 4 * STACK)])
def test_frame_stack_storage_streams_store_each_actors_frames_once_when_sends_interleave(streams, expected_extra):
    """Two actors' sends of 40 transitions each reach the replay interleaved (a, b, a, b, a, b): with a
    frame window per stream each actor's 121 distinct frames (a 120-step episode) are stored once,
    242 in all, as one process stores them. One window of the same size (7 frames) shared by both
    forgets an actor's frames while the other's send passes: each of the 4 sends that continue an
    actor's episode stores again the S frames its first stack shares with the previous send."""
    window = frame_window_for(num_envs=1, n_step=1, stack=STACK)  # one env per actor
    storage = FrameStackStorage(
        capacity=240,
        observation_shape=OBSERVATION_SHAPE,
        observation_dtype=np.dtype(np.uint8),
        frame_window=window,
        spare_frames=32,
        streams=streams,
    )
    episodes = [_episode_stacks(actor, 120) for actor in range(2)]
    written = 0
    for send in range(3):
        for actor in range(2):
            observations, next_observations = (part[40 * send : 40 * (send + 1)] for part in episodes[actor])
            storage.write(slice(written, written + 40), observations, next_observations, actor if streams > 1 else 0)
            written += 40
    assert storage.live_frames == 2 * 121 + expected_extra


def test_frame_stack_storage_streams_windows_survive_a_state_round_trip():
    """A restored storage goes on finding each stream's recent frames: the next sends of both actors
    store only their new frames, as the storage that was saved does."""

    def interleaved(store: FrameStackStorage, sends: range) -> None:
        for send in sends:
            for actor in range(2):
                observations, next_observations = (part[40 * send : 40 * (send + 1)] for part in episodes[actor])
                slot = 80 * send + 40 * actor
                store.write(slice(slot, slot + 40), observations, next_observations, actor)

    episodes = [_episode_stacks(actor, 120) for actor in range(2)]
    options = dict(
        capacity=240,
        observation_shape=OBSERVATION_SHAPE,
        observation_dtype=np.dtype(np.uint8),
        frame_window=frame_window_for(num_envs=1, n_step=1, stack=STACK),
        spare_frames=32,
        streams=2,
    )
    saved = FrameStackStorage(**options)
    interleaved(saved, range(1))
    restored = FrameStackStorage(**options)
    restored.load_state_dict(saved.state_dict(80), 80)
    assert {key >> 32 for key in restored.window} == {0, 1}
    for store in (saved, restored):
        interleaved(store, range(1, 3))
        assert store.live_frames == 2 * 121
    one_stream = FrameStackStorage(**{**options, "streams": 1, "spare_frames": 32 + 7})  # as many frames
    with pytest.raises(ValueError, match="per stream"):  # stream 1's window has nowhere to go
        one_stream.load_state_dict(saved.state_dict(240), 240)
