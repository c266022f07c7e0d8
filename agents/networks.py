"""Q-networks: plain ``nn.Module``s mapping a batch of observations to one Q-value per action.

Any module with that contract can be used (``--network module:Factory``); it receives
observations of shape [B, *observation_shape] in the env's dtype (float32 for classic control,
uint8 for pixels: convert inside ``forward``) and returns Q-values of shape [B, n_actions].

Discrete observations (FrozenLake, Taxi, CliffWalking) are state indices, int64 of shape [B]: they
stay integers in replay and the MLP one-hot encodes them as its first layer (``OneHot``), as pixels
stay uint8 and are scaled inside the network.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import torch
from torch import nn

from dqn_family.agents.layers import NoisyLinear
from dqn_family.agents.torsos import check_torso, choose_torso, conv_torso
from dqn_family.configs.config import ACTIVATIONS
from dqn_family.configs.errors import UserError
from dqn_family.configs.trust import IMPORT_HINT, SpecError, split_network_spec

# The activation registry's torch classes (configs.config.ACTIVATIONS names each one).
ACTIVATION_MODULES: dict[str, Callable[[], nn.Module]] = {name: getattr(nn, cls) for name, cls in ACTIVATIONS.items()}

NetworkFactory = Callable[[tuple[int, ...], int], nn.Module]


class NetworkError(UserError):
    """A custom network that cannot be imported, built or used."""


class QNetwork(nn.Module):
    """A torso (observations -> features) and a head giving K outputs per action.

    ``output`` says what the K outputs are and how they become Q-values in ``forward``:
    'q' (K = 1, the Q-value itself), 'c51' (K logits over a fixed support: Q = sum p_k z_k),
    'qr' (K quantiles: Q = their mean). A dueling head combines a value stream V [B, 1, K] and an
    advantage stream A [B, A, K] as V + A - mean_a A, per output (Wang et al. 2016).
    """

    support: torch.Tensor  # [K] atom values, a buffer of 'c51' heads only

    def __init__(
        self,
        torso: nn.Module,
        feature_dim: int,
        n_actions: int,
        *,
        output: str = "q",
        num_outputs: int = 1,
        dueling: bool = False,
        noisy: bool = False,
        noisy_sigma0: float = 0.5,
        support: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if output not in ("q", "c51", "qr"):
            raise ValueError(f"unknown output {output!r}")
        linear = (lambda i, o: NoisyLinear(i, o, sigma0=noisy_sigma0)) if noisy else nn.Linear
        self.torso, self.n_actions, self.num_outputs, self.output = torso, n_actions, num_outputs, output
        self.advantage = linear(feature_dim, n_actions * num_outputs)
        self.value = linear(feature_dim, num_outputs) if dueling else None
        if output == "c51":
            if support is None:
                raise ValueError("a 'c51' head needs its support (the atom values)")
            self.register_buffer("support", support.clone())

    def head_outputs(self, observations: torch.Tensor) -> torch.Tensor:
        """The raw outputs [B, A, K]: Q-values (K = 1), C51 logits or QR quantiles."""
        features_BF = self.torso(observations)
        out_BAK = self.advantage(features_BF).view(-1, self.n_actions, self.num_outputs)
        if self.value is None:
            return out_BAK
        value_B1K = self.value(features_BF).unsqueeze(1)
        return value_B1K + out_BAK - out_BAK.mean(dim=1, keepdim=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.q_values(self.head_outputs(observations))

    def q_values(self, out_BAK: torch.Tensor) -> torch.Tensor:
        """Q-values [B, A] from raw head outputs [B, A, K] (what ``forward`` returns)."""
        out_BAK = out_BAK.float()  # float32 Q-values under autocast too (a no-op otherwise)
        if self.output == "c51":
            return (out_BAK.softmax(dim=2) * self.support).sum(dim=2)
        if self.output == "qr":
            return out_BAK.mean(dim=2)
        return out_BAK.squeeze(2)  # [B, A]


class OneHot(nn.Module):
    """State indices [B] (any integer or float dtype) -> one-hot float32 [B, num_states]."""

    def __init__(self, num_states: int) -> None:
        super().__init__()
        self.num_states = num_states

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        # A comparison rather than F.one_hot: no bounds check that syncs with the device, and it compiles.
        return (states.unsqueeze(-1) == torch.arange(self.num_states, device=states.device)).float()


def mlp_torso(
    observation_shape: tuple[int, ...],
    hidden_sizes: tuple[int, ...],
    activation: str,
    observation_states: int | None = None,
) -> nn.Sequential:
    """Flatten (or, for Discrete observations with ``observation_states`` states, OneHot), then
    Linear + activation per hidden width; float32 input."""
    first: nn.Module = nn.Flatten() if observation_states is None else OneHot(observation_states)
    widths = [math.prod(observation_shape) if observation_states is None else observation_states, *hidden_sizes]
    layers: list[nn.Module] = [first]
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), ACTIVATION_MODULES[activation]()]
    return nn.Sequential(*layers)


class MLPQNetwork(QNetwork):
    """The default Q-network: an MLP torso and a linear head, one Q-value per action.
    ``observation_states``: Discrete observations with this many states, one-hot encoded."""

    torso: nn.Sequential  # mlp_torso's layers (the numpy actor reads them one by one)

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        n_actions: int,
        *,
        hidden_sizes: tuple[int, ...] = (120, 84),
        activation: str = "relu",
        observation_states: int | None = None,
        **head_options,
    ) -> None:
        torso = mlp_torso(observation_shape, hidden_sizes, activation, observation_states)
        super().__init__(torso, hidden_sizes[-1], n_actions, **head_options)
        self.observation_states = observation_states

    def head_outputs(self, observations: torch.Tensor) -> torch.Tensor:
        # Box observations become float here (uint8 or bool included); state indices go to OneHot as they are.
        return super().head_outputs(observations if self.observation_states is not None else observations.float())


class ConvQNetwork(QNetwork):
    """A convolutional torso for pixels or MinAtar grids (see agents.torsos), then the head."""

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        n_actions: int,
        *,
        torso: str,
        hidden_sizes: tuple[int, ...] = (512,),
        activation: str = "relu",
        **head_options,
    ) -> None:
        module, width = conv_torso(observation_shape, torso, hidden_sizes, ACTIVATION_MODULES[activation])
        super().__init__(module, width, n_actions, **head_options)
        self.torso_kind = torso


def import_factory(spec: str) -> NetworkFactory:
    """The object named by ``'module:Name'`` (``Name`` may be dotted), imported from sys.path."""
    try:
        module_name, attribute = split_network_spec(spec)
    except SpecError as error:
        raise NetworkError(str(error)) from None
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except ModuleNotFoundError as error:
        raise NetworkError(f"cannot import network {spec!r}: {error}; {IMPORT_HINT}") from None
    except (ImportError, AttributeError, ValueError, TypeError) as error:  # relative or empty names raise the last two
        raise NetworkError(f"cannot import network {spec!r}: {error}") from None
    if not callable(target):
        raise NetworkError(
            f"network {spec!r} is not callable; give a class or function taking (observation_shape, n_actions)"
        )
    return target


def factory_spec(factory: NetworkFactory) -> str | None:
    """'module:QualName' for a factory that can be imported again later (None for lambdas etc.)."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def build_q_network(
    observation_shape: tuple[int, ...],
    n_actions: int,
    *,
    hidden_sizes: tuple[int, ...],
    activation: str,
    network: str | NetworkFactory | None = None,
    torso: str = "auto",
    observation_states: int | None = None,
    recurrent: bool = False,
    **head_options,
) -> nn.Module:
    """The MLP or convolutional network (``torso``, see agents.torsos) with the requested head, or a
    user's ``network``: its output is the Q-values [B, n_actions] under a plain head (checked, unless
    ``recurrent``), or the features a dueling, noisy or distributional head reads (``custom_torso``).
    ``observation_states``: the observations are Discrete state indices (shape ()), one-hot encoded
    first."""
    if network is not None:
        options = head_options
        plain = options.get("output", "q") == "q" and not options.get("dueling") and not options.get("noisy")
        if recurrent or plain:  # the user's network gives the Q-values (or is recurrent itself)
            return custom_network(network, observation_shape, n_actions, observation_states, check=not recurrent)
        # A head on top (dueling, noisy, C51, QR): the user's network gives hidden_sizes[-1] features.
        width = hidden_sizes[-1]
        features = custom_torso(network, observation_shape, width, activation, observation_states)
        return QNetwork(features, width, n_actions, **head_options)
    if observation_states is not None:
        if torso not in ("auto", "mlp"):
            raise NetworkError(
                f"torso {torso} needs image observations; this env's observations are "
                f"Discrete({observation_states}) state indices: use --torso mlp or auto"
            )
        return MLPQNetwork(
            observation_shape,
            n_actions,
            hidden_sizes=hidden_sizes,
            activation=activation,
            observation_states=observation_states,
            **head_options,
        )
    kind = choose_torso(observation_shape, torso)
    if kind == "mlp":
        return MLPQNetwork(
            observation_shape, n_actions, hidden_sizes=hidden_sizes, activation=activation, **head_options
        )
    problem = check_torso(observation_shape, kind)
    if problem is not None:
        raise NetworkError(problem)
    return ConvQNetwork(
        observation_shape, n_actions, torso=kind, hidden_sizes=hidden_sizes, activation=activation, **head_options
    )


def custom_network(
    network: str | NetworkFactory,
    observation_shape: tuple[int, ...],
    outputs: int,
    observation_states: int | None = None,
    *,
    check: bool = True,
) -> nn.Module:
    """The user's network built with (observation_shape, outputs), checked to return [B, outputs]
    unless not ``check``. Discrete observations (``observation_states``) reach it one-hot, as
    vectors of shape (observation_states,)."""
    factory = import_factory(network) if isinstance(network, str) else network
    name = network if isinstance(network, str) else repr(factory)
    shape = observation_shape if observation_states is None else (observation_states,)
    try:
        module = factory(shape, outputs)
    except Exception as error:
        raise NetworkError(
            f"network {name} failed to build with (observation_shape={shape}, n_actions={outputs}): {error}"
        ) from None
    if not isinstance(module, nn.Module):
        raise NetworkError(f"network {name} returned {type(module).__name__}, not a torch.nn.Module")
    if check:  # a recurrent one is checked against its own interface (agents.recurrent)
        check_output_shape(module, shape, outputs, name)
    return module if observation_states is None else nn.Sequential(OneHot(observation_states), module)


def custom_torso(
    network: str | NetworkFactory,
    observation_shape: tuple[int, ...],
    width: int,
    activation: str,
    observation_states: int | None = None,
) -> nn.Sequential:
    """The user's network as a torso of ``width`` features (built with n_actions = width), followed by
    the config's activation, for a head (or a recurrent core) on top."""
    module = custom_network(network, observation_shape, width, observation_states)
    return nn.Sequential(module, ACTIVATION_MODULES[activation]())


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
        raise NetworkError(
            f"network {name} must map [B, *obs_shape] to [B, {n_actions}] Q-values; for B=2 it returned {shape}"
        )
