"""Environments: making Gymnasium envs (single and vector, Atari and MinAtar included) and checking
a DQN can drive them."""

from dqn_family.envs.make import (
    AutoresetTracker,
    EnvError,
    action_count,
    check_spaces,
    make_env,
    make_vector_env,
    observation_layout,
    observation_states,
    resolve_env_id,
)
from dqn_family.envs.pixels import EnvOptions, env_family, learning_signal
from dqn_family.envs.vector import LeanSyncVectorEnv

__all__ = [
    "AutoresetTracker",
    "EnvError",
    "EnvOptions",
    "LeanSyncVectorEnv",
    "action_count",
    "check_spaces",
    "env_family",
    "learning_signal",
    "make_env",
    "make_vector_env",
    "observation_layout",
    "observation_states",
    "resolve_env_id",
]
