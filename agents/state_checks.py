"""Checks of a saved agent state (a checkpoint's, a model file's) against the live agent's parts,
made before anything is loaded: each raises ValueError with a one-line message saying which entry
does not fit and how, and leaves the agent untouched.

torch's own ``load_state_dict`` checks a network's keys and shapes, but it casts dtypes silently,
fails on a non-string key with an AttributeError, and an optimizer's moments of the wrong shape
or an exploration generator's malformed state are accepted, to fail at the first update, mid-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from dqn_family.replay.storage import check_generator_state

_ADAM_STATE_KEYS = {"step", "exp_avg", "exp_avg_sq"}


def describe(value: Any) -> str:
    """A tensor as dtype[shape], anything else by its type: never an unbounded repr."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    return type(value).__name__


def _name(key: Any) -> str:
    text = repr(key) if not isinstance(key, str) else key
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_tensors(state: Any, reference: Mapping[str, torch.Tensor], what: str) -> None:
    """``state`` must map exactly ``reference``'s names to finite tensors of the same shape and dtype."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{what} must be a dict of tensors, got {describe(state)}")
    odd = next((key for key in state if not isinstance(key, str)), None)
    if odd is not None:
        raise ValueError(f"{what} has a key that is not a string: {_name(odd)}")
    missing, unexpected = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"lacks {_name(missing[0])}" if missing else f"has an unexpected {_name(unexpected[0])}"
        raise ValueError(f"{what} {detail} ({len(missing)} missing, {len(unexpected)} unexpected entries)")
    for name, expected in reference.items():
        value = state[name]
        if (
            not isinstance(value, torch.Tensor)
            or value.shape != expected.shape
            or value.dtype != expected.dtype
            or value.is_sparse
        ):
            raise ValueError(f"{what} {_name(name)} is {describe(value)}, this run's is {describe(expected)}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{what} {_name(name)} holds NaN or infinite values")


def check_module_state(module: nn.Module, state: Any, what: str) -> None:
    """``state`` must fit ``module.state_dict()`` exactly (see :func:`check_tensors`)."""
    check_tensors(state, module.state_dict(), what)


def check_adam_state(optimizer: torch.optim.Optimizer, state: Any, what: str = "optimizer") -> None:
    """``state`` must be an Adam state_dict for this optimizer's parameters: the same groups and
    hyperparameters (only the learning rate may differ: a schedule moves it, within [0, this run's
    initial one]), and moments of each parameter's shape, finite, second moments >= 0."""
    if (
        not isinstance(state, Mapping)
        or not isinstance(state.get("param_groups"), list)
        or not isinstance(state.get("state"), Mapping)
    ):
        raise ValueError(f"{what} must be a dict with 'state' and 'param_groups', got {describe(state)}")
    live_groups, saved_groups = optimizer.param_groups, state["param_groups"]
    if len(saved_groups) != len(live_groups):
        raise ValueError(f"{what} has {len(saved_groups)} parameter groups, this run has {len(live_groups)}")
    parameters: list[torch.Tensor] = []
    for live, saved in zip(live_groups, saved_groups):
        _check_group(live, saved, len(parameters), what)
        parameters += live["params"]
    for index, moments in state["state"].items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(parameters):
            raise ValueError(f"{what} has state for parameter {_name(index)}, this run has {len(parameters)}")
        if not isinstance(moments, Mapping) or set(moments) != _ADAM_STATE_KEYS:
            raise ValueError(f"{what} state of parameter {index} must hold exactly {sorted(_ADAM_STATE_KEYS)}")
        parameter = parameters[index].detach()
        check_tensors(
            {k: moments[k] for k in ("exp_avg", "exp_avg_sq")},
            {"exp_avg": parameter, "exp_avg_sq": parameter},
            f"{what} parameter {index}",
        )
        step = moments["step"]
        if (
            not isinstance(step, torch.Tensor)
            or step.numel() != 1
            or not step.is_floating_point()
            or not (0 <= float(step) < float("inf"))
        ):
            raise ValueError(f"{what} parameter {index} step must be a finite scalar tensor >= 0, got {describe(step)}")
        if bool((moments["exp_avg_sq"] < 0).any()):
            raise ValueError(f"{what} parameter {index} exp_avg_sq holds negative values")


def _check_group(live: dict, saved: Any, first: int, what: str) -> None:
    if not isinstance(saved, Mapping):
        raise ValueError(f"{what} parameter group must be a dict, got {describe(saved)}")
    expected_params = list(range(first, first + len(live["params"])))
    if saved.get("params") != expected_params:
        raise ValueError(f"{what} parameter group must list parameters {first}..{expected_params[-1]}")
    lr = saved.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 <= lr <= live["lr"]:
        raise ValueError(f"{what} learning rate must be a number in [0, {live['lr']}], got {describe(lr)}")
    for key, value in live.items():
        if key in ("params", "lr") or key not in saved:
            continue  # a key added by a later torch version: load_state_dict keeps the default
        if not _same(saved[key], value):
            raise ValueError(f"{what} {key} is {_name(saved[key])}, this run's is {_name(value)}")


def _same(saved: Any, live: Any) -> bool:
    if isinstance(live, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(live) and all(map(_same, saved, live))
    return type(saved) is type(live) and saved == live


def check_torch_generator_state(state: Any, what: str) -> None:
    """``state`` must be a state of a CPU ``torch.Generator`` (probed on a fresh one)."""
    reference = torch.Generator().get_state()
    if not isinstance(state, torch.Tensor) or state.dtype != reference.dtype or state.shape != reference.shape:
        raise ValueError(f"{what} must be {describe(reference)}, got {describe(state)}")
    try:
        torch.Generator().set_state(state)
    except RuntimeError:
        raise ValueError(f"{what} is not a valid generator state") from None


def check_agent_state(
    *, q_network: nn.Module, target_network: nn.Module, optimizer: torch.optim.Optimizer, state: Any
) -> None:
    """A DQNAgent.state_dict() that fits these parts; the generator entries are optional."""
    if not isinstance(state, Mapping):
        raise ValueError(f"agent state must be a dict, got {describe(state)}")
    for key in ("q_network", "target_network", "optimizer"):
        if key not in state:
            raise ValueError(f"agent state has no {key!r}")
    check_module_state(q_network, state["q_network"], "q_network")
    check_module_state(target_network, state["target_network"], "target_network")
    check_adam_state(optimizer, state["optimizer"])
    if "rng" in state:
        check_generator_state(state["rng"], "agent rng", np.random.PCG64)
    if "noise_generator" in state:
        check_torch_generator_state(state["noise_generator"], "agent noise_generator")
