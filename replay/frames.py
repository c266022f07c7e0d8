"""Replay storage for stacked frames that keeps each distinct frame once (``FrameStackStorage``).

An observation of Gymnasium's ``FrameStackObservation(S)`` is S frames, stack axis first:
[S, *frame_shape]. Consecutive observations of one env share S - 1 frames, and a transition's next
observation shares frames with the next transition's observation, so whole observations store
each frame up to 2S times. Here frames live in one pool [F, *frame_shape]; each transition slot
holds two rows of S frame numbers (its observation's and its next observation's). Every frame has
a reference count; when a slot is overwritten its old frames are released, and a frame whose count
falls to 0 goes back to a free list.

Sharing is found by content: a dict maps a CRC-32 of a frame's bytes to its frame number, for the
last ``frame_window`` distinct frames stored (first in, first out) of each stream. A stream is a
source of transitions whose frames recur in order: one process's vector envs, or one actor's in a
distributed run, whose sends reach the replay interleaved with other actors' (``streams``; a write
names its stream). Each stream has a window of its own, so another actor's frames never push a
stream's recent frames out of it: with N actors every frame is stored once, as in one process. A hit
counts only if that frame is still referenced and its bytes equal the incoming frame's, so a hash
collision or a freed frame costs a fresh copy, never a wrong observation. Observations are stored
byte for byte as given, so padded reset stacks, true final observations of truncated episodes,
n-step transitions and interleaved envs need no special case: ``read`` returns exactly what
``write`` was given. (CRC-32 rather than Python's ``hash``: as fast here, and the same in every
process, so the window can be saved in a checkpoint.)
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Mapping

import numpy as np

from dqn_family.replay.storage import ArrayT, check_array, check_integer, entry

FRAME_NUMBER_DTYPE = np.dtype(np.int32)  # frame numbers, reference counts and the free list


def frame_window_for(*, num_envs: int, n_step: int, stack: int) -> int:
    """The dedup window that finds every shared frame: E * (n + S + 2) (see ``frame_count``)."""
    return num_envs * (n_step + stack + 2)


def frame_count(*, capacity: int, stack: int, frame_window: int, spare_frames: int | None) -> int:
    """Frames to allocate for ``capacity`` transitions of ``stack``-frame observations.

    Why this suffices for frame stacks from E envs, n-step (n = 1 for 1-step): transition j of an
    episode holds s_j = (f_{j-S+1}, ..., f_j), with f_0 padding the first stacks, and s_{min(j+n, L)}.
    The ring overwrites oldest first, so each env's stored transitions are the last it emitted:
      - an episode with all its L transitions stored references f_0..f_L: L + 1 frames;
      - an env's oldest episode, stored from transition a on, references f_{a-S+1}..f_L: its
        stored transitions + S;
      - an env's episode in progress, transitions 0..b emitted, references f_0..f_{b+n}: its
        emitted transitions + n.
    So C stored transitions reference at most C + (episodes wholly stored) + E * (S + n) frames,
    and a transition is written before the one it replaces is released: 2S more at most.
    ``spare_frames`` covers the whole episodes (default C // 128: enough while episodes average 128
    transitions or more); ``frame_window`` covers E * (S + n) when it is at least E * (n + S + 2),
    the size that finds every shared frame (a frame recurs at most n + S - 1 steps after it is
    first stored, and each env stores about one new frame per step). A frame not found in the
    window is stored again, taking one more frame slot.
    """
    spare = capacity // 128 if spare_frames is None else spare_frames
    return capacity + spare + frame_window + 2 * stack


class FrameStackStorage:
    """Observations [S, *frame_shape] stored as rows of frame numbers into a pool of distinct frames."""

    def __init__(
        self,
        *,
        capacity: int,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype,
        frame_window: int = 64,
        spare_frames: int | None = None,
        streams: int = 1,
    ) -> None:
        if len(observation_shape) < 2:
            raise ValueError(f"stacked frames need observations [stack, *frame_shape], got shape {observation_shape}")
        if frame_window < 1:
            raise ValueError(f"frame_window must be >= 1, got {frame_window}")
        if spare_frames is not None and spare_frames < 0:
            raise ValueError(f"spare_frames must be >= 0, got {spare_frames}")
        if streams < 1:
            raise ValueError(f"streams must be >= 1, got {streams}")
        self.stack, self.frame_shape = observation_shape[0], tuple(observation_shape[1:])
        self.frame_window, self.streams = frame_window, streams
        count = frame_count(
            capacity=capacity, stack=self.stack, frame_window=frame_window * streams, spare_frames=spare_frames
        )
        self.frames = np.zeros((count, *self.frame_shape), dtype=observation_dtype)
        # Frame numbers per slot; -1 marks a slot never written.
        self.observation_frames = np.full((capacity, self.stack), -1, dtype=FRAME_NUMBER_DTYPE)
        self.next_observation_frames = np.full((capacity, self.stack), -1, dtype=FRAME_NUMBER_DTYPE)
        self.refcounts = np.zeros(count, dtype=FRAME_NUMBER_DTYPE)
        self.free = np.arange(count - 1, -1, -1, dtype=FRAME_NUMBER_DTYPE)  # a stack: free[:free_count], top last
        self.free_count = count
        self.frames_used = 0  # frames [0, frames_used) have been handed out at least once
        # key -> frame number, key = stream << 32 | CRC-32 of the frame's bytes (the CRC alone in stream 0)
        self.window: dict[int, int] = {}
        # per stream, (key, frame number) oldest first
        self.window_orders: list[deque[tuple[int, int]]] = [deque() for _ in range(streams)]
        self.changed_frames: list[int] | None = None  # frames stored since last asked, once a device copy follows

    @staticmethod
    def bytes_for(
        *,
        capacity: int,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype,
        frame_window: int = 64,
        spare_frames: int | None = None,
        streams: int = 1,
    ) -> int:
        """The bytes a FrameStackStorage of these dimensions allocates."""
        stack, frame_shape = observation_shape[0], observation_shape[1:]
        count = frame_count(
            capacity=capacity, stack=stack, frame_window=frame_window * streams, spare_frames=spare_frames
        )
        frame_bytes = int(np.prod(frame_shape, dtype=np.int64)) * np.dtype(observation_dtype).itemsize
        number_bytes = FRAME_NUMBER_DTYPE.itemsize
        # frames, reference counts and free list; two rows of frame numbers per transition
        return count * (frame_bytes + 2 * number_bytes) + 2 * capacity * stack * number_bytes

    @property
    def nbytes(self) -> int:
        return sum(
            array.nbytes
            for array in (self.frames, self.observation_frames, self.next_observation_frames, self.refcounts, self.free)
        )

    @property
    def live_frames(self) -> int:
        """Frames referenced by stored transitions."""
        return len(self.frames) - self.free_count

    # --- writing and reading -------------------------------------------------------------------
    def write(
        self, slots: slice | np.ndarray, observations: np.ndarray, next_observations: np.ndarray, stream: int = 0
    ) -> None:
        """Store K transitions of ``stream`` at ``slots``. Each frame is looked up in the stream's
        window, then stored if new; the frames of the transition a slot held are released only after
        its new frames are held, so frames the two share are never freed in between."""
        if not 0 <= stream < self.streams:
            raise ValueError(f"stream must be in [0, {self.streams}), got {stream}")
        observations = self._as_stacks(observations, "observations")
        next_observations = self._as_stacks(next_observations, "next_observations")
        slot_list = range(slots.start, slots.stop) if isinstance(slots, slice) else np.asarray(slots).tolist()
        if len(slot_list) != len(observations) or len(observations) != len(next_observations):
            raise ValueError(
                f"{len(slot_list)} slots for {len(observations)} observations and "
                f"{len(next_observations)} next observations"
            )
        for k, slot in enumerate(slot_list):
            observation_row = [self._acquire(frame, stream) for frame in observations[k]]
            next_row = [self._acquire(frame, stream) for frame in next_observations[k]]
            self._release(slot)
            self.observation_frames[slot] = observation_row
            self.next_observation_frames[slot] = next_row

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.gather(
            {
                "frames": self.frames,
                "observation_frames": self.observation_frames,
                "next_observation_frames": self.next_observation_frames,
            },
            indices,
        )

    def mirrored_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        self.changed_frames = []
        return (
            {"observation_frames": self.observation_frames, "next_observation_frames": self.next_observation_frames},
            {"frames": self.frames},
        )

    def take_changed_rows(self) -> dict[str, np.ndarray]:
        if not self.changed_frames:
            return {}
        rows = np.unique(np.asarray(self.changed_frames, dtype=np.int64))
        self.changed_frames.clear()
        return {"frames": rows}

    @staticmethod
    def gather(arrays: Mapping[str, ArrayT], indices: ArrayT) -> tuple[ArrayT, ArrayT]:
        """One gather per field: frames[rows of frame numbers] is [B, S, *frame_shape]."""
        frames = arrays["frames"]
        return frames[arrays["observation_frames"][indices]], frames[arrays["next_observation_frames"][indices]]

    def _as_stacks(self, observations: np.ndarray, name: str) -> np.ndarray:
        array = np.ascontiguousarray(observations, dtype=self.frames.dtype)  # CRCs hash the stored bytes
        if array.shape[1:] != (self.stack, *self.frame_shape):
            raise ValueError(
                f"{name} have shape {array.shape[1:]} per transition, expected {(self.stack, *self.frame_shape)}"
            )
        return array

    def _acquire(self, frame: np.ndarray, stream: int) -> int:
        """The number of a stored frame equal to ``frame`` (found in the stream's window) or of a new copy."""
        data = frame.tobytes()
        key = stream << 32 | zlib.crc32(data)
        number = self.window.get(key)
        if number is not None and self.refcounts[number] > 0 and self.frames[number].tobytes() == data:
            self.refcounts[number] += 1
            return number
        number = self._allocate()
        self.frames[number] = frame
        if self.changed_frames is not None:
            self.changed_frames.append(number)
        self.refcounts[number] = 1
        self._remember(key, number)
        return number

    def _remember(self, key: int, number: int) -> None:
        """Put a new frame in its stream's window (keys in it stay unique), forgetting the stream's
        oldest if that is full."""
        order = self.window_orders[key >> 32]
        if key in self.window:  # a CRC collision, or content stored again after its frame was freed
            order.remove((key, self.window[key]))
        elif len(order) == self.frame_window:
            del self.window[order.popleft()[0]]
        self.window[key] = number
        order.append((key, number))

    def _allocate(self) -> int:
        if self.free_count == 0:
            raise RuntimeError(
                f"replay frame store is full: {len(self.frames):,} frames for {len(self.observation_frames):,} "
                "transitions. Frame stacks need about one frame per transition plus one per episode in the "
                "buffer: if episodes are short, raise spare_frames; if frame_window is below num_envs * "
                "(n_step + stack + 2), raise it; if these observations do not share frames the way frame "
                "stacks (stack axis first) do, use stacked_frames=False (train.py: --frame-replay off). "
                "The buffer is unusable after this error."
            )
        self.free_count -= 1
        number = int(self.free[self.free_count])
        self.frames_used = max(self.frames_used, number + 1)
        return number

    def _release(self, slot: int) -> None:
        if self.observation_frames[slot, 0] < 0:  # never written
            return
        for number in (*self.observation_frames[slot].tolist(), *self.next_observation_frames[slot].tolist()):
            count = int(self.refcounts[number]) - 1
            self.refcounts[number] = count
            if count == 0:
                self.free[self.free_count] = number
                self.free_count += 1

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self, size: int) -> dict:
        """Views of the frames handed out so far, of the first ``size`` slots' frame numbers and of the
        free list (in order), plus the windows (stream by stream, each oldest first); reference counts
        are recounted on load."""
        entries = [pair for order in self.window_orders for pair in order]
        keys, numbers = zip(*entries) if entries else ((), ())
        return {
            "frame_count": len(self.frames),
            "frames": self.frames[: self.frames_used],
            "observation_frames": self.observation_frames[:size],
            "next_observation_frames": self.next_observation_frames[:size],
            "free_frames": self.free[: self.free_count],
            "window_crcs": np.array(keys, dtype=np.int64),
            "window_frames": np.array(numbers, dtype=FRAME_NUMBER_DTYPE),
        }

    def load_state_dict(self, state: dict, size: int) -> None:
        """Restore ``state_dict(size)`` of a storage with the same frame count, frame shape and dtype."""
        frames, rows, free, refcounts = self._check_state(state, size)
        keys, numbers = (
            np.asarray(entry(state, "window_crcs")).tolist(),
            np.asarray(entry(state, "window_frames")).tolist(),
        )
        self.frames[: len(frames)] = frames
        self.frames_used = len(frames)
        self.observation_frames[:size], self.next_observation_frames[:size] = rows
        self.observation_frames[size:] = self.next_observation_frames[size:] = -1
        self.refcounts[:] = refcounts
        self.free[: len(free)] = free
        self.free_count = len(free)
        self.window_orders = [deque() for _ in range(self.streams)]
        for key, number in zip(keys, numbers):
            self.window_orders[key >> 32].append((key, number))
        self.window = dict(zip(keys, numbers))  # a later duplicate key overrides an earlier one, as when written

    def _check_state(
        self, state: dict, size: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
        """The state's frames, rows and free list, and the reference counts they imply; ValueError
        unless they fit this storage and each other (the window is checked too)."""
        if "frame_count" not in state:
            raise ValueError(
                "replay state holds whole observations; this buffer stores stacked frames "
                "(build it with stacked_frames=False to load this state)"
            )
        count = len(self.frames)
        if check_integer(state, "frame_count") != count:
            raise ValueError(f"replay frame_count is {state['frame_count']}, this buffer holds {count} frames")
        used = min(len(np.asarray(entry(state, "frames"))), count)
        frames = check_array(state, "frames", dtype=self.frames.dtype, shape=(used, *self.frame_shape))
        rows = (
            check_array(state, "observation_frames", dtype=FRAME_NUMBER_DTYPE, shape=(size, self.stack)),
            check_array(state, "next_observation_frames", dtype=FRAME_NUMBER_DTYPE, shape=(size, self.stack)),
        )
        numbers = np.concatenate([row.ravel() for row in rows])
        if numbers.size and (numbers.min() < 0 or numbers.max() >= used):
            raise ValueError(f"replay frame numbers must lie in [0, {used}), the frames stored")
        refcounts = np.bincount(numbers, minlength=count)
        free = np.asarray(entry(state, "free_frames"))
        if free.dtype != FRAME_NUMBER_DTYPE or free.ndim != 1 or not _all_in_range(free, count):
            raise ValueError(f"replay free_frames must be {FRAME_NUMBER_DTYPE} frame numbers in [0, {count})")
        if np.unique(free).size != free.size or np.any(refcounts[free] > 0) or free.size != np.sum(refcounts == 0):
            raise ValueError("replay free_frames must list each unreferenced frame once, and only those")
        self._check_window(state)
        return frames, rows, free, refcounts.astype(FRAME_NUMBER_DTYPE)

    def _check_window(self, state: dict) -> None:
        numbers = np.asarray(entry(state, "window_frames"))
        keys = check_array(state, "window_crcs", dtype=np.dtype(np.int64), shape=numbers.shape)
        if (
            numbers.dtype != FRAME_NUMBER_DTYPE
            or numbers.ndim != 1
            or not _all_in_range(numbers, len(self.frames))
            or not _all_in_range(keys, self.streams << 32)
            or np.unique(keys).size != keys.size
            or np.bincount(keys >> 32, minlength=self.streams).max(initial=0) > self.frame_window
        ):
            raise ValueError(
                f"replay window must hold at most frame_window={self.frame_window} distinct CRC-32s per "
                f"stream ({self.streams}) and {FRAME_NUMBER_DTYPE} frame numbers in [0, {len(self.frames)})"
            )


def _all_in_range(array: np.ndarray, end: int) -> bool:
    """Whether every element lies in [0, end) (true for an empty array)."""
    return array.size == 0 or (array.min() >= 0 and array.max() < end)
