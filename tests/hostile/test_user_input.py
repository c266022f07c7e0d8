"""Bad user input that once got a traceback or a misleading line: a device torch knows but we do
not allow (meta) or no device at all; a model path that is a folder, a FIFO, a device or a
dangling link; a preset value that clashes with a flag (the line says which file it came from)."""

from __future__ import annotations

import os

import pytest

from dqn_family import evaluate
from dqn_family.agents import resolve_device
from dqn_family.agents.model_file import ModelFileError, load_model
from dqn_family.configs import ConfigError, resolve_config
from tests.hostile.conftest import error_line


@pytest.mark.parametrize("spec", ["bogus", "meta", "cuda:x", ""])
def test_resolve_device_refuses_what_config_refuses(spec):
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps"):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["bogus", "meta"])
def test_evaluate_bad_device_is_one_line_exit_2(spec, tmp_path, capsys):
    assert evaluate.main([str(tmp_path), "--device", spec]) == 2
    assert f"got {spec!r}" in error_line(capsys.readouterr().err, "evaluate.py")


def test_load_model_of_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder, not a regular file"):
        load_model(tmp_path)


def test_load_model_of_a_fifo_says_it_is_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ModelFileError, match=r"is a named pipe \(FIFO\), not a regular file"):
        load_model(tmp_path / "pipe")


def test_load_model_of_a_device_says_it_is_a_device():
    with pytest.raises(ModelFileError, match="/dev/null is a character device, not a regular file"):
        load_model("/dev/null")


def test_load_model_of_a_dangling_link_says_so(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone.pt")
    with pytest.raises(ModelFileError, match="is a symbolic link to nothing"):
        load_model(tmp_path / "link")


def test_load_model_of_a_missing_file_says_it_does_not_exist(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_resolve_config_names_the_preset_a_clashing_value_comes_from():
    with pytest.raises(ConfigError) as raised:
        resolve_config({"env_id": "CartPole-v1", "learning_rate": 5e-5})
    message = str(raised.value)
    assert message.startswith("learning_rate_end must be in [0, learning_rate], got 0.0001")
    assert (
        "learning_rate_end=0.0001 comes from configs/dqn/CartPole-v1.yaml; "
        "set it with --learning-rate-end VALUE (or none)"
    ) in message
    assert "learning_rate=" not in message  # the flag given is not blamed on a file


def test_resolve_config_names_the_config_file_a_clashing_value_comes_from(tmp_path):
    (tmp_path / "mine.yaml").write_text("learning_rate_end: 0.5\n")
    with pytest.raises(ConfigError, match=rf"learning_rate_end=0.5 comes from --config {tmp_path}/mine.yaml"):
        resolve_config({"env_id": "CartPole-v1"}, str(tmp_path / "mine.yaml"))


def test_resolve_config_error_about_a_flag_alone_is_unchanged():
    with pytest.raises(ConfigError, match=r"^gamma must be in \[0, 1\], got 2.0$"):
        resolve_config({"gamma": 2.0})
