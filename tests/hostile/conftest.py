"""Shared by the hostile-input tests: a finished run to tamper with, and running the project's
commands as a user would (a child process) to check they end in one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A short finished CartPole run (model files, config.yaml, checkpoint); copy it before changing it."""
    import train
    from configs import Config

    config = Config(env_id="CartPole-v1", seed=1, total_steps=200, learning_starts=50, batch_size=8, buffer_size=200,
                    hidden_sizes=(8,), eval_frequency=200, eval_episodes=1, progress=False, device="cpu",
                    run_dir=str(tmp_path_factory.mktemp("hostile") / "base"))
    return train.train(config).run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "copied_run"
    shutil.copytree(finished_run, copy)
    return copy


def run_command(*args: str | Path, cwd: Path = REPO_ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python ARGS...`` as a user would type it, output captured as text."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_error(process: subprocess.CompletedProcess, returncode: int = 2, *, contains: str = "") -> str:
    """The command failed with ``returncode`` and one short line on stderr (no traceback)."""
    lines = [line for line in process.stderr.splitlines() if line.strip() and not line.startswith("replay buffer:")]
    assert process.returncode == returncode, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    assert len(lines) == 1, process.stderr[-2000:]
    assert len(lines[0]) < 1000
    assert contains in lines[0]
    return lines[0]
