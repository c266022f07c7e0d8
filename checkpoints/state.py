"""Turning training state into what a checkpoint may hold, and back.

A checkpoint holds only tensors, numbers, strings, None, lists, tuples and dicts: what
``torch.load(weights_only=True)`` rebuilds without running code. numpy arrays become tensors
sharing their memory (no copy while saving); numpy generator states are already plain dicts of
ints and strings. The process-wide generators (Python's ``random`` and torch's) are captured here;
each object that owns a generator (agent, replay buffer) puts its state in its own state_dict.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def to_storable(tree: Any) -> Any:
    """``tree`` with every numpy array made a tensor (sharing memory) and numpy scalars made Python numbers."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree))
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {key: to_storable(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_storable(value) for value in tree)
    return tree


def to_arrays(tree: Any) -> Any:
    """The inverse for loading: every tensor in ``tree`` made a numpy array."""
    if isinstance(tree, torch.Tensor):
        try:
            return tree.numpy()
        except (TypeError, RuntimeError) as error:  # bf16, or a tensor that requires grad: not a stored array
            raise ValueError(f"it holds a tensor that is not a plain array ({tree.dtype})") from error
    if isinstance(tree, dict):
        return {key: to_arrays(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_arrays(value) for value in tree)
    return tree


def global_rng_state() -> dict[str, Any]:
    """The states of Python's ``random`` and torch's global generators (CUDA's too, once in use)."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def check_global_rng_state(state: Any) -> None:
    """ValueError unless ``state`` is a :func:`global_rng_state` this process can restore; probed
    on fresh generators, so nothing process-wide changes."""
    if not isinstance(state, dict) or "python" not in state or "torch" not in state:
        raise ValueError("the global generator states must be a dict with 'python' and 'torch'")
    python = state["python"]
    if not isinstance(python, (list, tuple)) or len(python) != 3:
        raise ValueError("the Python random state must be (version, internal state, gauss_next)")
    version, internal, gauss_next = python
    if not (isinstance(internal, (list, tuple)) and all(isinstance(word, int) for word in internal)):
        raise ValueError("the Python random state must be a sequence of integers")
    if gauss_next is not None and not isinstance(gauss_next, float):
        raise ValueError("the Python random state's gauss_next must be a float or None")
    try:
        random.Random().setstate((version, tuple(internal), gauss_next))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("the Python random state is not one Python's generator can take") from None
    reference = torch.get_rng_state()
    torch_state = state["torch"]
    if (
        not isinstance(torch_state, torch.Tensor)
        or torch_state.dtype != reference.dtype
        or torch_state.shape != reference.shape
    ):
        raise ValueError("the torch generator state must be a uint8 tensor of the CPU generator's size")
    try:
        torch.Generator().set_state(torch_state)
    except RuntimeError:
        raise ValueError("the torch generator state is not valid") from None
    cuda_states = state.get("torch_cuda")
    if cuda_states is not None and not (
        isinstance(cuda_states, (list, tuple))
        and all(isinstance(s, torch.Tensor) and s.dtype == torch.uint8 and s.ndim == 1 for s in cuda_states)
    ):
        raise ValueError("the CUDA generator states must be a list of uint8 tensors")


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`global_rng_state`, once :func:`check_global_rng_state` passes (ValueError if not).

    CUDA states are restored only where the same number of GPUs exists; a run resumed on the CPU
    draws nothing from them.
    """
    check_global_rng_state(state)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("torch_cuda")
    if cuda_states is not None and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def set_numpy_generator_state(generator: np.random.Generator, state: Any) -> None:
    """Restore ``generator.bit_generator.state``, checking it first (ValueError if malformed)."""
    probe = type(generator.bit_generator)()
    try:
        probe.state = state
    except (TypeError, KeyError, AttributeError, ValueError, OverflowError) as error:
        raise ValueError(f"malformed numpy generator state ({type(error).__name__})") from None
    generator.bit_generator.state = state
