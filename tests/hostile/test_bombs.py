"""What is read is bounded (fileio.reading): YAML alias bombs, deep nesting, pickle memo bombs,
endless or special files and duplicate keys each end in one line, quickly, never in a hang, a
memory blow-up or a RecursionError; and error messages print only a short excerpt of a value."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from dqn_family.agents.model_file import ModelFileError, load_model, save_model
from dqn_family.checkpoints import CheckpointError, latest_checkpoint, load_checkpoint, read_manifest
from dqn_family.configs import ConfigError, read_config_file
from dqn_family.fileio import check_depth, short_repr
from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command

ALIAS_BOMB = (
    "seed: ["
    + ", ".join(["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)])
    + "]\n"
)
DEEP_YAML = "seed: " + "[" * 100_000 + "]" * 100_000 + "\n"
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def memo_bomb(levels: int) -> list:
    """A list whose expansion has 2**levels leaves, pickled as `levels` small objects."""
    value: list = [1]
    for _ in range(levels):
        value = [value, value]
    return value


def timed_command(*args, cwd: Path = REPO_ROOT):
    started = time.perf_counter()
    process = run_command(*args, cwd=cwd, timeout=30)
    assert time.perf_counter() - started < 10
    return process


def test_alias_bomb_is_small_but_refused(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert path.stat().st_size < 1024  # 9**9 (387 million) ones once expanded
    with pytest.raises(ConfigError, match="alias"):
        read_config_file(path)


@pytest.mark.parametrize(
    "text, message",
    [
        (DEEP_YAML, "more than 32 deep"),
        ("seed: 1\nlearning_rate: 1e-3\nseed: 2\n", "'seed' twice"),
        ("\xff\xfe", "not UTF-8"),
        ("seed: [1\n", "not valid YAML"),
    ],
)
def test_read_config_file_refuses_with_one_line(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if text != "\xff\xfe" else b"\xff\xfe")
    with pytest.raises(ConfigError, match=message) as raised:
        read_config_file(path)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 400


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_train_config_from_endless_device_is_refused(device):
    process = timed_command(REPO_ROOT / "train.py", "--config", device)
    assert_one_line_error(process, contains="not a regular file")


def test_read_config_file_refuses_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        read_config_file(fifo)


def test_read_config_file_refuses_oversized_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("# " + "x" * (2 << 20) + "\nseed: 1\n")
    with pytest.raises(ConfigError, match="larger than"):
        read_config_file(path)


@pytest.mark.parametrize("bomb", [ALIAS_BOMB, DEEP_YAML], ids=["alias bomb", "deep nesting"])
def test_train_config_bomb_is_one_line(tmp_path, bomb):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    assert_one_line_error(timed_command(REPO_ROOT / "train.py", "--config", path))


@pytest.mark.parametrize("bomb", [ALIAS_BOMB, DEEP_YAML], ids=["alias bomb", "deep nesting"])
@pytest.mark.parametrize("command", ["evaluate.py", "train.py --resume", "aggregate.py"])
def test_run_config_bomb_is_one_line(run_copy, bomb, command):
    (run_copy / "config.yaml").write_text(bomb)
    script, *flags = command.split()
    assert_one_line_error(timed_command(REPO_ROOT / script, *flags, run_copy))


def test_deep_manifest_is_one_line_error(run_copy):
    manifest = latest_checkpoint(run_copy)
    manifest.write_text("[" * 20_000 + "]" * 20_000)  # within the manifest's 64 KB
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_manifest(manifest)
    assert_one_line_error(timed_command(REPO_ROOT / "train.py", "--resume", run_copy))


def test_deep_meta_json_is_left_alone_on_resume(run_copy):
    (run_copy / "meta.json").write_text(DEEP_JSON)
    process = timed_command(REPO_ROOT / "train.py", "--resume", run_copy)
    assert process.returncode == 0, process.stderr[-2000:]
    assert (run_copy / "meta.json").read_text() == DEEP_JSON


@pytest.mark.parametrize("levels, message", [(30, "model format version"), (200, "more than 32 deep")])
def test_model_file_with_memo_bomb_version_is_one_line(tmp_path, levels, message):
    path = tmp_path / "model.pt"
    save_model(path, {}, version=memo_bomb(levels))  # metadata overrides the version field
    assert path.stat().st_size < 100_000
    started = time.perf_counter()
    with pytest.raises(ModelFileError, match=message) as raised:
        load_model(path)
    assert time.perf_counter() - started < 5 and len(str(raised.value)) < 400


def test_evaluate_model_with_memo_bomb_is_one_line(finished_run, tmp_path):
    path = tmp_path / "model.pt"
    payload = torch.load(finished_run / "model_latest.pt", weights_only=True)
    save_model(path, payload["q_network"], version=memo_bomb(30))
    assert_one_line_error(
        timed_command(REPO_ROOT / "evaluate.py", finished_run, "--model", path), contains="model format version"
    )


@pytest.mark.parametrize("what", ["directory", "fifo"])
def test_evaluate_model_path_that_is_not_a_file_says_what_it_is(finished_run, tmp_path, what):
    path = tmp_path / "model.pt"
    path.mkdir() if what == "directory" else os.mkfifo(path)
    line = assert_one_line_error(timed_command(REPO_ROOT / "evaluate.py", finished_run, "--model", path))
    assert ("a folder" if what == "directory" else "FIFO") in line


def test_run_config_that_is_a_fifo_does_not_hang(run_copy):
    (run_copy / "config.yaml").unlink()
    os.mkfifo(run_copy / "config.yaml")
    assert_one_line_error(timed_command(REPO_ROOT / "evaluate.py", run_copy))


def test_check_depth_measures_shared_references_once():
    started = time.perf_counter()
    with pytest.raises(ValueError, match="more than 32 deep"):
        check_depth(memo_bomb(1000), what="value", error=ValueError)
    assert time.perf_counter() - started < 1
    assert check_depth(memo_bomb(31), what="value", error=ValueError)


def test_check_depth_refuses_a_cycle():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="contains itself"):
        check_depth(cycle, what="value", error=ValueError)


def test_short_repr_is_short_for_huge_values():
    assert len(short_repr(memo_bomb(200))) < 100
    assert len(short_repr("x" * 10**6)) < 100
    assert short_repr(3) == "3"


def test_yaml_value_that_cannot_be_built_is_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    for text in ("seed: 2001-02-30\n", "seed: " + "9" * 5000 + "\n"):
        path.write_text(text)
        with pytest.raises(ConfigError, match="cannot be read"):
            read_config_file(path)


def test_checkpoint_state_file_that_is_a_fifo_is_refused_before_hashing(run_copy):
    import hashlib

    manifest_path = latest_checkpoint(run_copy)
    manifest = json.loads(manifest_path.read_text())
    manifest.update(state_bytes=0, state_sha256=hashlib.sha256(b"").hexdigest())
    manifest_path.write_text(json.dumps(manifest))
    state = manifest_path.with_name(manifest["state_file"])
    state.unlink()
    os.mkfifo(state)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="named pipe"):
        load_checkpoint(manifest_path)
    assert time.perf_counter() - started < 5


def test_event_file_that_is_a_fifo_is_refused(run_copy):
    from dqn_family.analysis.runs import read_scalars
    from dqn_family.configs import UserError

    os.mkfifo(run_copy / "events.out.tfevents.0.planted")
    with pytest.raises(UserError, match="named pipe"):
        read_scalars(run_copy, "eval/mean_return")


def test_bf16_tensor_in_replay_state_is_a_value_error():
    from dqn_family.checkpoints import to_arrays

    with pytest.raises(ValueError, match="not a plain array"):
        to_arrays({"rewards": torch.zeros(3, dtype=torch.bfloat16)})
