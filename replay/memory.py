"""How many bytes a replay buffer will allocate, computed from its options without allocating it,
so that a run can refuse to start when its buffer would not fit in memory."""

from __future__ import annotations

import numpy as np
import torch

from replay.buffer import FIELD_DTYPES
from replay.frames import FrameStackStorage
from replay.storage import ArrayStorage
from replay.sum_tree import NODE_DTYPE, node_count


def replay_bytes(*, capacity: int, observation_shape: tuple[int, ...], observation_dtype: np.dtype,
                 stacked_frames: bool = False, prioritized: bool = False, frame_window: int = 64,
                 spare_frames: int | None = None) -> int:
    """The bytes of all arrays of a (Prioritized)ReplayBuffer built with these options: what its
    ``nbytes`` will be (Python objects such as the frame window's dict come on top, a few KB)."""
    dimensions = {"capacity": capacity, "observation_shape": tuple(observation_shape),
                  "observation_dtype": np.dtype(observation_dtype)}
    observations = (FrameStackStorage.bytes_for(**dimensions, frame_window=frame_window, spare_frames=spare_frames)
                    if stacked_frames else ArrayStorage.bytes_for(**dimensions))
    fields = capacity * sum(dtype.itemsize for dtype in FIELD_DTYPES.values())
    tree = node_count(capacity) * NODE_DTYPE.itemsize if prioritized else 0
    return observations + fields + tree


def available_memory_bytes() -> int | None:
    """The memory the kernel says can be allocated without swapping (Linux's MemAvailable), or
    None where /proc/meminfo does not exist."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_device_memory_bytes(device: torch.device) -> int | None:
    """Free memory on a CUDA device, or None for other devices (torch cannot tell)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)
