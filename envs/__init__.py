"""Environments: making Gymnasium envs (single and vector) and checking a DQN can drive them."""

from envs.make import AutoresetTracker, EnvError, LeanSyncVectorEnv, check_spaces, make_env, make_vector_env, resolve_env_id

__all__ = ["AutoresetTracker", "EnvError", "LeanSyncVectorEnv", "check_spaces", "make_env", "make_vector_env", "resolve_env_id"]
