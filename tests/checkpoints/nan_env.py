"""A test-only env whose rewards turn NaN: what a diverging run looks like to the training loop.

``TestOnly/NanReward-v0`` gives reward 1 for its first ``NAN_AFTER`` steps (counted over the env's
lifetime, across episodes) and NaN from then on; episodes last 10 steps. Importing this module
registers it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

NAN_AFTER = 150
NAN_ID = "TestOnly/NanReward-v0"
NAN_SPEC = f"tests.checkpoints.nan_env:{NAN_ID}"


class NanRewardEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.lifetime_steps, self.t = 0, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, size=3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        self.lifetime_steps += 1
        reward = 1.0 if self.lifetime_steps <= NAN_AFTER else float("nan")
        observation = self.np_random.uniform(-1, 1, size=3).astype(np.float32)
        return observation, reward, self.t >= 10, False, {}


if NAN_ID not in gym.registry:
    gym.register(NAN_ID, entry_point=NanRewardEnv)
