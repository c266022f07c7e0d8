"""Observation storage for the replay ring: the interface a ReplayBuffer stores observations
through, and ``ArrayStorage``, which keeps whole observations in two preallocated arrays.

A storage owns the observations and next observations of ``capacity`` transition slots; the
buffer owns everything else (actions, rewards, flags, discounts, write position, size, generator).
``replay.frames.FrameStackStorage`` is the other implementation: stacked frames stored once each.
Also here: the checks that both storages and the buffer apply to a state before loading it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from dqn_family.replay.observations import Observations, as_tensors

# What a batch's arrays are: numpy arrays (gathered on the host) or torch tensors (on a device).
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class ObservationStorage(Protocol):
    """What ReplayBuffer needs from an observation storage."""

    @property
    def nbytes(self) -> int:
        """Bytes its arrays take."""

    def write(
        self, slots: slice | np.ndarray, observations: Observations, next_observations: Observations, stream: int = 0
    ) -> None:
        """Store K transitions' observations [K, *obs_shape] at ``slots`` (K distinct slots); ``stream``
        names where they come from (FrameStackStorage's frame windows; whole observations ignore it)."""

    def read(self, indices: np.ndarray) -> tuple[Observations, Observations]:
        """Fresh arrays [B, *obs_shape] of the observations and next observations at ``indices``."""

    def state_dict(self, size: int) -> dict:
        """The first ``size`` slots' observations as plain arrays (views where possible) and ints."""

    def load_state_dict(self, state: dict, size: int) -> None:
        """Restore ``state_dict(size)``; checks everything first, ValueError leaves it unchanged."""

    def mirrored_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The arrays a device copy needs: (indexed by transition slot, others); from this call on,
        ``take_changed_rows`` reports the rows of the others that change."""

    def take_changed_rows(self) -> dict[str, np.ndarray]:
        """Rows of the non-slot mirrored arrays written since the last call (name -> row numbers)."""

    @staticmethod
    def gather(arrays: Mapping[str, ArrayT], indices: ArrayT) -> tuple[Observations, Observations]:
        """(observations, next observations) at ``indices`` from the mirrored arrays, numpy or torch."""


class ArrayStorage:
    """Whole observations and next observations, each in an array [capacity, *obs_shape]."""

    def __init__(self, *, capacity: int, observation_shape: tuple[int, ...], observation_dtype: np.dtype) -> None:
        self.observations = np.zeros((capacity, *observation_shape), dtype=observation_dtype)
        self.next_observations = np.zeros_like(self.observations)

    @staticmethod
    def bytes_for(*, capacity: int, observation_shape: tuple[int, ...], observation_dtype: np.dtype) -> int:
        """The bytes an ArrayStorage of these dimensions allocates."""
        return 2 * capacity * int(np.prod(observation_shape, dtype=np.int64)) * np.dtype(observation_dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.observations.nbytes + self.next_observations.nbytes

    def write(
        self, slots: slice | np.ndarray, observations: np.ndarray, next_observations: np.ndarray, stream: int = 0
    ) -> None:
        self.observations[slots] = observations
        self.next_observations[slots] = next_observations

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.observations[indices], self.next_observations[indices]

    def mirrored_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return {"observations": self.observations, "next_observations": self.next_observations}, {}

    def take_changed_rows(self) -> dict[str, np.ndarray]:
        return {}

    @staticmethod
    def gather(arrays: Mapping[str, ArrayT], indices: ArrayT) -> tuple[ArrayT, ArrayT]:
        return arrays["observations"][indices], arrays["next_observations"][indices]

    def state_dict(self, size: int) -> dict:
        return {"observations": self.observations[:size], "next_observations": self.next_observations[:size]}

    def load_state_dict(self, state: dict, size: int) -> None:
        if "observations" not in state and "frame_count" in state:
            raise ValueError(
                "replay state holds stacked frames; this buffer stores whole observations "
                "(build it with stacked_frames=True to load this state)"
            )
        shape = (size, *self.observations.shape[1:])
        observations = check_array(state, "observations", dtype=self.observations.dtype, shape=shape)
        next_observations = check_array(state, "next_observations", dtype=self.observations.dtype, shape=shape)
        if np.issubdtype(self.observations.dtype, np.floating):  # a NaN would make every loss NaN
            check_all_in_range(observations, -np.inf, np.inf, "observations")
            check_all_in_range(next_observations, -np.inf, np.inf, "next_observations")
        self.observations[:size] = observations  # slots past `size` are never read
        self.next_observations[:size] = next_observations


def fields_on_device(batch: Any, device: torch.device | str) -> dict[str, Any]:
    """A batch dataclass's fields as torch tensors on ``device`` (numpy memory is shared on the CPU);
    a field that is None stays None, a dict of arrays (dictionary observations) a dict of tensors.
    What Batch.to_torch and SequenceBatch.to_torch build from."""
    return {
        field.name: None if (value := getattr(batch, field.name)) is None else as_tensors(value, device)
        for field in dataclasses.fields(batch)
    }


def entry(state: Any, key: str) -> Any:
    """``state[key]``; ValueError if ``state`` is not a dict or lacks ``key`` (a state read from disk)."""
    if not isinstance(state, dict):
        raise ValueError(f"replay state must be a dict, got {type(state).__name__}")
    if key not in state:
        raise ValueError(f"replay state has no {key!r}")
    return state[key]


def check_array(state: dict, key: str, *, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``state[key]`` as an array, if it has this dtype and shape; else ValueError."""
    value = np.asarray(entry(state, key))
    if value.shape != tuple(shape) or value.dtype != dtype:
        raise ValueError(f"replay {key} is {value.dtype}{list(value.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    return value


def check_integer(state: dict, key: str) -> int:
    """``state[key]`` as an int, if it is an integer (not a bool); else ValueError."""
    value = entry(state, key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"replay {key} must be an integer, got {type(value).__name__}")
    return int(value)


def check_generator_state(state: Any, what: str, bit_generator: type = np.random.PCG64) -> None:
    """``state`` must be a state of ``bit_generator`` (probed on a fresh one); else ValueError."""
    probe = bit_generator()
    try:
        probe.state = state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        raise ValueError(f"{what} is not a valid {bit_generator.__name__} state") from None


def check_all_in_range(array: np.ndarray, low: float, high: float, what: str) -> None:
    """Every element of ``array`` finite and in [low, high]; else ValueError (true for an empty one)."""
    if array.size and not (np.isfinite(array).all() and array.min() >= low and array.max() <= high):
        raise ValueError(
            f"replay {what} must be finite" + (f" and lie in [{low:g}, {high:g}]" if np.isfinite(low) else "")
        )
