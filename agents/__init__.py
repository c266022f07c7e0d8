"""Agents: Q-networks, learners (found through the AGENTS registry) and their pure maths.

``agents`` never imports ``envs``: it receives observation shapes and action counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from dqn_family.agents.c51 import C51Agent, categorical_projection, kl_divergence
from dqn_family.agents.device import resolve_device, set_torch_threads
from dqn_family.agents.dqn import DQNAgent, double_dqn_target, dqn_target
from dqn_family.agents.layers import NoisyLinear
from dqn_family.agents.model_file import ModelFileError, load_model, save_model
from dqn_family.agents.multi_input import (
    MultiInputRecurrentQNetwork,
    MultiInputTorso,
    ObservationPart,
    describe_parts,
    input_parts,
    replay_layout,
)
from dqn_family.agents.networks import (
    ConvQNetwork,
    MLPQNetwork,
    NetworkError,
    NetworkFactory,
    QNetwork,
    build_q_network,
    factory_spec,
)
from dqn_family.agents.numpy_actor import numpy_greedy_policy
from dqn_family.agents.qrdqn import QRAgent, quantile_huber_loss, quantile_midpoints
from dqn_family.agents.recurrent import (
    RecurrentAgent,
    RecurrentNetwork,
    RecurrentQNetwork,
    as_recurrent,
    build_recurrent_network,
    check_recurrent_network,
    is_recurrent,
)
from dqn_family.configs import Config, ConfigError

# Learners by --algo name. Rainbow is C51 with every extension switched on by its config
# (configs/rainbow/defaults.yaml), not a class of its own.
AGENTS: dict[str, type[DQNAgent]] = {"dqn": DQNAgent, "c51": C51Agent, "qrdqn": QRAgent, "rainbow": C51Agent}


def learner_class(config: Config) -> type[DQNAgent]:
    if config.algo not in AGENTS:
        raise ConfigError(f"algo must be one of {', '.join(AGENTS)}; got {config.algo!r}")
    return AGENTS[config.algo]


def build_network(
    config: Config,
    observation_shape: tuple[int, ...],
    n_actions: int,
    network: NetworkFactory | None = None,
    *,
    observation_states: int | None = None,
    observation_parts: Mapping[str, ObservationPart] | None = None,
) -> torch.nn.Module:
    """The Q-network a run's config describes: what train.py builds and evaluate.py rebuilds.
    ``observation_states``: Discrete observations with this many states (one-hot in the network).
    ``observation_parts`` (agents.multi_input.input_parts): dictionary observations, which the
    multi-input torso takes (one torso per key, fused) under the learner's head; ``observation_shape``
    is then unused."""
    custom = network or config.network
    if observation_parts is not None:
        check_multi_input_config(config, custom is not None, list(observation_parts))
        torso = MultiInputTorso(
            observation_parts, hidden_sizes=config.hidden_sizes, activation=config.activation, torso=config.torso
        )
        head_options = learner_class(config).head_options(config)
        if config.recurrent in ("lstm", "gru"):  # parts keep their dtypes up to their torsos: float_input off
            return MultiInputRecurrentQNetwork(
                torso,
                torso.feature_dim,
                n_actions,
                core=config.recurrent,
                hidden_size=config.recurrent_size,
                float_input=False,
                **head_options,
            )
        return QNetwork(torso, torso.feature_dim, n_actions, **head_options)
    if config.recurrent == "custom" and custom is None:
        raise ConfigError(
            "--recurrent custom needs your recurrent network as --network module:Factory (see the README)"
        )
    if config.recurrent in ("lstm", "gru"):  # a custom network is the torso below the core
        return build_recurrent_network(
            observation_shape,
            n_actions,
            core=config.recurrent,
            hidden_size=config.recurrent_size,
            hidden_sizes=config.hidden_sizes,
            activation=config.activation,
            torso=config.torso,
            observation_states=observation_states,
            network=custom,
            **learner_class(config).head_options(config),
        )
    head_options = learner_class(config).head_options(config)
    module = build_q_network(
        observation_shape,
        n_actions,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        network=custom,
        torso=config.torso,
        observation_states=observation_states,
        recurrent=config.recurrent == "custom",
        **head_options,
    )
    if config.recurrent == "custom":
        check_recurrent_network(module, observation_shape, n_actions, str(custom))
    return module


def check_multi_input_config(config: Config, custom_network: bool, keys: list[str]) -> None:
    """ConfigError naming the first option that dictionary observations do not take (yet)."""
    refused = [
        (config.recurrent == "custom", "--recurrent custom", "--recurrent lstm or gru (the multi-input torso below)"),
        (config.frame_replay == "on", "--frame-replay on", "--frame-replay auto or off (each key stored whole)"),
        (custom_network, "--network module:Factory", "no --network: the multi-input torso (one torso per key)"),
    ]
    for found, option, allowed in refused:
        if found:
            raise ConfigError(
                f"{option} does not take dictionary observations (env {config.env_id} has keys {keys[:8]}); "
                f"use {allowed}"
            )


def make_agent(
    config: Config,
    *,
    observation_shape: tuple[int, ...],
    n_actions: int,
    device: torch.device,
    seed: int,
    network: NetworkFactory | None = None,
    observation_states: int | None = None,
    observation_parts: Mapping[str, ObservationPart] | None = None,
) -> DQNAgent | RecurrentAgent:
    """The learner named by ``config.algo`` with its Q-network (the config's, or ``network``)."""
    q_network = build_network(
        config,
        observation_shape,
        n_actions,
        network,
        observation_states=observation_states,
        observation_parts=observation_parts,
    )
    learner = learner_class(config).from_config(
        config, q_network=q_network, n_actions=n_actions, device=device, seed=seed
    )
    if config.recurrent == "off":
        return learner
    return RecurrentAgent(
        learner, burn_in=config.burn_in, stored_state=config.stored_state, priority_eta=config.priority_eta
    )


__all__ = [
    "AGENTS",
    "C51Agent",
    "ConvQNetwork",
    "NoisyLinear",
    "QNetwork",
    "QRAgent",
    "RecurrentAgent",
    "RecurrentNetwork",
    "as_recurrent",
    "RecurrentQNetwork",
    "build_recurrent_network",
    "is_recurrent",
    "build_network",
    "check_multi_input_config",
    "describe_parts",
    "input_parts",
    "replay_layout",
    "categorical_projection",
    "kl_divergence",
    "learner_class",
    "quantile_huber_loss",
    "quantile_midpoints",
    "DQNAgent",
    "MLPQNetwork",
    "ModelFileError",
    "NetworkError",
    "build_q_network",
    "double_dqn_target",
    "dqn_target",
    "factory_spec",
    "load_model",
    "make_agent",
    "numpy_greedy_policy",
    "resolve_device",
    "save_model",
    "set_torch_threads",
]
