"""Values that pass a type check but cannot work (a seed torch refuses, a billion n-step slots, an
infinite Adam epsilon) are refused by Config with one line naming the field and its allowed range,
before anything is built; the range is stated in the field's help, which the README reproduces."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dqn_family.configs import Config, ConfigError
from dqn_family.configs.config import SEED_MAX, field_kind

REPO_ROOT = Path(__file__).resolve().parents[2]

# (overrides, field named, its range as the message states it): the values, then the rest of the class.
CASES = [
    ({"seed": 18446744073709551616}, "seed", ">= 0 and <= 4,294,967,295"),
    ({"torch_threads": 100000}, "torch_threads", ">= 0 and <= 1,024"),
    ({"algo": "c51", "num_atoms": 100000000}, "num_atoms", ">= 2 and <= 10,000"),
    ({"n_step": 1000000000}, "n_step", ">= 1 and <= 1,000"),
    ({"env_id": "ALE/Pong-v5", "screen_size": 100000}, "screen_size", ">= 1 and <= 1,024"),
    ({"learning_rate": 1e38}, "learning_rate", "a finite number > 0 and <= 10"),
    ({"v_min": -1e39, "v_max": 1e39}, "v_min", "a finite number >= -1,000,000 and <= 1,000,000"),
    ({"v_max": 1e39}, "v_max", "a finite number >= -1,000,000 and <= 1,000,000"),
    ({"noisy_sigma0": 1e308}, "noisy_sigma0", "a finite number > 0 and <= 10"),
    ({"priority_epsilon": float("inf")}, "priority_epsilon", "a finite number > 0 and <= 1"),
    ({"adam_eps": float("inf")}, "adam_eps", "a finite number > 0 and <= 1"),
    ({"adam_eps": float("nan")}, "adam_eps", "a finite number > 0 and <= 1"),
    ({"max_grad_norm": float("inf")}, "max_grad_norm", "a finite number > 0 and <= 1,000,000 or none"),
    ({"total_steps": 10**13}, "total_steps", ">= 1 and <= 1,000,000,000,000"),
    ({"buffer_size": 10**10}, "buffer_size", ">= 1 and <= 1,000,000,000"),
    ({"num_envs": 5000}, "num_envs", ">= 1 and <= 1,024"),
    ({"num_quantiles": 10**6}, "num_quantiles", ">= 1 and <= 10,000"),
    ({"gradient_steps": 10**6}, "gradient_steps", ">= 1 and <= 10,000"),
    ({"eval_episodes": 10**6}, "eval_episodes", ">= 1 and <= 10,000"),
    ({"frame_stack": 1000}, "frame_stack", ">= 1 and <= 64"),
    ({"max_episode_steps": 10**10}, "max_episode_steps", ">= 1 and <= 1,000,000,000 or none"),
    ({"keep_checkpoints": 10**6}, "keep_checkpoints", ">= 1 and <= 1,000"),
    ({"tau": float("nan")}, "tau", "a finite number > 0 and <= 1"),
    ({"sticky_actions": float("nan")}, "sticky_actions", "in [0, 1]"),
]


@pytest.mark.parametrize("overrides, name, allowed", CASES, ids=[case[1] for case in CASES])
def test_config_out_of_range_value_is_one_line_naming_field_and_range(overrides, name, allowed):
    with pytest.raises(ConfigError) as caught:
        Config(**overrides)
    message = str(caught.value)
    assert message.startswith(f"{name} must be {allowed}, got "), message
    assert "\n" not in message and len(message) < 200


def test_config_huge_integer_is_reported_without_printing_it():
    with pytest.raises(ConfigError, match=r"^seed must be .*, got an integer of 16,610 bits$"):
        Config(seed=10**5000)


def test_config_long_string_is_quoted_cut_short():
    with pytest.raises(ConfigError) as caught:
        Config(device="x" * 100_000)
    assert len(str(caught.value)) < 200 and str(caught.value).endswith("...")


def test_config_env_id_longer_than_256_characters_is_refused_without_quoting_it():
    with pytest.raises(ConfigError, match=r"^env_id must be at most 256 characters, got 100,000$"):
        Config(env_id="x" * 100_000)


def test_config_hidden_sizes_bounds_width_and_layers():
    with pytest.raises(
        ConfigError,
        match=r"hidden_sizes must be one or more widths >= 1 and <= 16,384 "
        r"\(at most 64 layers\), got \[100000\]",
    ):
        Config(hidden_sizes=(100_000,))
    with pytest.raises(ConfigError, match="at most 64 layers"):
        Config(hidden_sizes=(4,) * 65)


def test_config_accepts_the_ends_of_each_range():
    config = Config(
        seed=SEED_MAX,
        torch_threads=1024,
        n_step=1000,
        num_atoms=10_000,
        screen_size=1024,
        learning_rate=10.0,
        adam_eps=1.0,
        v_min=-1e6,
        v_max=1e6,
        noisy_sigma0=10.0,
        priority_epsilon=1.0,
        total_steps=10**12,
        hidden_sizes=(16_384,),
    )
    assert (config.seed, config.n_step, config.v_min) == (4_294_967_295, 1000, -1e6)


def test_config_every_numeric_field_states_its_range_in_its_help():
    for f in dataclasses.fields(Config):
        kind, _ = field_kind(f)
        if kind in (int, float, tuple):
            assert re.search(r"(Must be|each) .*(<=|\[0, 1\]|\[0, learning_rate\])", f.metadata["help"]), f.name


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed", "18446744073709551616"], "seed must be >= 0 and <= 4,294,967,295, got 18446744073709551616"),
        (["--learning-rate", "1e38"], "learning_rate must be a finite number > 0 and <= 10, got 1e+38"),
        (
            ["--v-min=-1e39", "--v-max", "1e39"],
            "v_min must be a finite number >= -1,000,000 and <= 1,000,000, got -1e+39",
        ),
        (["--env", "ALE/Pong-v5", "--screen-size", "100000"], "screen_size must be >= 1 and <= 1,024, got 100000"),
        (["--adam-eps", "inf"], "adam_eps must be a finite number > 0 and <= 1, got inf"),
    ],
)
def test_train_cli_out_of_range_value_exits_2_with_one_line(tmp_path, argv, message):
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *argv, "--run-dir", str(tmp_path / "run")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert completed.returncode == 2
    assert completed.stderr == f"train.py: error: {message}\n"
    assert not (tmp_path / "run").exists()
