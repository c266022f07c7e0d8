"""envs.pixels: the Atari preprocessing chain, life-loss signalling, FIRE on reset, MinAtar."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dqn_family import envs
from dqn_family.configs import UserError
from dqn_family.envs import EnvOptions, make_env, make_vector_env
from dqn_family.envs.pixels import FireOnReset, LifeLossInfo

pytest.importorskip("ale_py")
pytest.importorskip("minatar")


def _wrappers(env: gym.Env) -> list[type]:
    found = []
    while isinstance(env, gym.Wrapper):
        found.append(type(env))
        env = env.env
    return found


def test_atari_env_gives_stacks_of_four_84x84_uint8_frames():
    env = make_env("ALE/Breakout-v5")
    observation, _ = env.reset(seed=0)
    assert env.observation_space.shape == (4, 84, 84) and observation.dtype == np.uint8
    assert env.unwrapped._frameskip == 1  # frame skipping (with the max of two frames) is AtariPreprocessing's
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    env.close()


def test_atari_options_reach_the_env():
    options = EnvOptions(frame_stack=2, screen_size=64, sticky_actions=0.0, full_action_space=True)
    env = make_env("ALE/Breakout-v5", options=options)
    assert env.observation_space.shape == (2, 64, 64) and env.action_space.n == 18
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    env.close()


def test_atari_breakout_fires_on_reset_and_pong_has_no_lives_wrapper_problem():
    breakout = make_env("ALE/Breakout-v5")
    assert FireOnReset in _wrappers(breakout) and LifeLossInfo in _wrappers(breakout)
    breakout.close()
    freeway = make_env("ALE/Freeway-v5")  # no FIRE action: no FireOnReset
    assert "FIRE" not in freeway.unwrapped.get_action_meanings() and FireOnReset not in _wrappers(freeway)
    freeway.close()


def test_atari_episode_is_a_whole_game_with_life_losses_flagged():
    env = make_env("ALE/Breakout-v5", options=EnvOptions(sticky_actions=0.0))
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    lives_seen, losses, done = [5], 0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        assert info["life_loss"] == (info["lives"] < lives_seen[-1])  # flagged exactly when a life goes
        losses += info["life_loss"]
        lives_seen.append(info["lives"])
        done = terminated or truncated
    # Breakout has 5 lives: the episode ran through all of them and ended with the game.
    assert (losses, lives_seen[-1], terminated) == (5, 0, True)
    env.close()


def test_atari_max_episode_steps_counts_agent_steps_not_frames():
    env = make_env("ALE/Breakout-v5", options=EnvOptions(max_episode_steps=10, sticky_actions=0.0))
    env.reset(seed=0)
    ends = [env.step(0)[2:4] for _ in range(10)]  # (terminated, truncated) per agent step
    assert ends[-1] == (False, True) and not any(any(end) for end in ends[:-1])
    env.close()


def test_atari_vector_env_reports_life_loss_per_sub_env():
    envs = make_vector_env("ALE/Breakout-v5", 2)
    envs.reset(seed=0)
    _, _, _, _, infos = envs.step(np.array([0, 0]))
    assert infos["life_loss"].shape == (2,) and infos["_life_loss"].all()
    envs.close()


def test_minatar_env_has_bool_grids_time_limit_and_sticky_actions():
    env = make_env("MinAtar/Breakout-v1", options=EnvOptions(max_episode_steps=7, sticky_actions=0.1))
    observation, _ = env.reset(seed=0)
    assert observation.shape == (10, 10, 4) and observation.dtype == np.bool_ and env.action_space.n == 3
    assert env.unwrapped.game.sticky_action_prob == pytest.approx(0.1)
    assert gym.wrappers.TimeLimit in _wrappers(env) and env.spec.max_episode_steps == 7
    lengths = []
    for _ in range(50):  # every episode ends by the 7th step, terminated or truncated there
        env.reset()
        for step in range(1, 8):  # noqa: B007 (read after the loop)
            _, _, terminated, truncated, _ = env.step(0)
            if terminated or truncated:
                break
        lengths.append((step, truncated))
        assert terminated or truncated
    assert all(truncated == (step == 7) for step, truncated in lengths) and (7, True) in lengths
    env.close()


def test_missing_pixel_package_is_a_user_error_naming_its_pip_install(monkeypatch):
    def failing_import(name):
        raise ImportError(f"no module named {name}")

    monkeypatch.setattr(gym, "registry", {})  # as if MinAtar had never registered its envs
    monkeypatch.setattr(envs.pixels.importlib, "import_module", failing_import)
    with pytest.raises(
        UserError,
        match=r"needs minatar, which is not installed: "
        r'run `pip install "minatar>=1\.0\.15"`',
    ):
        make_env("MinAtar/Breakout-v1")
