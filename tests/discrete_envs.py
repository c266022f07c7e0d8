"""Envs with Discrete observations for tests. Importing this module registers
``TestOnly/FrozenLakeDeterministic-v1``: Gymnasium's FrozenLake 4x4 with ``is_slippery=False``, so
that each action moves where it says and the shortest path from the start (state 0) to the goal
(state 15) takes 6 steps, reward 1 at the goal, 100 steps at most."""

from __future__ import annotations

import gymnasium as gym

FROZEN_LAKE_ID = "TestOnly/FrozenLakeDeterministic-v1"
FROZEN_LAKE_SPEC = f"tests.discrete_envs:{FROZEN_LAKE_ID}"
SHORTEST_PATH_STEPS = 6

if FROZEN_LAKE_ID not in gym.registry:
    gym.register(
        FROZEN_LAKE_ID,
        entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
        kwargs={"map_name": "4x4", "is_slippery": False},
        max_episode_steps=100,
    )
