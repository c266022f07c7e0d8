"""Agents: Q-networks, learners (found through the AGENTS registry) and their pure maths.

``agents`` never imports ``envs``: it receives observation shapes and action counts.
"""

from __future__ import annotations

import torch

from agents.device import resolve_device, set_torch_threads
from agents.dqn import DQNAgent, double_dqn_target, dqn_target
from agents.model_file import ModelFileError, load_model, save_model
from agents.networks import MLPQNetwork, NetworkError, NetworkFactory, build_q_network, factory_spec
from agents.schedules import SCHEDULES, exponential_schedule, linear_schedule
from configs import Config, ConfigError

AGENTS: dict[str, type] = {"dqn": DQNAgent}


def make_agent(config: Config, *, observation_shape: tuple[int, ...], n_actions: int, device: torch.device,
               seed: int, network: NetworkFactory | None = None):
    """The learner named by ``config.algo`` with its Q-network (the config's, or ``network``)."""
    if config.algo not in AGENTS:
        raise ConfigError(f"algo must be one of {', '.join(sorted(AGENTS))}; got {config.algo!r}")
    q_network = build_q_network(observation_shape, n_actions, hidden_sizes=config.hidden_sizes,
                                activation=config.activation, network=network or config.network)
    return AGENTS[config.algo].from_config(config, q_network=q_network, n_actions=n_actions,
                                           device=device, seed=seed)


__all__ = [
    "AGENTS", "DQNAgent", "MLPQNetwork", "ModelFileError", "NetworkError", "SCHEDULES", "build_q_network",
    "double_dqn_target", "dqn_target", "exponential_schedule", "factory_spec", "linear_schedule",
    "load_model", "make_agent", "resolve_device", "save_model", "set_torch_threads",
]
