"""Config validates itself on construction: wrong values and wrong types raise ConfigError."""

from __future__ import annotations

import dataclasses

import pytest

from dqn_family.configs import Config, ConfigError, UserError


def test_config_defaults_are_valid():
    config = Config()
    assert (config.env_id, config.algo, config.gamma, config.hidden_sizes) == ("CartPole-v1", "dqn", 0.99, (120, 84))


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().gamma = 0.5  # type: ignore[misc]


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, UserError)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rate": -0.001}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"gamma": -0.1}, r"gamma must be in \[0, 1\]"),
        ({"batch_size": 64, "buffer_size": 32}, r"batch_size \(64\) must not exceed buffer_size \(32\)"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"tau": 0.0}, "tau must be a finite number > 0 and <= 1"),
        ({"epsilon_end": 2.0}, r"epsilon_end must be in \[0, 1\]"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be a finite number > 0 and <= 1,000,000 or none"),
        ({"compile": True, "fused_adam": True}, "compile and fused_adam are both on"),
        ({"hidden_sizes": ()}, "hidden_sizes must be one or more widths >= 1"),
        ({"hidden_sizes": (64, 0)}, "hidden_sizes must be one or more widths >= 1"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda, cuda:N or mps"),
        ({"network": "no_colon"}, "network must look like 'module:Factory'"),
        ({"loss": "l1"}, "loss must be one of huber, mse"),
        ({"env_id": "  "}, "env_id must not be empty"),
    ],
)
def test_config_rejects_invalid_value_naming_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config(**overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rate": "abc"}, "learning_rate must be a number, got 'abc'"),
        ({"learning_rate": "1e-3"}, "learning_rate must be a number"),
        ({"learning_rate": True}, "learning_rate must be a number"),
        ({"double": 1}, "double must be true or false, got 1"),
        ({"total_steps": 1.5}, "total_steps must be an integer"),
        ({"total_steps": True}, "total_steps must be an integer"),
        ({"env_id": 5}, "env_id must be a string"),
        ({"hidden_sizes": (64, "64")}, "hidden_sizes must be a list of integers"),
        ({"max_grad_norm": "none"}, "max_grad_norm must be a number or none"),
    ],
)
def test_config_rejects_wrong_type_naming_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config(**overrides)


def test_config_accepts_none_for_optional_fields():
    config = Config(max_grad_norm=None, run_dir=None, network=None)
    assert (config.max_grad_norm, config.run_dir, config.network) == (None, None, None)


def test_config_accepts_integer_for_float_field():
    assert Config(learning_rate=1).learning_rate == 1


def test_config_rejects_huge_integer_learning_rate_with_config_error():
    with pytest.raises(ConfigError, match="learning_rate"):
        Config(learning_rate=10**400)


def test_config_choices_are_read_from_the_registries():
    from dqn_family.agents.dqn import LOSS_FUNCTIONS
    from dqn_family.agents.networks import ACTIVATION_MODULES
    from dqn_family.configs.config import ACTIVATIONS, LOSSES
    from dqn_family.configs.schedules import SCHEDULES

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(Config)}
    assert choices["activation"] == tuple(ACTIVATIONS) == tuple(ACTIVATION_MODULES)
    assert choices["loss"] == tuple(LOSSES) == tuple(LOSS_FUNCTIONS)
    assert choices["exploration_schedule"] == tuple(SCHEDULES)
