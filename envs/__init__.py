"""Environments: making Gymnasium envs (single and vector, Atari and MinAtar included) and checking
a DQN can drive them."""

from dqn_family.envs.make import (
    AutoresetTracker,
    EnvError,
    action_count,
    action_masks,
    check_spaces,
    make_env,
    make_vector_env,
    masks_of,
    observation_layout,
    observation_states,
    resolve_env_id,
)
from dqn_family.envs.masks import MASK_KEY, MaskError, check_some_legal, mask_source, vector_legal
from dqn_family.envs.pixels import EnvOptions, env_family, learning_signal
from dqn_family.envs.vector import LeanSyncVectorEnv

__all__ = [
    "AutoresetTracker",
    "EnvError",
    "EnvOptions",
    "LeanSyncVectorEnv",
    "MASK_KEY",
    "MaskError",
    "action_count",
    "action_masks",
    "check_some_legal",
    "check_spaces",
    "env_family",
    "learning_signal",
    "make_env",
    "mask_source",
    "masks_of",
    "make_vector_env",
    "observation_layout",
    "observation_states",
    "resolve_env_id",
    "vector_legal",
]
