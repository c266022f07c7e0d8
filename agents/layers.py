"""Factorised Gaussian noisy linear layer (Fortunato et al. 2018, "Noisy Networks for Exploration").

    y = (mu_w + sigma_w * eps_w) x + (mu_b + sigma_b * eps_b),
    eps_w = f(eps_out) f(eps_in)^T,  eps_b = f(eps_out),  f(x) = sign(x) sqrt(|x|)

In training mode the layer uses the current noise sample (redrawn by ``reset_noise``); in eval
mode it uses the mean weights only, so evaluation is deterministic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NoisyLinear(nn.Module):
    # Buffers (register_buffer): the current noise sample's factors.
    eps_in: torch.Tensor  # [in_features]
    eps_out: torch.Tensor  # [out_features]

    def __init__(self, in_features: int, out_features: int, *, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))
        self.generator: torch.Generator | None = None  # set by the agent for seeded noise
        self.reset_noise()

    @staticmethod
    def _scaled(noise: torch.Tensor) -> torch.Tensor:
        return noise.sign() * noise.abs().sqrt()

    @torch.no_grad()
    def reset_noise(self) -> None:
        device = self.eps_in.device
        self.eps_in.copy_(self._scaled(torch.randn(self.in_features, generator=self.generator)).to(device))
        self.eps_out.copy_(self._scaled(torch.randn(self.out_features, generator=self.generator)).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        bias = self.bias_mu + self.bias_sigma * self.eps_out
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def reset_noise(module: nn.Module) -> None:
    """Redraw the noise of every NoisyLinear inside ``module`` (a no-op without any)."""
    for layer in module.modules():
        if isinstance(layer, NoisyLinear):
            layer.reset_noise()


def seed_noise(module: nn.Module, generator: torch.Generator) -> None:
    """Make every NoisyLinear inside ``module`` draw its noise from ``generator``."""
    for layer in module.modules():
        if isinstance(layer, NoisyLinear):
            layer.generator = generator
