"""tuning.space: search-space files read into typed ranges, every mistake one line naming the
file and the key, and the shipped spaces valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn_family.agents import AGENTS
from dqn_family.configs import ConfigError
from dqn_family.tuning.space import (
    SPACE_DIR,
    Choice,
    FloatRange,
    IntRange,
    config_value,
    load_space,
    shipped_space_path,
    space_to_dict,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_space_reads_each_kind_of_range(tmp_path):
    path = write(
        tmp_path,
        "learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
        "target_update_interval: {type: int, low: 100, high: 500, step: 100}\n"
        "batch_size: {type: categorical, choices: [32, 64]}\n"
        "hidden_sizes: {type: categorical, choices: ['64,64', [32, 16, 8]]}\n",
    )
    assert load_space(path) == {
        "learning_rate": FloatRange("learning_rate", 1e-4, 1e-2, log=True),
        "target_update_interval": IntRange("target_update_interval", 100, 500, step=100),
        "batch_size": Choice("batch_size", (32, 64)),
        "hidden_sizes": Choice("hidden_sizes", ("64,64", "32,16,8")),
    }


def test_load_space_round_trips_through_space_to_dict(tmp_path):
    space = load_space(
        write(tmp_path, "n_step: {type: int, low: 1, high: 5}\ndouble: {type: categorical, choices: [true, false]}\n")
    )
    assert space_to_dict(space) == {
        "n_step": {"type": "IntRange", "low": 1, "high": 5, "step": 1, "log": False},
        "double": {"type": "Choice", "choices": [True, False]},
    }


def test_config_value_turns_width_strings_into_tuples():
    assert config_value("hidden_sizes", "64,32") == (64, 32)
    assert config_value("batch_size", 64) == 64


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "learnin_rate: {type: float, low: 0.1, high: 0.2}",
            "'learnin_rate' is not a config field; did you mean 'learning_rate'",
        ),
        ("seed: {type: int, low: 1, high: 5}", "'seed' cannot be tuned"),
        ("device: {type: categorical, choices: [cpu]}", "'device' cannot be tuned"),
        ("gamma: {type: float, low: 0.99, high: 0.9}", "'gamma': low (0.99) is above high (0.9)"),
        (
            "learning_rate: {type: float, low: 0.0, high: 0.01, log: true}",
            "'learning_rate': a log range must be above 0",
        ),
        (
            "learning_rate: {type: float, low: 0.001, high: 20.0}",
            "'learning_rate': high 20.0 is outside the field's allowed",
        ),
        ("gamma: {type: float, low: -0.5, high: 0.9}", "'gamma': low -0.5 is outside the field's allowed"),
        ("learning_rate: {type: float, low: 1e-4, high: 0.01}", "low must be a finite number, got '1e-4' (YAML reads"),
        ("batch_size: {type: float, low: 32, high: 64}", "'batch_size' is a int field; use type: int"),
        ("batch_size: {type: int, low: 32.5, high: 64}", "'batch_size': low must be an integer"),
        ("batch_size: {type: int, low: 32, high: 100, step: 32}", "high - low (68) must be a multiple of step (32)"),
        ("batch_size: {type: int, low: 32, high: 64, steps: 2}", "'batch_size': steps is not allowed with type int"),
        ("batch_size: {type: uniform, low: 32, high: 64}", "'batch_size' must be a mapping with type: float, int or"),
        ("batch_size: {type: categorical, choices: []}", "'batch_size': choices must be a list of 1 to"),
        ("batch_size: {type: categorical, choices: [32, 32]}", "choices lists the same value twice"),
        ("batch_size: {type: categorical, choices: [32, '64']}", "'batch_size': choice '64' is outside"),
        ("double: {type: categorical, choices: [true, 1]}", "'double': choice 1 is outside"),
        ("loss: {type: categorical, choices: [huber, l1]}", "'loss': choice 'l1' is outside"),
        ("hidden_sizes: {type: categorical, choices: ['64,x']}", "each choice must be widths like"),
        ("hidden_sizes: {type: categorical, choices: ['0,64']}", "'hidden_sizes': choice '0,64' is outside"),
        ("gamma: null", "'gamma' must be a mapping with type"),
        ("[1, 2]", "must be a mapping of config field"),
        ("", "must be a mapping of config field"),
    ],
)
def test_load_space_refuses_mistakes_with_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as error:
        load_space(path)
    assert message in str(error.value)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_load_space_refuses_yaml_aliases(tmp_path):
    path = write(tmp_path, "n_step: &r {type: int, low: 1, high: 3}\ntrain_frequency: *r\n")
    with pytest.raises(ConfigError, match="alias"):
        load_space(path)


def test_load_space_checks_batch_size_against_the_largest_buffer_not_the_default(tmp_path):
    # 200,000 is above Config's default buffer_size (100,000) but a valid batch with a bigger buffer.
    path = write(tmp_path, "batch_size: {type: categorical, choices: [200000]}\n")
    assert load_space(path)["batch_size"].choices == (200000,)


@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_shipped_space_exists_and_loads_for_every_algo(algo):
    path = shipped_space_path("CartPole-v1", algo)
    assert path.parent == SPACE_DIR and path.name == f"{algo}.yaml"
    assert load_space(path)
