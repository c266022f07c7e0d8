"""Q-networks: plain ``nn.Module``s mapping a batch of observations to one Q-value per action.

Any module with that contract can be used (``--network module:Factory``); it receives float32
observations of shape [B, *observation_shape] and returns Q-values of shape [B, n_actions].
"""

from __future__ import annotations

import importlib
import math
from typing import Callable

import torch
from torch import nn

from configs.errors import UserError

ACTIVATION_MODULES: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}

NetworkFactory = Callable[[tuple[int, ...], int], nn.Module]


class NetworkError(UserError):
    """A custom network that cannot be imported, built or used."""


class MLPQNetwork(nn.Module):
    """Flatten, then Linear-activation layers, then a linear layer to one Q-value per action."""

    def __init__(self, observation_shape: tuple[int, ...], n_actions: int, *,
                 hidden_sizes: tuple[int, ...] = (120, 84), activation: str = "relu") -> None:
        super().__init__()
        widths = [math.prod(observation_shape), *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), ACTIVATION_MODULES[activation]()]
        layers.append(nn.Linear(widths[-1], n_actions))
        self.layers = nn.Sequential(*layers)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.layers(observations.float())  # [B, n_actions]


def import_factory(spec: str) -> NetworkFactory:
    """The object named by ``'module:Name'`` (``Name`` may be dotted), imported from sys.path."""
    module_name, _, attribute = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise NetworkError(f"cannot import network {spec!r}: {error}") from None
    if not callable(target):
        raise NetworkError(f"network {spec!r} is not callable; give a class or function "
                           "taking (observation_shape, n_actions)")
    return target


def factory_spec(factory: NetworkFactory) -> str | None:
    """'module:QualName' for a factory that can be imported again later (None for lambdas etc.)."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def build_q_network(observation_shape: tuple[int, ...], n_actions: int, *, hidden_sizes: tuple[int, ...],
                    activation: str, network: str | NetworkFactory | None = None) -> nn.Module:
    """The MLP, or a user's network (checked to return [B, n_actions] on a dummy batch)."""
    if network is None:
        return MLPQNetwork(observation_shape, n_actions, hidden_sizes=hidden_sizes, activation=activation)
    factory = import_factory(network) if isinstance(network, str) else network
    name = network if isinstance(network, str) else repr(factory)
    try:
        module = factory(observation_shape, n_actions)
    except Exception as error:
        raise NetworkError(f"network {name} failed to build with (observation_shape={observation_shape}, "
                           f"n_actions={n_actions}): {error}") from None
    if not isinstance(module, nn.Module):
        raise NetworkError(f"network {name} returned {type(module).__name__}, not a torch.nn.Module")
    check_output_shape(module, observation_shape, n_actions, name)
    return module


def check_output_shape(module: nn.Module, observation_shape: tuple[int, ...], n_actions: int, name: str) -> None:
    probe = torch.zeros((2, *observation_shape))
    was_training = module.training
    try:
        with torch.no_grad():
            output = module.eval()(probe)  # eval mode: the probe must not touch e.g. BatchNorm statistics
    except Exception as error:
        raise NetworkError(f"network {name} failed on a batch of shape {tuple(probe.shape)}: {error}") from None
    finally:
        module.train(was_training)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, n_actions):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise NetworkError(f"network {name} must map [B, *obs_shape] to [B, {n_actions}] Q-values; "
                           f"for B=2 it returned {shape}")
