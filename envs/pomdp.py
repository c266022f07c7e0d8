"""Partially observed classic-control envs: the velocities hidden, so that acting well needs memory.

Importing this module registers, in Gymnasium's registry:

- ``CartPoleNoVelocity-v1``: CartPole-v1 observing only the cart position and the pole angle
  (observation [x, theta]; x_dot and theta_dot hidden), the benchmark of recurrent DQN papers
  (e.g. Kapturowski et al. 2019 use the same idea on Atari frames; Meng et al. 2021 "Memory-based
  Deep Reinforcement Learning for POMDPs" on these tasks); 500-step limit, solved at 475;
- ``AcrobotNoVelocity-v1``: Acrobot-v1 observing the cos and sin of both joint angles (the two
  angular velocities hidden); 500-step limit.

Give either as ``envs.pomdp:CartPoleNoVelocity-v1`` (or ``dqn_family.envs.pomdp:...``): the
project's own module, imported without a ``--trust-imports`` (configs.trust.PROJECT_ENV_MODULES).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

# env id -> (the fully observed env, the observation entries kept)
HIDDEN_VELOCITY: dict[str, tuple[str, tuple[int, ...]]] = {
    "CartPoleNoVelocity-v1": ("CartPole-v1", (0, 2)),
    "AcrobotNoVelocity-v1": ("Acrobot-v1", (0, 1, 2, 3)),
}


class KeepEntries(gym.ObservationWrapper):
    """Observations reduced to the entries ``kept`` of a 1-D Box."""

    def __init__(self, env: gym.Env, kept: tuple[int, ...]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape or ()) != 1:
            raise ValueError(f"KeepEntries needs a 1-D Box observation space, got {space}")
        self.kept = np.asarray(kept, dtype=np.int64)
        self.observation_space = gym.spaces.Box(space.low[self.kept], space.high[self.kept], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.kept]


def make_hidden_velocity(full_id: str, kept: tuple[int, ...], **kwargs) -> gym.Env:
    """The fully observed env, without its own time limit (the registration's applies), wrapped."""
    return KeepEntries(gym.make(full_id, max_episode_steps=None, **kwargs).unwrapped, kept)


def play_recipe(env_id: str) -> dict[str, object] | None:
    """How a player without this project makes the env (examples/play_onnx.py, through an export's
    sidecar): the plain Gymnasium id of the fully observed env and the entries kept; None for an
    env id that is not one of this module's (a ``module:`` prefix is ignored)."""
    found = HIDDEN_VELOCITY.get(env_id.rpartition(":")[2])
    return None if found is None else {"env_id": found[0], "kept_entries": list(found[1])}


def register_envs() -> None:
    for env_id, (full_id, kept) in HIDDEN_VELOCITY.items():
        if env_id not in gym.registry:
            full = gym.spec(full_id)
            gym.register(
                id=env_id,
                entry_point="dqn_family.envs.pomdp:make_hidden_velocity",
                kwargs={"full_id": full_id, "kept": kept},
                max_episode_steps=full.max_episode_steps,
                reward_threshold=full.reward_threshold,
            )


register_envs()
