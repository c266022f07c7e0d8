"""A test-only env that raises in its 20th step, to stand for a trial that crashes mid-training.
Importing this module registers ``TestOnly/CrashingEnv-v0`` (use CRASHING_SPEC in a child process)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CRASHING_ID = "TestOnly/CrashingEnv-v0"
CRASHING_SPEC = f"tests.analysis.crashing_env:{CRASHING_ID}"
CRASH_STEP = 20


class CrashingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps >= CRASH_STEP:
            raise RuntimeError(f"CrashingEnv crashed on purpose at step {self.steps}")
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


if CRASHING_ID not in gym.registry:
    gym.register(CRASHING_ID, entry_point=CrashingEnv)
