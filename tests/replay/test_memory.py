"""replay_bytes: the memory a buffer will allocate, known before it is built."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.replay import PrioritizedReplayBuffer, ReplayBuffer, replay_bytes


@pytest.mark.parametrize("prioritized", [False, True], ids=["uniform", "prioritized"])
@pytest.mark.parametrize("stacked_frames", [False, True], ids=["whole", "frames"])
def test_replay_bytes_equals_nbytes_of_the_buffer_built(prioritized, stacked_frames):
    options = dict(
        capacity=37,
        observation_shape=(4, 6, 5),
        observation_dtype=np.dtype(np.uint8),
        stacked_frames=stacked_frames,
        frame_window=11,
        spare_frames=3,
    )
    buffer_class = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffer = buffer_class(**options, seed=0)
    arrays = [value for value in vars(buffer).values() if isinstance(value, np.ndarray)]
    arrays += [value for value in vars(buffer.storage).values() if isinstance(value, np.ndarray)]
    arrays += [buffer.tree.nodes] if prioritized else []
    assert replay_bytes(**options, prioritized=prioritized) == buffer.nbytes == sum(array.nbytes for array in arrays)


def test_replay_bytes_of_a_million_atari_stacks_with_frames_and_priorities():
    # frames: 1,000,000 + 1,000,000 // 128 + 64 + 2 * 4 = 1,007,884 of 84 * 84 = 7,056 bytes, 8 bytes each
    # of reference count and free list; per transition 2 x 4 int32 frame numbers and 18 bytes of
    # fields; sum tree 2 * 2^20 float64 nodes.
    expected = 1_007_884 * (7_056 + 8) + 1_000_000 * (32 + 18) + 2 * 2**20 * 8
    total = replay_bytes(
        capacity=1_000_000,
        observation_shape=(4, 84, 84),
        observation_dtype=np.dtype(np.uint8),
        stacked_frames=True,
        prioritized=True,
    )
    assert total == expected == 7_186_469_792 and total <= 7.2e9


def test_replay_bytes_of_a_million_whole_atari_stacks():
    total = replay_bytes(capacity=1_000_000, observation_shape=(4, 84, 84), observation_dtype=np.dtype(np.uint8))
    assert total == 1_000_000 * (2 * 4 * 7_056 + 18)  # 56,466,000,000
