"""A scripted pixel env for frame-stack replay tests, and a feeder that steps it as train.py does.

Every frame of ``NumberedFrames`` is distinct: its first pixels spell (env, episode, step). Episode
e of env i would end (terminated) after ``length(e, i)`` steps; a TimeLimit truncates the longer
ones, so both endings occur. The env is wrapped in FrameStackObservation(4) (reset padding) and
stepped in a SyncVectorEnv with NEXT_STEP autoreset, keeping only real steps (AutoresetTracker),
1-step or through an NStepAccumulator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FrameStackObservation, TimeLimit

from dqn_family.envs import AutoresetTracker
from dqn_family.replay import NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer

STACK = 4
FRAME_SHAPE = (6, 6)
OBSERVATION_SHAPE = (STACK, *FRAME_SHAPE)


def short_episodes(episode: int, env_index: int) -> int:
    """1 to 9 steps; with a time limit of 6, lengths 7-9 end truncated."""
    return 1 + (5 * episode + 3 * env_index) % 9


class NumberedFrames(gym.Env):
    """6x6 uint8 frames numbered by (env, episode, step); reward = step."""

    observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, env_index: int, length: Callable[[int, int], int]) -> None:
        self.env_index, self.length = env_index, length
        self.episode, self.t = -1, 0

    def frame(self) -> np.ndarray:
        frame = np.full(FRAME_SHAPE, 7, dtype=np.uint8)
        frame.flat[:5] = [self.env_index, self.episode % 256, self.episode // 256, self.t % 256, self.t // 256]
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self.frame(), {}

    def step(self, action):
        self.t += 1
        return self.frame(), float(self.t), self.t >= self.length(self.episode, self.env_index), False, {}


def make_env(env_index: int, length: Callable[[int, int], int], time_limit: int) -> gym.Env:
    return FrameStackObservation(TimeLimit(NumberedFrames(env_index, length), time_limit), STACK)


def feed(
    buffers: list[ReplayBuffer],
    *,
    num_envs: int,
    n_step: int,
    vector_steps: int,
    length: Callable[[int, int], int] = short_episodes,
    time_limit: int = 6,
    after_step: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Step ``num_envs`` envs and add every transition to each buffer; return counts of what was added."""
    envs = SyncVectorEnv(
        [functools.partial(make_env, i, length, time_limit) for i in range(num_envs)],
        autoreset_mode=AutoresetMode.NEXT_STEP,
    )
    tracker = AutoresetTracker(num_envs)
    accumulator = NStepAccumulator(num_envs, n_step, 0.9) if n_step > 1 else None
    counts = {"transitions": 0, "terminated": 0, "truncated": 0}
    observations, _ = envs.reset(seed=0)
    for step in range(vector_steps):
        actions = np.full(num_envs, step % 2)
        next_observations, rewards, terminated, truncated, _ = envs.step(actions)
        real = tracker.real_steps(terminated, truncated)
        if accumulator is None:  # as train.py: the real steps are the transitions
            transitions = dict(
                observations=observations[real],
                actions=actions[real],
                rewards=rewards[real],
                next_observations=next_observations[real],
                terminated=terminated[real],
                truncated=truncated[real],
                discounts=0.9,
            )
        else:
            transitions = accumulator.push(
                observations, actions, rewards, next_observations, terminated, truncated, real
            ).as_dict()
        for buffer in buffers:
            buffer.add(**transitions)
        counts["transitions"] += len(transitions["actions"])
        counts["terminated"] += int(np.sum(transitions["terminated"]))
        counts["truncated"] += int(np.sum(transitions["truncated"]))
        observations = next_observations
        if after_step is not None:
            after_step()
    envs.close()
    return counts


def make_buffer(kind: str, *, capacity: int, stacked_frames: bool, seed: int = 0, **frame_options) -> ReplayBuffer:
    options = dict(
        capacity=capacity,
        observation_shape=OBSERVATION_SHAPE,
        observation_dtype=np.dtype(np.uint8),
        seed=seed,
        stacked_frames=stacked_frames,
        **frame_options,
    )
    return PrioritizedReplayBuffer(**options, alpha=0.6) if kind == "prioritized" else ReplayBuffer(**options)


def distinct_frames(buffer: ReplayBuffer) -> int:
    """How many different frames the stored observations and next observations hold, by content."""
    observations, next_observations = buffer.storage.read(np.arange(len(buffer)))
    frames = np.concatenate([observations, next_observations]).reshape(-1, np.prod(FRAME_SHAPE))
    return len(np.unique(frames, axis=0))
