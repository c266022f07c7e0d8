"""State of a buffer with stacked-frame storage: a round trip restores what it samples and how it
goes on storing frames; a state that does not fit is refused before anything changes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.replay.frame_envs import feed, make_buffer

CAPACITY, WINDOW = 30, 3 * (3 + 4 + 2)


def filled(kind: str, *, seed: int = 0, vector_steps: int = 60):
    buffer = make_buffer(
        kind, capacity=CAPACITY, stacked_frames=True, seed=seed, frame_window=WINDOW, spare_frames=CAPACITY
    )
    feed([buffer], num_envs=3, n_step=3, vector_steps=vector_steps)
    return buffer


def sample(buffer):
    return buffer.sample(8, beta=0.5) if hasattr(buffer, "tree") else buffer.sample(8)


def assert_same_state(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == second[key].dtype and value.shape == second[key].shape, key
            assert value.tobytes() == second[key].tobytes(), key
        else:
            assert value == second[key], key


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_frame_buffer_load_state_dict_restores_samples_and_frame_sharing(kind):
    original = filled(kind)
    restored = make_buffer(
        kind, capacity=CAPACITY, stacked_frames=True, seed=99, frame_window=WINDOW, spare_frames=CAPACITY
    )
    restored.load_state_dict(copy.deepcopy(original.state_dict()))
    first, second = sample(original), sample(restored)
    for name, value in first.__dict__.items():
        if value is None:  # a field neither batch has (next_legal without masks)
            assert second.__dict__[name] is None, name
            continue
        assert value.tobytes() == second.__dict__[name].tobytes(), name
    assert restored.storage.refcounts.tobytes() == original.storage.refcounts.tobytes()
    # The same window and free list: more of the same stream is stored in the same frames.
    feed([original], num_envs=3, n_step=3, vector_steps=25)
    feed([restored], num_envs=3, n_step=3, vector_steps=25)
    assert_same_state(original.state_dict(), restored.state_dict())


def test_frame_buffer_state_dict_holds_views_of_frames_in_use():
    buffer = filled("uniform", vector_steps=4)
    state = buffer.state_dict()
    assert "observations" not in state and state["frame_count"] == len(buffer.storage.frames)
    assert len(state["frames"]) == buffer.storage.frames_used < state["frame_count"]
    assert np.shares_memory(state["frames"], buffer.storage.frames)
    assert state["observation_frames"].shape == (len(buffer), 4)


def drop_a_free_frame(state: dict) -> None:
    state["free_frames"] = state["free_frames"][1:]


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(frame_count=s["frame_count"] + 1), "frame_count is 96, this buffer holds 95 frames"),
        (lambda s: s.update(frames=s["frames"].astype(np.int16)), r"frames is int16"),
        (lambda s: s.update(observation_frames=s["observation_frames"] + 500), r"must lie in \[0, "),
        (
            lambda s: s.update(next_observation_frames=s["next_observation_frames"].astype(np.int64)),
            "next_observation_frames is int64",
        ),
        (drop_a_free_frame, "each unreferenced frame once"),
        (
            lambda s: s.update(window_frames=np.zeros(WINDOW + 1, np.int32), window_crcs=np.arange(WINDOW + 1)),
            f"at most frame_window={WINDOW}",
        ),
        (lambda s: s.pop("frame_count"), "holds whole observations"),
    ],
    ids=["frame count", "frame dtype", "frame number", "row dtype", "free list", "window", "no frames"],
)
def test_frame_buffer_load_state_dict_refuses_state_that_does_not_fit_and_changes_nothing(kind, change, message):
    # frames: 30 transitions + 30 spare + 27 window + 2 * 4 = 95
    target = filled(kind, seed=3, vector_steps=20)
    before = copy.deepcopy(target.state_dict())
    state = copy.deepcopy(filled(kind).state_dict())
    change(state)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert_same_state(target.state_dict(), before)


def test_whole_observation_buffer_refuses_a_frame_state():
    whole = make_buffer("uniform", capacity=CAPACITY, stacked_frames=False)
    with pytest.raises(ValueError, match="holds stacked frames"):
        whole.load_state_dict(filled("uniform").state_dict())
    assert len(whole) == 0
