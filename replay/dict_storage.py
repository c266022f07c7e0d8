"""Replay storage for dictionary observations (``DictStorage``): each key in arrays of its own.

A Dict observation (a vector, an image, a discrete state side by side) is stored key by key: the
observations and next observations of key k live in two arrays [capacity, *shape_k] of k's own
dtype, so images stay uint8 (house style 7) and Discrete state indices int64 next to float vectors.
The layout is plain data, key -> (shape, dtype), not a Gymnasium space (replay imports only numpy
and torch): ``agents.multi_input.replay_layout`` builds it from a space, without the action mask,
which the buffer keeps apart as the next state's legal actions.

It implements ``replay.storage.ObservationStorage`` with dicts of arrays where ArrayStorage has
arrays: ``write`` takes, and ``read`` and ``gather`` return, {key: [K, *shape_k]}. Its state is
``{"observation_parts": {key: array}, "next_observation_parts": {key: array}}``; the device mirror
sees its arrays as "observations/<key>" and "next_observations/<key>" (indexed by slot).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dqn_family.replay.storage import ArrayT, check_all_in_range, check_array, entry

# key -> (shape of one observation's part, dtype)
Layout = Mapping[str, tuple[tuple[int, ...], np.dtype]]
# The state_dict's entries (dicts key -> array [size, *shape]).
STATE_ENTRIES = ("observation_parts", "next_observation_parts")
# The device mirror's names of a key's arrays: prefix + key.
OBSERVATIONS, NEXT_OBSERVATIONS = "observations/", "next_observations/"


def checked_layout(layout: Layout) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``layout`` with tuple shapes and numpy dtypes; ValueError naming a key that cannot be stored."""
    if not layout:
        raise ValueError("a dictionary observation layout needs at least one key")
    checked = {}
    for key, (shape, dtype) in layout.items():
        if not isinstance(key, str):
            raise ValueError(f"observation key {key!r} is not a string")
        dtype = np.dtype(dtype)
        if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(f"observation key {key!r} has dtype {dtype}; replay stores numbers and bools")
        if not all(isinstance(size, (int, np.integer)) and size >= 0 for size in shape):
            raise ValueError(f"observation key {key!r} has shape {shape}; a shape is a tuple of sizes >= 0")
        checked[key] = (tuple(int(size) for size in shape), dtype)
    return checked


class DictStorage:
    """Observations and next observations of each key in arrays [capacity, *shape] of its dtype."""

    def __init__(self, *, capacity: int, layout: Layout) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.layout = checked_layout(layout)
        self.observations = {key: np.zeros((capacity, *shape), dtype) for key, (shape, dtype) in self.layout.items()}
        self.next_observations = {key: np.zeros_like(array) for key, array in self.observations.items()}

    @staticmethod
    def bytes_for(*, capacity: int, layout: Layout) -> int:
        """The bytes a DictStorage of these dimensions allocates."""
        return sum(
            2 * capacity * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            for shape, dtype in checked_layout(layout).values()
        )

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in (*self.observations.values(), *self.next_observations.values()))

    def write(
        self,
        slots: slice | np.ndarray,
        observations: Mapping[str, np.ndarray],
        next_observations: Mapping[str, np.ndarray],
        stream: int = 0,
    ) -> None:
        """Store K transitions' parts {key: [K, *shape]} at ``slots``; checked first, so a part
        missing or of the wrong shape raises ValueError before any slot changes. ``stream`` is ignored."""
        for what, parts in (("observations", observations), ("next_observations", next_observations)):
            missing = [key for key in self.layout if key not in parts]
            if missing:
                raise ValueError(f"{what} lack key(s) {missing}; this storage holds {list(self.layout)}")
            for key, (shape, _) in self.layout.items():
                if np.shape(parts[key])[1:] != shape:
                    raise ValueError(f"{what}[{key!r}] has shape {np.shape(parts[key])}, expected [K, *{shape}]")
        for key in self.layout:
            self.observations[key][slots] = observations[key]
            self.next_observations[key][slots] = next_observations[key]

    def read(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Fresh arrays {key: [B, *shape]} of the observations and next observations at ``indices``."""
        return (
            {key: array[indices] for key, array in self.observations.items()},
            {key: array[indices] for key, array in self.next_observations.items()},
        )

    def mirrored_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Every array is indexed by slot: {"observations/<key>": ..., "next_observations/<key>": ...}, {}."""
        named = {OBSERVATIONS + key: array for key, array in self.observations.items()}
        named.update({NEXT_OBSERVATIONS + key: array for key, array in self.next_observations.items()})
        return named, {}

    def take_changed_rows(self) -> dict[str, np.ndarray]:
        return {}

    @staticmethod
    def gather(arrays: Mapping[str, ArrayT], indices: ArrayT) -> tuple[dict[str, ArrayT], dict[str, ArrayT]]:
        """(observations, next observations) by key at ``indices`` from the mirrored arrays (numpy or
        torch); the other arrays in ``arrays`` (the buffer's actions, rewards, ...) are left alone."""
        return _by_prefix(arrays, OBSERVATIONS, indices), _by_prefix(arrays, NEXT_OBSERVATIONS, indices)

    def state_dict(self, size: int) -> dict:
        """The first ``size`` slots of each key (views, not copies)."""
        return {
            "observation_parts": {key: array[:size] for key, array in self.observations.items()},
            "next_observation_parts": {key: array[:size] for key, array in self.next_observations.items()},
        }

    def load_state_dict(self, state: dict, size: int) -> None:
        """Restore ``state_dict(size)``: every key of the layout, no other, each of its dtype and
        shape [size, *shape] (finite where floating); ValueError before anything changes."""
        if "observation_parts" not in state and ("observations" in state or "frame_count" in state):
            raise ValueError(
                "replay state holds single-array observations; this buffer stores dictionary observations "
                f"(keys {list(self.layout)})"
            )
        checked = {name: self._checked_parts(state, name, size) for name in STATE_ENTRIES}
        for key in self.layout:  # slots past `size` are never read
            self.observations[key][:size] = checked["observation_parts"][key]
            self.next_observations[key][:size] = checked["next_observation_parts"][key]

    def _checked_parts(self, state: dict, name: str, size: int) -> dict[str, np.ndarray]:
        parts = entry(state, name)
        if not isinstance(parts, dict):
            raise ValueError(f"replay {name} must be a dict of arrays by key, got {type(parts).__name__}")
        missing, others = [key for key in self.layout if key not in parts], len(set(parts) - set(self.layout))
        if missing or others:
            raise ValueError(
                f"replay {name} lacks key(s) {missing} and has {others} other key(s); "
                f"this buffer stores keys {list(self.layout)}"
            )
        checked = {}
        for key, (shape, dtype) in self.layout.items():
            label = f"{name}[{key!r}]"
            checked[key] = check_array({label: parts[key]}, label, dtype=dtype, shape=(size, *shape))
            if np.issubdtype(dtype, np.floating):  # a NaN would make every loss NaN
                check_all_in_range(checked[key], -np.inf, np.inf, label)
        return checked


def _by_prefix(arrays: Mapping[str, ArrayT], prefix: str, indices: ArrayT) -> dict[str, ArrayT]:
    """{key: arrays[prefix + key][indices]} for every array named with ``prefix``."""
    return {name[len(prefix) :]: array[indices] for name, array in arrays.items() if name.startswith(prefix)}
