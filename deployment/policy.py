"""The module that is exported: a Q-network in evaluation mode wrapped to return greedy actions too.

The Q-network itself converts raw observations (uint8 frames scaled to [0, 1], MinAtar's bool
grids, Discrete state indices one-hot encoded), so the exported graph takes exactly what the env
gives. Evaluation mode makes noisy layers use their mean weights (agents/layers.py: no noise) and
freezes anything like BatchNorm; C51 and QR-DQN heads return their expected values (the network's
``forward``). A recurrent Q-network (agents.recurrent) is exported as one acting step: the
observations and the recurrent state go in, the greedy actions, the Q-values and the next state
come out; a player starts each episode from the network's initial state (written in the sidecar)
and feeds each next state back. A run that acted with action masks (--action-mask) is exported
with one more input, ``action_mask`` (bool [B, A], True where legal, last): the greedy action is
the argmax over the legal actions; the Q-values stay the network's own. A multi-input network
(dictionary observations, agents.multi_input) takes one input per key, in key order
(``PositionalInputs``), each [B, *shape_k] in its own dtype, before the mask.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dqn_family.agents.masks import masked_q
from dqn_family.agents.multi_input import ObservationPart, PositionalInputs, example_parts
from dqn_family.agents.recurrent import as_recurrent, is_recurrent


@dataclass(frozen=True)
class ObservationSpec:
    """What the exported graph takes: a batch [B, *shape] of ``dtype`` (the env's own), and for
    Discrete observations the number of states (the indices are int64 of shape [B]); for a
    recurrent network also its state, float32 [B, state_size]; for a run with action masks the
    mask, bool [B, action_mask] (the number of actions). With ``parts`` (dictionary observations,
    agents.multi_input.input_parts) one input per key instead of the observations, in key order;
    ``shape`` and ``dtype`` are then unused."""

    shape: tuple[int, ...]
    dtype: str
    states: int | None = None
    state_size: int | None = None
    action_mask: int | None = None
    parts: dict[str, ObservationPart] | None = None

    def example(self, batch: int = 2) -> torch.Tensor:
        """A batch of valid observations (zeros) to trace the graph with."""
        return torch.zeros((batch, *self.shape), dtype=torch.from_numpy(np.zeros(0, self.dtype)).dtype)

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        """Every input of the graph: the observations, the recurrent state (zeros) if there is one,
        and the action mask (all legal) if there is one."""
        inputs = [self.example(batch)] if self.parts is None else list(example_parts(self.parts, batch))
        if self.state_size is not None:
            inputs.append(torch.zeros((batch, self.state_size)))
        if self.action_mask is not None:
            inputs.append(torch.ones((batch, self.action_mask), dtype=torch.bool))
        return tuple(inputs)


class GreedyPolicy(nn.Module):
    """observations [B, *obs_shape] (and an action mask, bool [B, A]) -> (greedy actions int64 [B],
    Q-values float32 [B, A])."""

    def __init__(self, q_network: nn.Module) -> None:
        super().__init__()
        self.q_network = copy.deepcopy(q_network).cpu().eval().requires_grad_(False)

    def forward(
        self, observations: torch.Tensor, legal_BA: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q_BA = self.q_network(observations).float()
        return masked_q(q_BA, legal_BA).argmax(dim=1), q_BA


class RecurrentGreedyPolicy(nn.Module):
    """(observations [B, *obs_shape], state float32 [B, S][, action mask bool [B, A]]) -> (greedy
    actions int64 [B], Q-values float32 [B, A], next state float32 [B, S]): one step of a recurrent
    Q-network."""

    def __init__(self, q_network: nn.Module) -> None:
        super().__init__()
        self.q_network = copy.deepcopy(q_network).cpu().eval().requires_grad_(False)

    def forward(
        self, observations: torch.Tensor, state_BS: torch.Tensor, legal_BA: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        q_BA, next_BS = as_recurrent(self.q_network).step(observations, state_BS)
        q_BA = q_BA.float()
        return masked_q(q_BA, legal_BA).argmax(dim=1), q_BA, next_BS.float()


def greedy_policy(q_network: nn.Module, keys: Sequence[str] | None = None) -> nn.Module:
    """The module that is exported for ``q_network``: one step if it is recurrent, else a batch; with
    ``keys`` (dictionary observations) taking one input per key, in that order, then the mask."""
    policy = RecurrentGreedyPolicy(q_network) if is_recurrent(q_network) else GreedyPolicy(q_network)
    return policy if keys is None else PositionalInputs(policy, keys)


def observation_spec(
    q_network: nn.Module,
    shape: tuple[int, ...],
    dtype: str,
    states: int | None,
    action_mask: int | None = None,
    parts: dict[str, ObservationPart] | None = None,
) -> ObservationSpec:
    """The exported graph's inputs for ``q_network`` on an env with these observations (and, for a
    run with action masks, this many actions; for dictionary observations, these parts)."""
    state_size = as_recurrent(q_network).state_size if is_recurrent(q_network) else None
    return ObservationSpec(shape, dtype, states, state_size, action_mask, parts)


def initial_state(q_network: nn.Module) -> list[float] | None:
    """A recurrent network's state at an episode's start (one row, as floats), else None."""
    if not is_recurrent(q_network):
        return None
    with torch.no_grad():
        return [float(value) for value in as_recurrent(q_network).initial_state(1)[0].cpu()]
