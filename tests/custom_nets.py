"""A user's own Q-network, importable as ``tests.custom_nets:BranchyQNet``.

Its forward pass branches on the data (plain Python control flow, as dynamic PyTorch allows):
an all-zero batch goes through a different head than any other batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BranchyQNet(nn.Module):
    def __init__(self, observation_shape: tuple[int, ...], n_actions: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(observation_shape), 16), nn.Tanh())
        self.head = nn.Linear(16, n_actions)
        self.zero_head = nn.Linear(16, n_actions)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        features_BH = self.body(observations.float())
        if observations.abs().sum() > 0:
            return self.head(features_BH)  # [B, n_actions]
        return self.zero_head(features_BH)


class PlainQNet(nn.Module):
    """A user's network without data-dependent control flow: torch.export can trace it."""

    def __init__(self, observation_shape: tuple[int, ...], n_actions: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(observation_shape), 16), nn.Tanh(), nn.Linear(16, n_actions)
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.layers(observations.float())
