"""Deterministic toy envs whose observation says where in the episode it is.

Observation [t, episode]: t env steps since the last reset, episode the number of resets so far
minus one. Reward 1 per step, actions ignored. After 3 steps ``TestOnly/CountingTerminate-v0``
terminates, while ``TestOnly/CountingTruncate-v0`` never terminates and is cut by a TimeLimit.
So a stored transition (obs, next_obs) is real exactly when next_obs = obs + [1, 0], and the
final observation of every episode has t = 3. Importing this module registers both ids.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

EPISODE_LENGTH = 3
TERMINATE_ID = "TestOnly/CountingTerminate-v0"
TRUNCATE_ID = "TestOnly/CountingTruncate-v0"
TERMINATE_SPEC = f"tests.scripted_envs:{TERMINATE_ID}"
TRUNCATE_SPEC = f"tests.scripted_envs:{TRUNCATE_ID}"


class CountingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, *, terminate_after: int | None, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.terminate_after = terminate_after
        self.render_mode = render_mode
        self.t, self.episode = 0, -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return self._observation(), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_after is not None and self.t >= self.terminate_after
        return self._observation(), 1.0, terminated, False, {}

    def _observation(self) -> np.ndarray:
        return np.array([self.t, self.episode], dtype=np.float32)


if TERMINATE_ID not in gym.registry:
    gym.register(TERMINATE_ID, entry_point=CountingEnv, kwargs={"terminate_after": EPISODE_LENGTH})
if TRUNCATE_ID not in gym.registry:
    gym.register(
        TRUNCATE_ID, entry_point=CountingEnv, kwargs={"terminate_after": None}, max_episode_steps=EPISODE_LENGTH
    )
