"""A batch of observations as every layer handles it: one array [B, *shape], or, for dictionary
observations (agents.multi_input), a dict of arrays by key, each [B, *shape_k] in its own dtype (as
Gymnasium's vector envs batch a Dict space). The few operations the loop, the n-step windows, replay
and acting apply to a batch are written here once for both forms, so that none of them branches on
the form itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

# One batch of observations: an array [B, *shape], or {key: [B, *shape_k]}.
Observations = Any


def map_observations(function: Callable[..., Any], observations: Observations, *others: Observations) -> Observations:
    """``function`` applied to the array, or to each key's array (with ``others``' arrays of the
    same key as further arguments), keeping the form: a dict stays a dict by key."""
    if type(observations) is np.ndarray:  # the common case, without the Mapping ABC's check (n-step windows)
        return function(observations, *others)
    if isinstance(observations, Mapping):
        return {key: function(part, *(other[key] for other in others)) for key, part in observations.items()}
    return function(observations, *others)


def observation_count(observations: Observations) -> int:
    """B, the observations in a batch (``len`` of a dict would count its keys)."""
    if type(observations) is np.ndarray:  # the common case, without the Mapping ABC's check (every env step)
        return len(observations)
    if isinstance(observations, Mapping):
        return len(next(iter(observations.values())))
    return len(observations)


def take(observations: Observations, rows: Any) -> Observations:
    """The observations at ``rows`` (an index array, a bool mask or a slice), in the same form."""
    return map_observations(lambda part: np.asarray(part)[rows], observations)


def put(target: Observations, rows: Any, values: Observations) -> None:
    """``target[rows] = values``, key by key for dicts (``values`` in the same form as ``target``)."""
    if type(target) is not np.ndarray and isinstance(target, Mapping):
        for key, part in target.items():
            part[rows] = values[key]
    else:
        target[rows] = values


def as_tensors(observations: Observations, device: torch.device | str) -> Any:
    """The batch as torch tensors on ``device``, in the same form (numpy memory shared on the CPU)."""
    return map_observations(lambda part: torch.as_tensor(part, device=device), observations)


def stack(observations: Sequence[Observations]) -> Observations:
    """One batch from single observations (arrays, or dicts of arrays by key): [N, *shape] per key."""
    first = observations[0]
    if isinstance(first, Mapping):
        return {key: np.stack([np.asarray(one[key]) for one in observations]) for key in first}
    return np.stack([np.asarray(one) for one in observations])


def concatenate(batches: Sequence[Observations]) -> Observations:
    """One batch from several along the batch axis, key by key for dicts."""
    first = batches[0]
    if type(first) is not np.ndarray and isinstance(first, Mapping):
        return {key: np.concatenate([batch[key] for batch in batches]) for key in first}
    return np.concatenate(batches)


def one_batch(observation: Observations) -> Observations:
    """One env's observation as a batch of one, [1, *shape] per key (a Discrete state, a Python int, too)."""
    return map_observations(lambda part: np.asarray(part)[None], observation)
