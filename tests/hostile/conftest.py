"""Helpers for the hostile-input tests: train.py flags for a run of seconds, the one error line a
CLI must print, and a small tmpfs to fill up or make read-only (skipped where mounting is refused)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

TINY_FLAGS = ["--total-steps", "300", "--learning-starts", "50", "--batch-size", "8", "--buffer-size", "300",
              "--hidden-sizes", "16", "--eval-frequency", "0", "--checkpoint-every", "100", "--no-progress",
              "--device", "cpu"]


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
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def remount_read_only(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True, capture_output=True)
