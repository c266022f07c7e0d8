"""What the command line tells before anything trains: --print-config (the resolved config with
each value's source, itself a valid --config file), --help with the presets' values, and the same
unknown-key message from Python as from YAML."""

from __future__ import annotations

import pytest
import yaml

from dqn_family import train
from dqn_family.configs import ConfigError, config_to_dict, resolve_config


def test_print_config_is_the_resolved_config_and_trains_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train.main(["--env", "CartPole-v1", "--algo", "c51", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed) == config_to_dict(resolve_config({"env_id": "CartPole-v1", "algo": "c51"}))
    assert "total_steps: 50000  # configs/dqn/CartPole-v1.yaml" in printed.splitlines()
    assert "algo: c51" in printed.splitlines()  # given on the command line: no source comment
    assert not (tmp_path / "runs").exists()


def test_print_config_output_is_a_config_file_giving_the_same_config(tmp_path, capsys):
    assert train.main(["--algo", "rainbow", "--learning-rate", "1e-3", "--print-config"]) == 0
    path = tmp_path / "printed.yaml"
    path.write_text(capsys.readouterr().out)
    assert resolve_config({}, str(path)) == resolve_config({"algo": "rainbow", "learning_rate": 1e-3})


def test_print_config_names_the_noisy_rule_for_epsilon(capsys):
    assert train.main(["--algo", "rainbow", "--print-config"]) == 0
    assert "epsilon_start: 0.0  # the noisy rule" in capsys.readouterr().out.splitlines()


def test_help_shows_the_preset_value_and_its_source(capsys):
    with pytest.raises(SystemExit):
        train.main(["--env", "LunarLander-v3", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: 300000 from configs/dqn/LunarLander-v3.yaml; Config's default 500000)" in help_text


def test_help_without_env_shows_the_cartpole_preset(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert "50000 from configs/dqn/CartPole-v1.yaml" in " ".join(capsys.readouterr().out.split())


def test_resolve_config_unknown_key_from_python_is_the_yaml_message():
    with pytest.raises(ConfigError, match="unknown config key 'env' in the settings given; did you mean 'env_id'"):
        resolve_config({"env": "CartPole-v1"})


def test_resolve_config_names_the_file_a_clashing_value_comes_from():
    with pytest.raises(
        ConfigError,
        match=r"learning_rate_end=0.0001 comes from configs/dqn/CartPole-v1.yaml; "
        r"set it with --learning-rate-end VALUE \(or none\)",
    ):
        resolve_config({"env_id": "CartPole-v1", "learning_rate": 5e-5})
