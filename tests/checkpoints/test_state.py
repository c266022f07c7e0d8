"""What a checkpoint may hold: numpy arrays become tensors and back without a copy or a change,
and the process-wide generators come back to exactly where they were."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dqn_family.checkpoints import (
    global_rng_state,
    set_global_rng_state,
    set_numpy_generator_state,
    to_arrays,
    to_storable,
)


def test_to_storable_to_arrays_round_trip_keeps_dtypes_values_and_structure():
    tree = {
        "f32": np.array([[0.5, -1.0]], dtype=np.float32),
        "u8": np.arange(4, dtype=np.uint8),
        "bool": np.array([True, False]),
        "i64": np.array([3, -4]),
        "f64": np.array([1e-300]),
        "scalar": np.float32(2.5),
        "nested": [{"n": 1}, ("s", None)],
    }
    stored = to_storable(tree)
    assert isinstance(stored["f32"], torch.Tensor) and stored["scalar"] == 2.5 and type(stored["scalar"]) is float
    back = to_arrays(stored)
    for key in ("f32", "u8", "bool", "i64", "f64"):
        assert back[key].dtype == tree[key].dtype and back[key].tobytes() == tree[key].tobytes()
    assert back["nested"] == [{"n": 1}, ("s", None)]


def test_to_storable_shares_memory_with_the_array():
    array = np.zeros(3, dtype=np.float32)
    stored = to_storable(array)
    array[1] = 7.0
    assert stored[1].item() == 7.0


def test_global_rng_state_restores_python_and_torch_draws():
    random.seed(1)
    torch.manual_seed(1)
    state = global_rng_state()
    first = (random.random(), random.gauss(0, 1), torch.rand(3))
    set_global_rng_state(state)
    again = (random.random(), random.gauss(0, 1), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_set_numpy_generator_state_restores_draws():
    generator = np.random.default_rng(5)
    state = generator.bit_generator.state
    first = generator.integers(0, 1000, size=5)
    set_numpy_generator_state(generator, state)
    np.testing.assert_array_equal(generator.integers(0, 1000, size=5), first)


@pytest.mark.parametrize("state", [{"bit_generator": "MT19937", "state": {}}, {"nonsense": 1}, "text", None])
def test_set_numpy_generator_state_rejects_malformed_state_and_keeps_generator(state):
    generator = np.random.default_rng(5)
    before = generator.bit_generator.state
    with pytest.raises(ValueError):
        set_numpy_generator_state(generator, state)
    assert generator.bit_generator.state == before
