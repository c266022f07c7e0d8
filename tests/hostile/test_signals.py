"""Signals at awkward moments: SIGTERM to multirun.py stops its trials (none is left training);
Ctrl-C while train.py or evaluate.py imports is one line and exit code 130; a signal between the
run directory's creation and the first step leaves a run that --resume continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dqn_family import train
from dqn_family.analysis.multirun import stop_processes
from dqn_family.checkpoints import list_checkpoints
from dqn_family.training import run_dir as run_dir_module
from tests.hostile.conftest import TINY_FLAGS, error_line

CODE_DIR = Path(__file__).resolve().parents[2]

# Runs a script as __main__ with a SIGINT delivered as soon as it starts importing torch.
SIGINT_AT_TORCH_IMPORT = """
import os, runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: a background job starts with it ignored
class SigintAtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, SigintAtTorch())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:  # the field after the state is the parent's pid
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_multirun_sigterm_stops_every_child(tmp_path):
    parent = subprocess.Popen(
        [
            sys.executable,
            "multirun.py",
            "--seeds",
            "1",
            "2",
            "--workers",
            "2",
            "--root",
            str(tmp_path / "root"),
            "--",
            "--total-steps",
            "10000000",
            "--eval-frequency",
            "0",
        ],
        cwd=CODE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(children := children_of(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(children) == 2, "the trials did not start"
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=20)
        assert parent.returncode == 128 + signal.SIGTERM
        assert "stopped by SIGTERM; the running trials were stopped" in err.decode()
        assert not [pid for pid in children if alive(pid)]
    finally:
        parent.kill()
        for pid in children_of(parent.pid):
            os.kill(pid, signal.SIGKILL)


def test_stop_processes_kills_a_child_that_ignores_sigterm():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout.readline() == b"ready\n"
    stop_processes([child], seconds=0.2)
    assert child.returncode == -signal.SIGKILL


def sigint_during_imports(script: str, *args: str) -> subprocess.CompletedProcess:
    """``script ARGS`` (a command past its argument parsing, which needs no torch) interrupted while it
    imports torch."""
    return subprocess.run(
        [sys.executable, "-c", SIGINT_AT_TORCH_IMPORT, script, *args],
        cwd=CODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_train_sigint_during_imports_is_one_line_exit_130():
    done = sigint_during_imports("train.py", "--print-config")
    assert done.returncode == 130 and error_line(done.stderr, "train.py") == "train.py: interrupted"


def test_evaluate_sigint_during_imports_is_one_line_exit_130():
    done = sigint_during_imports("evaluate.py", "no-such-run")
    assert done.returncode == 130 and error_line(done.stderr, "evaluate.py") == "evaluate.py: interrupted"


def test_train_signal_before_the_first_step_leaves_a_resumable_run(tmp_path, capsys, monkeypatch):
    real_create = train.create_run_dir

    def create_then_sigterm(config, device):
        run_dir = real_create(config, device)
        os.kill(os.getpid(), signal.SIGTERM)  # before the loop starts
        return run_dir

    monkeypatch.setattr(train, "create_run_dir", create_then_sigterm)
    handler_before = signal.getsignal(signal.SIGTERM)
    run_dir = tmp_path / "run"
    assert train.main([*TINY_FLAGS, "--run-dir", str(run_dir)]) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM at env step 0" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is handler_before
    assert [step for step, _ in list_checkpoints(run_dir)] == [0]
    monkeypatch.setattr(train, "create_run_dir", real_create)
    assert train.main(["--resume", str(run_dir), "--no-progress"]) == 0
    assert [step for step, _ in list_checkpoints(run_dir)][-1] == 300


def test_create_run_dir_interrupted_leaves_no_directory(tmp_path, tiny_config, monkeypatch):
    def interrupted(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_dir_module, "write_text_atomic", interrupted)  # meta.json, after config.yaml
    config = tiny_config(run_dir=str(tmp_path / "new" / "run"))
    with pytest.raises(KeyboardInterrupt):
        run_dir_module.create_run_dir(config, torch.device("cpu"))
    assert not (tmp_path / "new" / "run").exists()
