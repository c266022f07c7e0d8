"""A user's recurrent network for the tests, importable as ``tests.recurrent.spy_nets:CountingNet``.

Its state counts the steps taken since it was last the initial state (S = 1), and every step it
takes is recorded, so a test can see exactly which state each action was chosen from. Q-values are
a linear function of the observation, so that the learner has parameters to update.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CountingNet(nn.Module):
    steps_seen: list[list[float]] = []  # per step() call, the states it was given (class-wide: the loop builds its own)
    start = 0.0  # the initial state's value

    def __init__(self, observation_shape: tuple[int, ...], n_actions: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(observation_shape), n_actions)
        self.state_size = 1

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.full((batch_size, 1), self.start)

    def step(self, observations: torch.Tensor, state_BS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        CountingNet.steps_seen.append(state_BS[:, 0].tolist())
        return self.linear(observations.flatten(1).float()), state_BS + 1

    def unroll(
        self, observations: torch.Tensor, state_BS: torch.Tensor, resets_TB: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = []
        for t in range(observations.shape[0]):
            if resets_TB is not None:
                state_BS = torch.where(resets_TB[t].unsqueeze(1), torch.full_like(state_BS, self.start), state_BS)
            q.append(self.linear(observations[t].flatten(1).float()))
            state_BS = state_BS + 1
        return torch.stack(q), state_BS


class CountingFromHundred(CountingNet):
    """A network whose initial state is not zeros: an episode starts from 100 (steps_seen is CountingNet's)."""

    start = 100.0


class NotRecurrent(nn.Module):
    def __init__(self, observation_shape: tuple[int, ...], n_actions: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(observation_shape), n_actions)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations.flatten(1).float())
