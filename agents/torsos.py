"""Convolutional torsos for pixel observations, and picking a torso from the observation shape.

- ``nature_cnn`` (Mnih et al. 2015, "Human-level control through deep reinforcement learning",
  Methods): frames [B, C, H, W] (uint8 0..255, scaled to [0, 1] here), 32 8x8 filters stride 4,
  64 4x4 stride 2, 64 3x3 stride 1, each with ReLU; the paper's 512-unit layer is
  ``hidden_sizes`` (its Atari presets set [512]).
- ``minatar_cnn`` (Young & Tian 2019, "MinAtar", section 4): MinAtar's [B, 10, 10, C] boolean
  channels-last grids, 16 3x3 filters stride 1 with ReLU; the paper's 128-unit layer is
  ``hidden_sizes`` (its MinAtar presets set [128]).
- ``board_cnn``: board-game planes [B, H, W, C] channels-last (PettingZoo's classic boards, own
  pieces then the other's), 64 4x4 filters stride 1 with ReLU. Every 4x4 window of the board is
  one filter position, so each line of four (row, column or diagonal: the winning lines of connect
  four) lies whole inside the field of one unit; the MinAtar CNN's 3x3 filters see at most three.

Observations reach the network in their stored dtype (uint8 or bool); converting here keeps
replay and vector-env batches small.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

_MIN_NATURE_SIDE = 36  # the three Nature convolutions need at least 36x36 pixels
_BOARD_KERNEL = 4  # board_cnn's filter side: one line of four fits in a filter


def choose_torso(observation_shape: tuple[int, ...], torso: str) -> str:
    """The torso to build: ``torso`` itself, or for 'auto' the one the shape calls for: frames
    [C, H, W] with few channels (C <= 16) and H, W >= 36 get the Nature CNN; grids [H, W, C] with
    H, W <= 20 and fewer channels than rows and columns (MinAtar's 10x10xC) the MinAtar CNN;
    everything else (vectors, channels-last images) the MLP."""
    if torso != "auto":
        return torso
    if len(observation_shape) != 3:
        return "mlp"
    first, second, last = observation_shape
    if first <= 16 and min(second, last) >= _MIN_NATURE_SIDE:
        return "nature_cnn"
    if max(first, second) <= 20 and last < min(first, second):
        return "minatar_cnn"
    return "mlp"


def check_torso(observation_shape: tuple[int, ...], torso: str) -> str | None:
    """Why ``torso`` cannot take this observation shape, or None when it can."""
    if torso in ("nature_cnn", "minatar_cnn", "board_cnn") and len(observation_shape) != 3:
        return f"torso {torso} needs 3-D observations, got shape {observation_shape}; --torso mlp takes any shape"
    if torso == "nature_cnn" and min(observation_shape[1:]) < _MIN_NATURE_SIDE:
        return (
            f"torso nature_cnn needs [C, H, W] frames with H, W >= {_MIN_NATURE_SIDE}, "
            f"got shape {observation_shape}; --torso mlp takes any shape"
        )
    if torso == "minatar_cnn" and not (
        3 <= min(observation_shape[:2]) and observation_shape[2] < min(observation_shape[:2])
    ):
        return (
            f"torso minatar_cnn needs channels-last grids [H, W, C] with H, W >= 3 and fewer channels than "
            f"rows and columns, got shape {observation_shape}; --torso mlp takes any shape"
        )
    if torso == "board_cnn" and min(observation_shape[:2]) < _BOARD_KERNEL:
        return (
            f"torso board_cnn needs channels-last boards [H, W, C] with H, W >= {_BOARD_KERNEL}, "
            f"got shape {observation_shape}; --torso mlp takes any shape"
        )
    return None


class ScaledFrames(nn.Module):
    """uint8 frames [B, C, H, W] -> float in [0, 1]."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float() / 255.0


class ChannelsFirst(nn.Module):
    """Channels-last grids [B, H, W, C] (MinAtar's bool, board games' int8) -> float [B, C, H, W]."""

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        return grids.float().permute(0, 3, 1, 2)


def conv_torso(
    observation_shape: tuple[int, ...], kind: str, hidden_sizes: tuple[int, ...], activation: Callable[[], nn.Module]
) -> tuple[nn.Sequential, int]:
    """(torso, feature width): the convolutions of ``kind``, flattened, then one Linear +
    ``activation`` per entry of ``hidden_sizes``."""
    if kind == "nature_cnn":
        channels = observation_shape[0]
        layers: list[nn.Module] = [
            ScaledFrames(),
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        ]
    elif kind == "minatar_cnn":
        channels = observation_shape[2]
        layers = [ChannelsFirst(), nn.Conv2d(channels, 16, 3, stride=1), nn.ReLU(), nn.Flatten()]
    elif kind == "board_cnn":
        channels = observation_shape[2]
        layers = [ChannelsFirst(), nn.Conv2d(channels, 64, _BOARD_KERNEL, stride=1), nn.ReLU(), nn.Flatten()]
    else:
        raise ValueError(f"unknown convolutional torso {kind!r}")
    with torch.no_grad():
        width = math.prod(nn.Sequential(*layers)(torch.zeros((1, *observation_shape))).shape[1:])
    for width_out in hidden_sizes:
        layers += [nn.Linear(width, width_out), activation()]
        width = width_out
    return nn.Sequential(*layers), width
