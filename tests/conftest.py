"""Shared fixtures: a tiny, fast training config (and the test-only envs registered)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import tests.scripted_envs  # noqa: F401  (registers the TestOnly/ envs)
from dqn_family.configs import Config


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., Config]:
    """Config(**overrides) for a run of seconds on the CPU, its run directory under tmp_path."""

    def make(**overrides) -> Config:
        values = dict(
            env_id="CartPole-v1",
            total_steps=300,
            learning_starts=50,
            batch_size=8,
            buffer_size=300,
            train_frequency=4,
            target_update_interval=50,
            epsilon_decay_steps=200,
            hidden_sizes=(16,),
            log_frequency=100,
            eval_frequency=0,
            eval_episodes=2,
            progress=False,
            device="cpu",
            run_dir=str(tmp_path / "run"),
        )
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture(scope="session")
def cartpole_run(tmp_path_factory):
    """One short CartPole run (600 env steps, learning from step 100, evaluated at 300 and 600),
    shared by the tests that only read what a finished run left behind. Returns (config, result)."""
    from dqn_family import train

    config = Config(
        env_id="CartPole-v1",
        seed=3,
        total_steps=600,
        learning_starts=100,
        batch_size=16,
        buffer_size=600,
        train_frequency=4,
        target_update_interval=100,
        epsilon_decay_steps=400,
        hidden_sizes=(16,),
        log_frequency=100,
        eval_frequency=300,
        eval_episodes=2,
        progress=False,
        device="cpu",
        run_dir=str(tmp_path_factory.mktemp("cartpole") / "run"),
    )
    return config, train.train(config)
