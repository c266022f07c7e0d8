"""Shared by the hostile-input tests: a finished run to tamper with; running the project's commands
as a user would (a child process) to check they end in one line; train.py flags for a run of
seconds; a small tmpfs to fill up or make read-only (skipped where mounting is refused)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

TINY_FLAGS = [
    "--total-steps",
    "300",
    "--learning-starts",
    "50",
    "--batch-size",
    "8",
    "--buffer-size",
    "300",
    "--hidden-sizes",
    "16",
    "--eval-frequency",
    "0",
    "--checkpoint-every",
    "100",
    "--no-progress",
    "--device",
    "cpu",
]


def error_line(stderr: str, prog: str) -> str:
    """The one line a CLI prints for a bad path or a machine problem: no traceback, bounded."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{prog}: ")]
    assert len(errors) == 1 and len(errors[0]) < 400, stderr
    return errors[0]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs mounted under tmp_path (root and mount permission needed, else skipped)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def remount_read_only(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A short finished CartPole run (model files, config.yaml, checkpoint); copy it before changing it."""
    from dqn_family import train
    from dqn_family.configs import Config

    config = Config(
        env_id="CartPole-v1",
        seed=1,
        total_steps=200,
        learning_starts=50,
        batch_size=8,
        buffer_size=200,
        hidden_sizes=(8,),
        eval_frequency=200,
        eval_episodes=1,
        progress=False,
        device="cpu",
        run_dir=str(tmp_path_factory.mktemp("hostile") / "base"),
    )
    return train.train(config).run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "copied_run"
    shutil.copytree(finished_run, copy)
    return copy


def run_command(
    *args: str | Path, cwd: Path = REPO_ROOT, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python ARGS...`` as a user would type it (``env``: variables added to this process's),
    output captured as text."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(process: subprocess.CompletedProcess, returncode: int = 2, *, contains: str = "") -> str:
    """The command failed with ``returncode`` and one short line on stderr (no traceback)."""
    lines = [line for line in process.stderr.splitlines() if line.strip() and not line.startswith("replay buffer:")]
    assert process.returncode == returncode, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    assert len(lines) == 1, process.stderr[-2000:]
    assert len(lines[0]) < 1000
    assert contains in lines[0]
    return lines[0]
