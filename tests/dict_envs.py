"""Scripted envs with dictionary observations: a discrete cue, a small uint8 image and a float vector.

Each step shows a cue c in {0, 1} (``Discrete(2)``), an image [4, 4, 2] (uint8, channels last,
values 0/1) with one pixel lit in channel 0, in the left half (side s = 0) or the right half (s = 1),
and a clock [t / EPISODE_LENGTH, 1] (float32). Action a earns 1 when a == c XOR s, else 0: the reward
depends on the cue and the image together, so no single key tells the best action (a network
summing per-key features linearly cannot express it). Episodes end (terminated) after
EPISODE_LENGTH steps: a perfect policy returns EPISODE_LENGTH, a random one half of it on average.

Variants: the same observation as a ``Tuple`` (cue, image, clock); with an ``action_mask`` key
besides the others (only the rewarded action legal at even steps, both at odd ones); and envs
whose observation has a part the multi-input torso cannot take (``BAD_PARTS``). Importing this
module registers every id.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

EPISODE_LENGTH = 8
IMAGE_SHAPE = (4, 4, 2)

SPEC = "TestOnly/CueImage-v0"
TUPLE_SPEC = "TestOnly/CueImageTuple-v0"
MASKED_SPEC = "TestOnly/CueImageMasked-v0"


def parts_space() -> dict[str, gym.Space]:
    return {
        "cue": gym.spaces.Discrete(2),
        "image": gym.spaces.Box(0, 1, IMAGE_SHAPE, np.uint8),
        "clock": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
    }


class CueImageEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, *, form: str = "dict", render_mode: str | None = None) -> None:
        self.form = form
        spaces = parts_space()
        if form == "tuple":
            self.observation_space: gym.Space = gym.spaces.Tuple([spaces["cue"], spaces["image"], spaces["clock"]])
        elif form == "masked":
            self.observation_space = gym.spaces.Dict({**spaces, "action_mask": gym.spaces.MultiBinary(2)})
        else:
            self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.t, self.cue, self.side = 0, 0, 0

    def rewarded(self) -> int:
        return self.cue ^ self.side

    def emit(self):
        self.cue, self.side = int(self.np_random.integers(2)), int(self.np_random.integers(2))
        image = np.zeros(IMAGE_SHAPE, dtype=np.uint8)
        image[int(self.np_random.integers(4)), 2 * self.side + int(self.np_random.integers(2)), 0] = 1
        clock = np.array([self.t / EPISODE_LENGTH, 1.0], dtype=np.float32)
        if self.form == "tuple":
            return (self.cue, image, clock)
        observation = {"cue": self.cue, "image": image, "clock": clock}
        if self.form == "masked":
            mask = np.ones(2, dtype=np.int8)
            if self.t % 2 == 0:
                mask[1 - self.rewarded()] = 0
            observation["action_mask"] = mask
        return observation

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self.emit(), {}

    def step(self, action):
        reward = 1.0 if int(action) == self.rewarded() else 0.0
        self.t += 1
        return self.emit(), reward, self.t >= EPISODE_LENGTH, False, {}


class BadPartsEnv(gym.Env):
    """A Dict observation with one part the multi-input torso refuses, under key 'bad'."""

    metadata = {"render_modes": []}

    def __init__(self, *, bad: gym.Space, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Dict({"clock": parts_space()["clock"], "bad": bad})
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


# id -> the bad part: each refused with one line naming key 'bad' and what is allowed
BAD_PARTS = {
    "TestOnly/BadNested-v0": gym.spaces.Dict({"inner": gym.spaces.Discrete(2)}),
    "TestOnly/BadMultiDiscrete-v0": gym.spaces.MultiDiscrete([2, 3]),
    "TestOnly/BadRank4-v0": gym.spaces.Box(0, 1, (2, 2, 2, 2), np.float32),
    "TestOnly/BadDiscreteStart-v0": gym.spaces.Discrete(3, start=1),
}

for env_id, kwargs in {SPEC: {}, TUPLE_SPEC: {"form": "tuple"}, MASKED_SPEC: {"form": "masked"}}.items():
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=CueImageEnv, kwargs=kwargs)
for env_id, bad in BAD_PARTS.items():
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=BadPartsEnv, kwargs={"bad": bad})
