"""How many bytes a replay buffer will allocate, computed from its options without allocating it,
so that a run can refuse to start when its buffer would not fit in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dqn_family.replay.buffer import FIELD_DTYPES
from dqn_family.replay.dict_storage import DictStorage, Layout
from dqn_family.replay.frames import FrameStackStorage
from dqn_family.replay.masks import mask_width
from dqn_family.replay.storage import ArrayStorage
from dqn_family.replay.sum_tree import NODE_DTYPE, node_count


def replay_bytes(
    *,
    capacity: int,
    observation_shape: tuple[int, ...] = (),
    observation_dtype: np.dtype | None = None,
    stacked_frames: bool = False,
    prioritized: bool = False,
    frame_window: int = 64,
    spare_frames: int | None = None,
    streams: int = 1,
    action_masks: int | None = None,
    observation_parts: Layout | None = None,
) -> int:
    """The bytes of all arrays of a (Prioritized)ReplayBuffer built with these options: what its
    ``nbytes`` will be (Python objects such as the frame window's dict come on top, a few KB)."""
    observation_shape, observation_dtype = tuple(observation_shape), np.dtype(observation_dtype)
    observations = (
        DictStorage.bytes_for(capacity=capacity, layout=observation_parts)
        if observation_parts is not None
        else FrameStackStorage.bytes_for(
            capacity=capacity,
            observation_shape=observation_shape,
            observation_dtype=observation_dtype,
            frame_window=frame_window,
            spare_frames=spare_frames,
            streams=streams,
        )
        if stacked_frames
        else ArrayStorage.bytes_for(
            capacity=capacity, observation_shape=observation_shape, observation_dtype=observation_dtype
        )
    )
    fields = capacity * sum(dtype.itemsize for dtype in FIELD_DTYPES.values())
    tree = node_count(capacity) * NODE_DTYPE.itemsize if prioritized else 0
    masks = 0 if action_masks is None else capacity * mask_width(action_masks)
    return observations + fields + tree + masks


def available_memory_bytes() -> int | None:
    """The bytes this process can still allocate (see :func:`available_memory`), or None where no
    limit can be read."""
    found = available_memory()
    return None if found is None else found[0]


def available_memory(
    *, proc: str | Path = "/proc", cgroup_root: str | Path = "/sys/fs/cgroup", rlimits: dict[str, int] | None = None
) -> tuple[int, str] | None:
    """(bytes, what limits them) for the tightest of the limits on this process's new memory:

    - the memory the kernel can give without swapping (``MemAvailable`` in ``/proc/meminfo``);
    - ``ulimit -v`` (RLIMIT_AS) less the address space in use (``VmSize``), and ``ulimit -d``
      (RLIMIT_DATA) less the data in use (``VmData``), from ``/proc/self/status``;
    - each cgroup the process is in, and their ancestors: v2 ``memory.max`` less ``memory.current``,
      v1 ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``.

    None where none can be read (not Linux). ``proc``, ``cgroup_root`` and ``rlimits`` (soft limits
    by name, "AS" and "DATA"; default: this process's) are parameters so that tests can fake them."""
    proc, cgroup_root = Path(proc), Path(cgroup_root)
    limits = []
    meminfo = _kib_fields(proc / "meminfo")
    if "MemAvailable" in meminfo:
        limits.append((meminfo["MemAvailable"], "MemAvailable in /proc/meminfo"))
    status = _kib_fields(proc / "self" / "status")
    for name, used, flag in (("AS", "VmSize", "ulimit -v"), ("DATA", "VmData", "ulimit -d")):
        limit = (rlimits if rlimits is not None else _rlimits()).get(name)
        if limit is not None and used in status:
            limits.append((max(0, limit - status[used]), f"{flag} (RLIMIT_{name}) less the {used} in use"))
    for folder in _cgroup_folders(proc / "self" / "cgroup", cgroup_root):
        for maximum, current in (("memory.max", "memory.current"), ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit, usage = _read_int(folder / maximum), _read_int(folder / current)
            if limit is not None and usage is not None and limit < 2**60:  # v1 writes "no limit" as ~2^63
                limits.append((max(0, limit - usage), f"cgroup {folder / maximum} less {current}"))
    return min(limits) if limits else None


def _kib_fields(path: Path) -> dict[str, int]:
    """'Name: N kB' lines of a /proc file, in bytes."""
    fields = {}
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                    fields[name] = int(parts[0]) * 1024
    except (OSError, ValueError):
        return {}
    return fields


def _rlimits() -> dict[str, int]:
    try:
        import resource
    except ImportError:  # not POSIX
        return {}
    soft = {name: resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))[0] for name in ("AS", "DATA")}
    return {name: value for name, value in soft.items() if value != resource.RLIM_INFINITY}


def _cgroup_folders(cgroup_list: Path, root: Path) -> list[Path]:
    """The folders of this process's memory cgroups (v2 and v1) and of their ancestors up to the
    mount point, that exist (in a container, the mount point may be the only one)."""
    try:
        lines = cgroup_list.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return []
    folders = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: the unified hierarchy, mounted at the root or at root/unified
            mounts = [root, root / "unified"]
        elif "memory" in controllers.split(","):
            mounts = [root / "memory"]
        else:
            continue
        parts = [part for part in path.strip().split("/") if part and part not in (".", "..")]
        for mount in mounts:
            folders += [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [folder for folder in dict.fromkeys(folders) if folder.is_dir()]


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def available_device_memory_bytes(device: torch.device) -> int | None:
    """Free memory on a CUDA device, or None for other devices (torch cannot tell)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)
