"""A replay buffer with stacked-frame storage goes through a checkpoint file (to_storable,
torch.save, torch.load(weights_only=True), to_arrays) and comes back sampling the same batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.checkpoints import to_arrays, to_storable
from tests.replay.frame_envs import feed, make_buffer


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_stacked_frame_replay_state_survives_a_checkpoint_file(kind, tmp_path):
    options = dict(capacity=30, stacked_frames=True, frame_window=27, spare_frames=30)
    original = make_buffer(kind, **options)
    feed([original], num_envs=3, n_step=3, vector_steps=60)
    torch.save({"replay": to_storable(original.state_dict())}, tmp_path / "state.pt")
    restored = make_buffer(kind, **options, seed=5)
    restored.load_state_dict(to_arrays(torch.load(tmp_path / "state.pt", weights_only=True)["replay"]))
    first, second = [
        buffer.sample(8, beta=0.5) if kind == "prioritized" else buffer.sample(8) for buffer in (original, restored)
    ]
    for name, value in first.__dict__.items():
        if value is None:  # a field the buffer does not keep (next_legal without action masks)
            assert second.__dict__[name] is None, name
            continue
        assert isinstance(value, np.ndarray) and value.tobytes() == second.__dict__[name].tobytes(), name
