"""Scripted envs with action masks, where an illegal action is by construction the best one to take.

Four actions; at episode step t the legal ones are t % 4 and (t + 1) % 4. A legal action earns 1, an
illegal one ILLEGAL_REWARD (the env does not refuse it): so an episode's return equals its length
exactly when no illegal action was taken, and an agent that ignores the mask learns to take them.
Observation [t, episode] (float32), or with ``dict_obs`` a Dict {"observation": that, "action_mask":
MultiBinary(4)} (PettingZoo's convention); otherwise the mask is ``info["action_mask"]`` (int8, as
Gymnasium's Taxi gives it). Episodes end after EPISODE_LENGTH steps: terminated, with an all-False
mask (as a board game's last position), or truncated by a TimeLimit with the mask of step
EPISODE_LENGTH. ``stuck_at``: at that episode step no action is legal while the episode goes on.
``Unmasked`` is the same env without any mask. Importing this module registers every id.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

N_ACTIONS = 4
EPISODE_LENGTH = 5
ILLEGAL_REWARD = 10.0
STUCK_AT = 3


def legal_at(t: int) -> np.ndarray:
    legal = np.zeros(N_ACTIONS, dtype=bool)
    legal[[t % N_ACTIONS, (t + 1) % N_ACTIONS]] = True
    return legal


class MaskedEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        *,
        masks: str = "info",
        terminate: bool = True,
        stuck_at: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        box = gym.spaces.Box(0.0, 1e6, shape=(2,), dtype=np.float32)
        self.masks, self.terminate, self.stuck_at = masks, terminate, stuck_at
        self.observation_space: gym.Space = (
            gym.spaces.Dict({"observation": box, "action_mask": gym.spaces.MultiBinary(N_ACTIONS)})
            if masks == "dict"
            else box
        )
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.render_mode = render_mode
        self.t, self.episode = 0, -1

    def mask(self, ended: bool) -> np.ndarray:
        if (ended and self.terminate) or self.t == self.stuck_at:
            return np.zeros(N_ACTIONS, dtype=np.int8)
        return legal_at(self.t).astype(np.int8)

    def emit(self, ended: bool = False):
        observation = np.array([self.t, self.episode], dtype=np.float32)
        mask = self.mask(ended)
        if self.masks == "dict":
            return {"observation": observation, "action_mask": mask}, {}
        return observation, ({"action_mask": mask} if self.masks == "info" else {})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return self.emit()

    def step(self, action):
        reward = 1.0 if legal_at(self.t)[int(action)] else ILLEGAL_REWARD
        self.t += 1
        terminated = self.terminate and self.t >= EPISODE_LENGTH
        observation, info = self.emit(ended=terminated)
        return observation, reward, terminated, False, info


IDS = {
    "TestOnly/MaskedInfo-v0": dict(masks="info"),
    "TestOnly/MaskedDict-v0": dict(masks="dict"),
    "TestOnly/MaskedTruncate-v0": dict(masks="info", terminate=False),
    "TestOnly/MaskedStuck-v0": dict(masks="info", stuck_at=STUCK_AT),
    "TestOnly/Unmasked-v0": dict(masks="none"),
}
SPECS = {name.split("/")[1].removesuffix("-v0"): f"tests.masked_envs:{name}" for name in IDS}
INFO_SPEC, DICT_SPEC, TRUNCATE_SPEC, STUCK_SPEC, UNMASKED_SPEC = SPECS.values()

for env_id, kwargs in IDS.items():
    if env_id not in gym.registry:
        limit = EPISODE_LENGTH if not kwargs.get("terminate", True) else None
        gym.register(env_id, entry_point=MaskedEnv, kwargs=kwargs, max_episode_steps=limit)
