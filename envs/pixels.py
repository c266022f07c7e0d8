"""Pixel envs: Atari through ale-py with the standard DQN preprocessing, and MinAtar.

Atari (Mnih et al. 2015; Machado et al. 2018 for sticky actions), built from Gymnasium's own
wrappers where they exist::

    ALE env (frameskip 1, sticky actions p)   -> AtariPreprocessing: up to noop_max no-ops at reset,
                                                 frame skip k with a max over the last two frames,
                                                 84x84 grayscale uint8
    -> FireOnReset (games whose play starts with FIRE)
    -> LifeLossInfo (info["life_loss"]: the step lost a life)
    -> TimeLimit (only with max_episode_steps: agent steps; else ALE v5's 108,000 frames)
    -> FrameStackObservation(4)                -> observations uint8 [4, 84, 84]

Rewards stay the game's own and an episode is a whole game (all lives), so logged returns and
evaluations are real scores. What learning sees differently (:func:`learning_signal`, applied by
the training loop): ``clip_rewards`` (sign of the reward) and ``terminal_on_life_loss`` (a lost
life ends the n-step window and is not bootstrapped, read from ``info["life_loss"]``).

MinAtar (Young & Tian 2019) registers its envs only through ``minatar.gym.register_envs()`` and
sets no time limit, so ``max_episode_steps`` matters there (its presets set one).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypedDict, cast

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from dqn_family.configs.loading import env_family
from dqn_family.envs.packages import missing_package


@dataclass(frozen=True)
class EnvOptions:
    """How to build an env beyond its id; the same names as the Config fields they come from."""

    frame_skip: int = 4
    frame_stack: int = 4
    noop_max: int = 30
    screen_size: int = 84
    sticky_actions: float = 0.25
    full_action_space: bool = False
    max_episode_steps: int | None = None

    @classmethod
    def of(cls, config: Any) -> EnvOptions:
        """The options named like this class's fields, read from a Config (or any object)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


def learning_signal(
    config: Any, rewards: np.ndarray, terminated: np.ndarray, infos: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """What learning sees of a vector step: sign(reward) under ``clip_rewards``, and a lost life
    as terminal under ``terminal_on_life_loss`` (Atari envs report it as ``info["life_loss"]``).
    Logged returns and episode ends stay the env's own. ``config`` is a Config (or anything with
    those two fields)."""
    if config.clip_rewards:
        rewards = np.sign(rewards)
    if config.terminal_on_life_loss and "life_loss" in infos:
        terminated = terminated | (infos["life_loss"] & infos["_life_loss"])
    return rewards, terminated


def make_pixel_env(env_id: str, options: EnvOptions, render_mode: str | None) -> gym.Env:
    """An Atari or MinAtar env built as the module docstring says."""
    if env_family(env_id) == "atari":
        _register(env_id, "ale_py", "ale-py", "atari")
        env = gym.make(
            env_id,
            frameskip=1,
            repeat_action_probability=options.sticky_actions,
            full_action_space=options.full_action_space,
            render_mode=render_mode,
        )
        # terminal_on_life_loss stays False here: a life loss is signalled in info, for learning only.
        env = AtariPreprocessing(
            env,
            noop_max=options.noop_max,
            frame_skip=options.frame_skip,
            screen_size=options.screen_size,
            terminal_on_life_loss=False,
            grayscale_obs=True,
            scale_obs=False,
        )
        if "FIRE" in action_meanings(env):
            env = FireOnReset(env)
        env = LifeLossInfo(env)
        if options.max_episode_steps is not None:  # here, outside the frame skip, it counts agent steps
            env = gym.wrappers.TimeLimit(env, options.max_episode_steps)
        return FrameStackObservation(env, options.frame_stack)
    _register(env_id, "minatar.gym", "minatar", "minatar")
    return gym.make(
        env_id, sticky_action_prob=options.sticky_actions, render_mode=render_mode, **time_limit_kwargs(options)
    )


class TimeLimitKwargs(TypedDict, total=False):
    """``gym.make``'s time-limit keyword: absent to keep the env's own limit."""

    max_episode_steps: int


def time_limit_kwargs(options: EnvOptions) -> TimeLimitKwargs:
    """``gym.make``'s max_episode_steps keyword when the options set a limit (else the env's own)."""
    return {} if options.max_episode_steps is None else {"max_episode_steps": options.max_episode_steps}


def _register(env_id: str, module_name: str, package: str, extra: str) -> None:
    """Register the package's envs unless ``env_id`` is known (registering twice only warns)."""
    if env_id in gym.registry:
        return
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise missing_package(f"env {env_id!r}", package, extra) from None
    if module_name == "ale_py":
        module.ALEInterface.setLoggerMode(module.LoggerMode.Error)  # no banner on stderr for each game made
        gym.register_envs(module)
    else:
        module.register_envs()


class _NamesActions(Protocol):
    def get_action_meanings(self) -> list[str]: ...


def action_meanings(env: gym.Env) -> list[str]:
    """The names of an Atari env's actions ("NOOP", "FIRE", ...)."""
    # The ALE's AtariEnv has them; gym.Env's type does not say so, and ale_py is an optional import.
    return cast(_NamesActions, env.unwrapped).get_action_meanings()


class FireOnReset(gym.Wrapper):
    """Press FIRE after a reset and after each lost life, in games that wait for FIRE to (re)start
    play (Breakout, ...). Lives end episodes only for learning here (see the module docstring), so
    the env is not reset between lives; without this the game would sit still until the agent
    happens to press FIRE."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.fire = action_meanings(env).index("FIRE")

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        observation, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:  # practically never; start over rather than return an ended game
            observation, info = self.env.reset(**kwargs)
        return observation, info

    def step(self, action):
        lives = self.env.unwrapped.ale.lives()
        observation, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated) and self.env.unwrapped.ale.lives() < lives:
            observation, fire_reward, terminated, truncated, info = self.env.step(self.fire)
            reward += fire_reward
        return observation, reward, terminated, truncated, info


class LifeLossInfo(gym.Wrapper):
    """Adds ``info["life_loss"]``: True on a step that lost one or more lives."""

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return observation, {**info, "life_loss": False}

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        info = {**info, "life_loss": lives < self.lives}
        self.lives = lives
        return observation, reward, terminated, truncated, info
