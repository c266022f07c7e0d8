"""Batch.weights on the uniform ReplayBuffer: importance weights of 1, None kept by to_torch.
(Kept apart from test_buffer.py, which is maintained elsewhere.)"""

import numpy as np
import torch

from dqn_family.replay import Batch, ReplayBuffer


def filled_buffer(count: int) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity=4, observation_shape=(1,), observation_dtype=np.float32, seed=0)
    buffer.add(
        np.zeros((count, 1)),
        np.arange(count),
        np.ones(count),
        np.zeros((count, 1)),
        np.zeros(count, bool),
        np.zeros(count, bool),
        0.99,
    )
    return buffer


def test_replay_buffer_sample_gives_unit_weights():
    weights = filled_buffer(3).sample(5).weights
    assert weights.dtype == np.float32 and weights.tolist() == [1.0] * 5


def test_batch_weights_default_to_none_and_stay_none_in_to_torch():
    batch = Batch(
        observations=np.zeros((2, 1), np.float32),
        actions=np.zeros(2, np.int64),
        rewards=np.zeros(2, np.float32),
        next_observations=np.zeros((2, 1), np.float32),
        terminated=np.zeros(2, np.float32),
        discounts=np.ones(2, np.float32),
        indices=np.arange(2),
    )
    assert batch.weights is None
    assert batch.to_torch("cpu").weights is None


def test_batch_to_torch_converts_weights():
    weights = filled_buffer(1).sample(3).to_torch("cpu").weights
    assert torch.equal(weights, torch.ones(3))
