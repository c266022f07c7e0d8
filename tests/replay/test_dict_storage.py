"""replay.dict_storage.DictStorage: each key in its own array and dtype, written and read back by
slot (wraparound included), its size by hand, its state round trip and refusals (nothing changes),
and gathering from a device mirror's numpy or torch copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.replay.device import DeviceMirror
from dqn_family.replay.dict_storage import DictStorage

LAYOUT = {
    "frames": ((2, 3, 3), np.dtype(np.uint8)),
    "position": ((2,), np.dtype(np.float32)),
    "room": ((), np.dtype(np.int64)),
}


def transitions(count: int, first: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``count`` transitions numbered first, first + 1, ...: every part of transition i holds i (the
    next observation's i + 100), so a read shows which transition a slot holds."""
    numbers = np.arange(first, first + count)

    def parts(offset: int) -> dict[str, np.ndarray]:
        return {
            "frames": np.broadcast_to((numbers + offset)[:, None, None, None], (count, 2, 3, 3)).astype(np.uint8),
            "position": np.stack([numbers + offset, -(numbers + offset)], axis=1).astype(np.float32),
            "room": (numbers + offset).astype(np.int64),
        }

    return parts(0), parts(100)


def stored_numbers(storage: DictStorage, indices: np.ndarray) -> list[int]:
    """The transition number each slot holds, checked to agree across every key and both observations."""
    observations, next_observations = storage.read(indices)
    rooms = observations["room"]
    np.testing.assert_array_equal(observations["frames"][:, 1, 2, 0], rooms)
    np.testing.assert_array_equal(observations["position"], np.stack([rooms, -rooms], axis=1))
    np.testing.assert_array_equal(next_observations["room"], rooms + 100)
    return rooms.tolist()


def test_dict_storage_bytes_by_hand():
    # 2 arrays x capacity 4 per key: frames 18 x 1 byte, position 2 x 4 bytes, room 1 x 8 bytes
    expected = 2 * 4 * (18 * 1 + 2 * 4 + 1 * 8)
    assert DictStorage.bytes_for(capacity=4, layout=LAYOUT) == expected == 272
    assert DictStorage(capacity=4, layout=LAYOUT).nbytes == expected


def test_dict_storage_round_trip_keeps_each_keys_values_and_dtype():
    storage = DictStorage(capacity=4, layout=LAYOUT)
    observations, next_observations = transitions(3)
    storage.write(slice(0, 3), observations, next_observations)
    read_observations, read_next = storage.read(np.array([2, 0]))
    for key, (shape, dtype) in LAYOUT.items():
        assert read_observations[key].dtype == read_next[key].dtype == dtype
        assert read_observations[key].shape == (2, *shape)
        np.testing.assert_array_equal(read_observations[key], observations[key][[2, 0]])
        np.testing.assert_array_equal(read_next[key], next_observations[key][[2, 0]])


def test_dict_storage_wraps_around_at_the_slots_it_is_given():
    storage = DictStorage(capacity=3, layout=LAYOUT)
    storage.write(slice(0, 3), *transitions(3))  # transitions 0, 1, 2 in slots 0, 1, 2
    storage.write(np.array([2, 0]), *transitions(2, first=3))  # 3 -> slot 2, 4 -> slot 0 (ReplayBuffer.slots_for)
    assert stored_numbers(storage, np.arange(3)) == [4, 1, 3]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda parts: parts.pop("room"), r"observations lack key\(s\) \['room'\]"),
        (lambda parts: parts.update(position=np.zeros((2, 3), np.float32)), r"observations\['position'\] has shape"),
    ],
    ids=["missing_key", "wrong_shape"],
)
def test_dict_storage_write_refuses_bad_parts_before_changing_any_slot(change, message):
    storage = DictStorage(capacity=2, layout=LAYOUT)
    storage.write(slice(0, 2), *transitions(2))
    observations, next_observations = transitions(2, first=5)
    change(next_observations)
    with pytest.raises(ValueError, match=message):
        storage.write(slice(0, 2), observations, next_observations)
    assert stored_numbers(storage, np.arange(2)) == [0, 1]


def test_dict_storage_state_round_trip():
    storage = DictStorage(capacity=4, layout=LAYOUT)
    storage.write(slice(0, 3), *transitions(3, first=7))
    state = storage.state_dict(3)
    assert set(state) == {"observation_parts", "next_observation_parts"}
    assert state["observation_parts"]["frames"].dtype == np.uint8 and state["observation_parts"]["room"].shape == (3,)
    restored = DictStorage(capacity=4, layout=LAYOUT)
    restored.load_state_dict(state, 3)
    assert stored_numbers(restored, np.arange(3)) == [7, 8, 9]


def corrupt(state: dict, what: str) -> dict:
    parts = state["observation_parts"]
    if what == "missing_key":
        del parts["room"]
    elif what == "extra_key":
        parts["intruder"] = parts["room"]
    elif what == "wrong_dtype":
        parts["frames"] = parts["frames"].astype(np.float32)
    elif what == "wrong_shape":
        parts["position"] = parts["position"][:2]
    elif what == "nan":
        parts["position"] = np.where(np.arange(2) == 0, np.nan, parts["position"]).astype(np.float32)
    elif what == "not_a_dict":
        state["observation_parts"] = np.zeros(3)
    elif what == "no_entry":
        del state["next_observation_parts"]
    elif what == "single_array_state":
        state = {"observations": np.zeros((3, 4), np.float32), "next_observations": np.zeros((3, 4), np.float32)}
    return state


@pytest.mark.parametrize(
    "what, message",
    [
        ("missing_key", r"observation_parts lacks key\(s\) \['room'\] and has 0 other"),
        ("extra_key", r"lacks key\(s\) \[\] and has 1 other key"),
        ("wrong_dtype", r"observation_parts\['frames'\] is float32\[3, 2, 3, 3\], expected uint8\[3, 2, 3, 3\]"),
        ("wrong_shape", r"observation_parts\['position'\] is float32\[2, 2\], expected float32\[3, 2\]"),
        ("nan", r"observation_parts\['position'\] must be finite"),
        ("not_a_dict", "observation_parts must be a dict of arrays by key, got ndarray"),
        ("no_entry", "replay state has no 'next_observation_parts'"),
        ("single_array_state", "holds single-array observations; this buffer stores dictionary observations"),
    ],
)
def test_dict_storage_load_refuses_a_bad_state_and_changes_nothing(what, message):
    source = DictStorage(capacity=4, layout=LAYOUT)
    source.write(slice(0, 3), *transitions(3, first=7))
    state = corrupt(source.state_dict(3), what)
    target = DictStorage(capacity=4, layout=LAYOUT)
    target.write(slice(0, 3), *transitions(3))
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state, 3)
    assert stored_numbers(target, np.arange(3)) == [0, 1, 2]


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "at least one key"),
        ({"name": ((3,), np.dtype(object))}, "key 'name' has dtype object"),
        ({"vector": ((-1,), np.float32)}, r"key 'vector' has shape \(-1,\)"),
        ({"vector": ((2.5,), np.float32)}, r"key 'vector' has shape \(2.5,\)"),
    ],
    ids=["empty", "object_dtype", "negative_size", "float_size"],
)
def test_dict_storage_refuses_a_layout_it_cannot_store(layout, message):
    with pytest.raises(ValueError, match=message):
        DictStorage(capacity=2, layout=layout)


def test_dict_storage_gather_from_mirrored_arrays_numpy_and_torch_equals_read():
    storage = DictStorage(capacity=4, layout=LAYOUT)
    storage.write(slice(0, 4), *transitions(4))
    slot_arrays, shared_arrays = storage.mirrored_arrays()
    assert shared_arrays == {} and storage.take_changed_rows() == {}
    names = [f"{kind}/{key}" for kind in ("observations", "next_observations") for key in LAYOUT]
    assert sorted(slot_arrays) == sorted(names)
    indices = np.array([3, 1, 1])
    expected_observations, expected_next = storage.read(indices)
    with_buffer_fields = {**slot_arrays, "actions": np.zeros(4, np.int64)}  # what a ReplayBuffer adds: left alone
    observations, next_observations = DictStorage.gather(with_buffer_fields, indices)
    mirror = DeviceMirror(slot_arrays=slot_arrays, shared_arrays=shared_arrays, capacity=4, device="cpu")
    torch_observations, torch_next = DictStorage.gather(mirror.arrays, torch.from_numpy(indices))
    for key in LAYOUT:
        np.testing.assert_array_equal(observations[key], expected_observations[key])
        np.testing.assert_array_equal(next_observations[key], expected_next[key])
        np.testing.assert_array_equal(torch_observations[key].numpy(), expected_observations[key])
        np.testing.assert_array_equal(torch_next[key].numpy(), expected_next[key])
        assert torch_observations[key].dtype == torch.from_numpy(expected_observations[key]).dtype
