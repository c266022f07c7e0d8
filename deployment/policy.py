"""The module that is exported: a Q-network in evaluation mode wrapped to return greedy actions too.

The Q-network itself converts raw observations (uint8 frames scaled to [0, 1], MinAtar's bool
grids, Discrete state indices one-hot encoded), so the exported graph takes exactly what the env
gives. Evaluation mode makes noisy layers use their mean weights (agents/layers.py: no noise) and
freezes anything like BatchNorm; C51 and QR-DQN heads return their expected values (the network's
``forward``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ObservationSpec:
    """What the exported graph takes: a batch [B, *shape] of ``dtype`` (the env's own), and for
    Discrete observations the number of states (the indices are int64 of shape [B])."""

    shape: tuple[int, ...]
    dtype: str
    states: int | None = None

    def example(self, batch: int = 2) -> torch.Tensor:
        """A batch of valid observations (zeros) to trace the graph with."""
        return torch.zeros((batch, *self.shape), dtype=torch.from_numpy(np.zeros(0, self.dtype)).dtype)


class GreedyPolicy(nn.Module):
    """observations [B, *obs_shape] -> (greedy actions int64 [B], Q-values float32 [B, A])."""

    def __init__(self, q_network: nn.Module) -> None:
        super().__init__()
        self.q_network = copy.deepcopy(q_network).cpu().eval().requires_grad_(False)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_BA = self.q_network(observations).float()
        return q_BA.argmax(dim=1), q_BA
