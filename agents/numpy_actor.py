"""Greedy actions for the default MLP Q-network in numpy, for acting on the CPU.

A torch forward of one observation through a small MLP costs ~30 us, almost all of it dispatch
overhead for a dozen tiny ops; the same matrix products in numpy take a few microseconds. The
numpy arrays are views of the torch parameters (shared memory, no copies), so they follow every
optimizer step and target load automatically, as long as parameters are updated in place (they
are: Adam and ``load_state_dict`` both write into the existing tensors).

Only plain networks are supported (MLP torso with ReLU or tanh, linear or dueling head giving Q,
C51 or quantile outputs, no noisy layers); anything else keeps the torch forward. Discrete
observations (state indices, one-hot in the torch network) take column s of the first weight
matrix instead of multiplying by a one-hot vector: the same numbers, since every other term is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from dqn_family.agents.masks import check_legal, masked_argmax_numpy
from dqn_family.agents.networks import MLPQNetwork, OneHot

_ACTIVATIONS: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Tanh: lambda x: np.tanh(x, out=x),
}


class GreedyPolicy(Protocol):
    """observations [B, *obs_shape] (and optionally an action mask, bool [B, A]) -> greedy actions [B]."""

    def __call__(self, observations: np.ndarray, legal: np.ndarray | None = None) -> np.ndarray: ...


def numpy_greedy_policy(network: nn.Module) -> GreedyPolicy | None:
    """The greedy policy as a function (``GreedyPolicy``), or None if unsupported. With a mask it
    takes the argmax over each row's legal actions, and raises ValueError for a row with none."""
    if not isinstance(network, MLPQNetwork) or any(p.device.type != "cpu" for p in network.parameters()):
        return None
    one_hot = isinstance(network.torso[0], OneHot)
    layers = list(network.torso)[1:]  # skip Flatten or OneHot
    # Column layout, x [features, B]: W [out, in] @ x needs no transposed copy of W, and for one
    # observation it is a matrix-vector product (about half the cost of x @ W.T in numpy).
    hidden: list[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]] = []
    for linear, activation in zip(layers[0::2], layers[1::2]):
        linear_arrays = _linear_arrays(linear)
        if linear_arrays is None or type(activation) not in _ACTIVATIONS:
            return None
        hidden.append((*linear_arrays, _ACTIVATIONS[type(activation)]))
    advantage = _linear_arrays(network.advantage)
    value = None if network.value is None else _linear_arrays(network.value)
    if advantage is None or (network.value is not None and value is None):
        return None
    advantage_w, advantage_b = advantage
    n_actions, num_outputs, output = network.n_actions, network.num_outputs, network.output
    support = _view(network.support) if output == "c51" else None

    def greedy(observations: np.ndarray, legal: np.ndarray | None = None) -> np.ndarray:
        if legal is not None:
            check_legal(legal, len(observations), n_actions)
        if one_hot:  # W @ one_hot(s) is column s of W
            (weight, bias, activation), rest = hidden[0], hidden[1:]
            x = weight[:, observations]
            x += bias
            activation(x)
        else:
            x, rest = observations.reshape(len(observations), -1).T.astype(np.float32, copy=False), hidden
        for weight, bias, activation in rest:
            x = weight @ x
            x += bias
            activation(x)
        out = advantage_w @ x
        out += advantage_b
        if value is None and num_outputs == 1:  # a plain head outputs Q itself, [A, B]
            return out.argmax(axis=0) if legal is None else masked_argmax_numpy(out.T, legal)
        out_BAK = out.T.reshape(-1, n_actions, num_outputs)
        if value is not None:
            out_BAK = (value[0] @ x + value[1]).T[:, None, :] + out_BAK - out_BAK.mean(axis=1, keepdims=True)
        if output == "c51":
            logits = out_BAK - out_BAK.max(axis=2, keepdims=True)
            probs = np.exp(logits)
            q_BA = (probs * support).sum(axis=2) / probs.sum(axis=2)
        else:
            q_BA = out_BAK.mean(axis=2)  # K = 1 for plain Q; the quantiles' mean for QR
        return masked_argmax_numpy(q_BA, legal)

    return greedy


def _linear_arrays(layer: nn.Module) -> tuple[np.ndarray, np.ndarray] | None:
    """(weight [out, in], bias [out, 1]) of a plain nn.Linear, as views; None for any other layer."""
    if type(layer) is not nn.Linear:
        return None
    return _view(layer.weight), _view(layer.bias)[:, None]


def _view(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy()  # shares memory with the parameter on the CPU
