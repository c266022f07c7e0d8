"""Multi-input torsos for dictionary (and tuple) observations: one torso per key, features concatenated.

A Gymnasium ``Dict`` observation (a vector, an image and a discrete part side by side) reaches the
network as a dict of tensors keyed like the space, batch first. Each key gets the torso its part
calls for, built by the same functions as a single observation's:

- a ``Box`` of rank 0-2 (a vector, a matrix): ``agents.networks.mlp_torso`` on the flattened floats;
- a ``Box`` of rank 3 (an image): the convolutional torso ``agents.torsos.choose_torso`` picks for its
  shape (the Nature CNN for [C, H, W] frames, the MinAtar CNN for small channels-last grids), or
  the MLP; uint8 frames stay uint8 up to the torso, which scales them (house style 7);
- a ``Discrete(n)`` from 0: its state index one-hot encoded (``agents.networks.OneHot``), n features.

The parts' features are concatenated in key order (``parts_dim`` wide) and, by default, mixed by one
Linear + activation of width ``hidden_sizes[-1]`` (``fuse``): a linear head on concatenated
features alone is additive across keys, Q(s) = sum_k W_k f_k(s_k), and cannot express a value that
depends on two keys together (an agent's position in one, its goal in another). ``feature_dim`` is
the width a head (``QNetwork``) or a recurrent core reads. A ``Tuple`` observation is the same with
keys "0", "1", ... in position order.

A key named ``action_mask`` (PettingZoo's convention) is the action mask, not an input: it is
skipped here and in the replay layout (the buffer keeps the next state's mask apart). Any other part
a torso cannot take (a nested Dict or Tuple, MultiDiscrete, MultiBinary, Text, a Box of rank > 3,
a Discrete not starting at 0) is refused with one line naming the key and what is allowed.

Export needs a fixed signature: ``PositionalInputs`` calls a dict-input network with the parts as
positional tensors in key order (``ObservationPart`` order: Dict keys sorted, as Gymnasium stores
them; Tuple positions), so that an exported graph has one named input per key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dqn_family.agents.networks import ACTIVATION_MODULES, NetworkError, OneHot, mlp_torso
from dqn_family.agents.recurrent import RecurrentQNetwork
from dqn_family.agents.torsos import check_torso, choose_torso, conv_torso
from dqn_family.configs.config import TORSOS

MASK_KEY = "action_mask"  # a Dict observation's action mask (PettingZoo): never a network input
_ALLOWED = f"a Box of rank <= 3 or Discrete(n) starting at 0 (key {MASK_KEY!r} is the action mask, not an input)"

# Observations of a multi-input network: tensors by key, or (Tuple spaces) in position order.
PartTensors = Mapping[str, torch.Tensor] | Sequence[torch.Tensor]


@dataclass(frozen=True)
class ObservationPart:
    """One input of a multi-input network: arrays [B, *shape] of ``dtype``; for a Discrete part,
    ``states`` is n and the arrays are int64 state indices of shape [B]."""

    shape: tuple[int, ...]
    dtype: np.dtype
    states: int | None = None


def observation_parts(space: gym.Space) -> dict[str, ObservationPart]:
    """The network inputs of a Dict (keys sorted, as Gymnasium orders them) or Tuple (keys "0",
    "1", ...) observation space, in input order, without the action mask; NetworkError (a
    ValueError) naming the first part a torso cannot take."""
    if isinstance(space, gym.spaces.Dict):
        named = list(space.spaces.items())
    elif isinstance(space, gym.spaces.Tuple):
        named = [(str(position), part) for position, part in enumerate(space.spaces)]
    else:
        raise NetworkError(f"a multi-input network takes a Dict or Tuple observation space, got {space}")
    parts: dict[str, ObservationPart] = {}
    for key, part in named:
        if not isinstance(key, str):
            raise NetworkError(f"observation key {key!r} is not a string; Dict observations need string keys")
        if key != MASK_KEY:
            parts[key] = _part(key, part)
    if not parts:
        raise NetworkError(f"observation space {space} has no input besides {MASK_KEY!r}; give at least one part")
    return parts


def input_parts(space: gym.Space) -> dict[str, ObservationPart] | None:
    """``observation_parts`` of a Dict or Tuple observation space (a multi-input network's inputs),
    None for any other space (a single observation)."""
    return observation_parts(space) if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)) else None


def _part(key: str, space: gym.Space) -> ObservationPart:
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise NetworkError(f"observation key {key!r} is {space}, starting at {space.start}; allowed: {_ALLOWED}")
        return ObservationPart(shape=(), dtype=np.dtype(np.int64), states=int(space.n))
    if isinstance(space, gym.spaces.Box) and len(space.shape) <= 3 and math.prod(space.shape) > 0:
        return ObservationPart(shape=tuple(space.shape), dtype=np.dtype(space.dtype))
    raise NetworkError(f"observation key {key!r} is {space}; allowed: {_ALLOWED}")


def replay_layout(parts: Mapping[str, ObservationPart]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The plain layout ``replay.dict_storage.DictStorage`` takes: key -> (shape, dtype)."""
    return {key: (part.shape, part.dtype) for key, part in parts.items()}


def describe_parts(parts: Mapping[str, ObservationPart]) -> dict[str, dict[str, Any]]:
    """The parts as plain data (a checkpoint's spaces, an export's sidecar): key -> {"shape": [...],
    "dtype": "uint8", "states": n or None}."""
    return {
        key: {"shape": list(part.shape), "dtype": str(part.dtype), "states": part.states} for key, part in parts.items()
    }


def as_part_dict(observations: PartTensors, keys: Sequence[str]) -> Mapping[str, torch.Tensor]:
    """Observations by key: a mapping as it is, a tuple (a Tuple space's batch) keyed by position."""
    if isinstance(observations, Mapping):
        return observations
    return dict(zip(keys, observations))


def map_parts(function: Callable[[torch.Tensor], torch.Tensor], observations: PartTensors) -> PartTensors:
    """``function`` applied to every part, keeping the structure (a dict stays a dict, a tuple a tuple)."""
    if isinstance(observations, Mapping):
        return {key: function(part) for key, part in observations.items()}
    return tuple(function(part) for part in observations)


class FloatRows(nn.Module):
    """[B, *shape] of any dtype -> float32 [B, prod(shape)] (a rank-0 Box too, which Flatten refuses)."""

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return values.reshape(values.shape[0], -1).float()


def part_torso(
    key: str, part: ObservationPart, *, hidden_sizes: tuple[int, ...], activation: str, torso: str
) -> tuple[nn.Module, int]:
    """(torso, feature width) for one part: one-hot, a convolutional torso for an image, else an MLP."""
    if part.states is not None:
        return OneHot(part.states), part.states
    kind = choose_torso(part.shape, torso) if len(part.shape) == 3 else "mlp"
    if kind == "mlp":
        width = math.prod(part.shape)
        return nn.Sequential(FloatRows(), mlp_torso((width,), hidden_sizes, activation)), hidden_sizes[-1]
    problem = check_torso(part.shape, kind)
    if problem is not None:
        raise NetworkError(f"observation key {key!r}: {problem}")
    return conv_torso(part.shape, kind, hidden_sizes, ACTIVATION_MODULES[activation])


class MultiInputTorso(nn.Module):
    """Observations by key (a dict of tensors [B, *shape], or a tuple in key order) -> features
    [B, feature_dim]: each part's torso, concatenated in key order, then the fusion layer if ``fuse``.

    ``torso`` is the config's choice for image (rank-3) parts: 'auto' picks by shape, 'mlp'
    flattens them, a CNN name asks for that CNN (refused where the shape does not fit); other
    parts always get the MLP or one-hot. Extra keys in the input (the action mask) are ignored.
    """

    def __init__(
        self,
        parts: Mapping[str, ObservationPart],
        *,
        hidden_sizes: tuple[int, ...],
        activation: str,
        torso: str = "auto",
        fuse: bool = True,
    ) -> None:
        super().__init__()
        if not parts:
            raise NetworkError("a multi-input torso needs at least one observation part")
        if not hidden_sizes:
            raise NetworkError("a multi-input torso needs hidden_sizes (one width or more)")
        if torso not in TORSOS:
            raise NetworkError(f"torso must be one of {', '.join(TORSOS)}; got {torso!r}")
        if torso not in ("auto", "mlp") and not any(len(part.shape) == 3 for part in parts.values()):
            raise NetworkError(f"torso {torso} needs an image part (a Box of rank 3); use --torso auto or mlp")
        self.keys = tuple(parts)
        # A ModuleList, not a ModuleDict: observation keys may contain '.' or be 'items', 'keys', ...
        self.part_torsos = nn.ModuleList()
        self.part_dims: list[int] = []
        for key, part in parts.items():
            module, width = part_torso(key, part, hidden_sizes=hidden_sizes, activation=activation, torso=torso)
            self.part_torsos.append(module)
            self.part_dims.append(width)
        self.parts_dim = sum(self.part_dims)
        self.fusion: nn.Module = nn.Identity()
        self.feature_dim = self.parts_dim
        if fuse:
            self.fusion = nn.Sequential(nn.Linear(self.parts_dim, hidden_sizes[-1]), ACTIVATION_MODULES[activation]())
            self.feature_dim = hidden_sizes[-1]

    def part_features(self, observations: PartTensors) -> torch.Tensor:
        """The parts' features concatenated in key order, before fusion: [B, parts_dim]."""
        by_key = as_part_dict(observations, self.keys)
        features = [module(by_key[key]) for key, module in zip(self.keys, self.part_torsos)]
        return torch.cat(features, dim=1)

    def forward(self, observations: PartTensors) -> torch.Tensor:
        return self.fusion(self.part_features(observations))


def build_multi_input_torso(
    space: gym.Space, *, hidden_sizes: tuple[int, ...], activation: str, torso: str = "auto", fuse: bool = True
) -> tuple[MultiInputTorso, int]:
    """(torso, feature_dim) for a Dict or Tuple observation space: what ``QNetwork(torso,
    feature_dim, n_actions, **head_options)`` or ``MultiInputRecurrentQNetwork`` takes."""
    module = MultiInputTorso(
        observation_parts(space), hidden_sizes=hidden_sizes, activation=activation, torso=torso, fuse=fuse
    )
    return module, module.feature_dim


class MultiInputRecurrentQNetwork(RecurrentQNetwork):
    """``RecurrentQNetwork`` whose observations are parts by key: [T, B, *shape] per key in
    ``unroll``, [B, *shape] in ``step``. (RecurrentQNetwork merges T and B of one tensor before the
    torso; these two methods do it per part. Build it with ``float_input=False``: parts keep their
    dtype up to their torsos.)"""

    def unroll_outputs(
        self,
        observations: torch.Tensor | PartTensors,
        state_BS: torch.Tensor,
        resets_TB: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(observations, torch.Tensor):
            return super().unroll_outputs(observations, state_BS, resets_TB)
        first = next(iter(observations.values())) if isinstance(observations, Mapping) else observations[0]
        steps, batch = first.shape[:2]
        flat = map_parts(lambda part: part.reshape(steps * batch, *part.shape[2:]), observations)
        features_TBF = self.torso(flat).view(steps, batch, -1)
        hidden_TBH, state_BS = self._run_core(features_TBF, state_BS, resets_TB)
        out_NAK = self.head.head_outputs(hidden_TBH.reshape(steps * batch, self.hidden_size))
        return out_NAK.view(steps, batch, *out_NAK.shape[1:]), state_BS

    def step(
        self, observations: torch.Tensor | PartTensors, state_BS: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(observations, torch.Tensor):
            return super().step(observations, state_BS)
        out_TBAK, state_BS = self.unroll_outputs(map_parts(lambda part: part.unsqueeze(0), observations), state_BS)
        return self.q_values(out_TBAK)[0], state_BS


class PositionalInputs(nn.Module):
    """``module`` (taking parts by key) called with the parts as positional tensors in ``keys``
    order, then any further inputs as they are (a recurrent network's state): ``forward(*parts,
    *rest)``. A fixed signature for torch.export and ONNX, one named input per key.

    torch.export sees ``*inputs`` as one tuple argument: give ``dynamic_shapes(batch)``."""

    def __init__(self, module: nn.Module, keys: Sequence[str]) -> None:
        super().__init__()
        self.module, self.keys = module, tuple(keys)

    def forward(self, *inputs: torch.Tensor) -> Any:
        count = len(self.keys)
        return self.module(dict(zip(self.keys, inputs[:count])), *inputs[count:])

    def dynamic_shapes(self, batch: Any, extra_inputs: int = 0) -> tuple[tuple[dict[int, Any], ...]]:
        """torch.export's ``dynamic_shapes`` with axis 0 of every input (parts, then ``extra_inputs``) ``batch``."""
        return (tuple({0: batch} for _ in range(len(self.keys) + extra_inputs)),)


def example_parts(parts: Mapping[str, ObservationPart], batch: int = 2) -> tuple[torch.Tensor, ...]:
    """A batch of valid observations (zeros), one tensor per part in key order, in each part's dtype."""
    return tuple(torch.from_numpy(np.zeros((batch, *part.shape), dtype=part.dtype)) for part in parts.values())
