"""Outputs never replace what is not a regular file (fileio.atomic): a device, FIFO or pipe named
as an output is written through, a symlink's target is replaced (the link stays), a directory is
refused, and only regular files are replaced atomically."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from dqn_family.fileio import atomic_write, write_text_atomic
from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command


def make_char_device(path: Path, major: int, minor: int) -> None:
    """A device node like /dev/null (1, 3) or /dev/full (1, 7) inside tmp_path, so that no test can
    damage the machine's own; skipped where this process may not make one."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except (PermissionError, OSError) as error:
        pytest.skip(f"cannot make a device node here: {error}")


def read_fifo_in_background(path: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


def test_atomic_write_replaces_regular_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_follows_symlink_and_keeps_it(tmp_path):
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    write_text_atomic(link, "new", through_special=True)  # a path the user named
    assert link.is_symlink() and target.read_text() == "new"


def test_atomic_write_refuses_device_unless_written_through(tmp_path):
    device = tmp_path / "null"
    make_char_device(device, 1, 3)
    with pytest.raises(OSError, match="character device, not a regular file"):
        write_text_atomic(device, "x")
    write_text_atomic(device, "x", through_special=True)
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_atomic_write_through_full_device_raises_enospc_and_keeps_device(tmp_path):
    device = tmp_path / "full"
    make_char_device(device, 1, 7)
    with pytest.raises(OSError) as raised:
        write_text_atomic(device, "x" * 10_000, through_special=True)
    assert raised.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_atomic_write_refuses_directory(tmp_path):
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, lambda handle: handle.write(b"x"), through_special=True)


def test_atomic_write_creates_files_with_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.yaml", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "a.yaml").st_mode) == 0o644


def test_evaluate_json_to_fifo_writes_through_and_keeps_fifo(finished_run, tmp_path):
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    thread, received = read_fifo_in_background(fifo)
    process = run_command(REPO_ROOT / "evaluate.py", finished_run, "--episodes", "1", "--json", fifo)
    thread.join(timeout=30)
    assert process.returncode == 0, process.stderr[-2000:]
    assert json.loads(received[0])["episodes"] == 1
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_evaluate_json_to_symlink_updates_target(finished_run, tmp_path):
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("{}")
    link.symlink_to(target)
    process = run_command(REPO_ROOT / "evaluate.py", finished_run, "--episodes", "1", "--json", link)
    assert process.returncode == 0, process.stderr[-2000:]
    assert link.is_symlink() and json.loads(target.read_text())["episodes"] == 1


def test_evaluate_json_to_full_device_is_one_line_and_keeps_device(finished_run, tmp_path):
    device = tmp_path / "full"
    make_char_device(device, 1, 7)
    process = run_command(REPO_ROOT / "evaluate.py", finished_run, "--episodes", "1", "--json", device)
    assert_one_line_error(process, returncode=1, contains="No space left")
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_evaluate_json_to_directory_is_one_line(finished_run, tmp_path):
    process = run_command(REPO_ROOT / "evaluate.py", finished_run, "--episodes", "1", "--json", tmp_path)
    assert_one_line_error(process, contains="directory")


def test_aggregate_json_to_symlink_updates_target(finished_run, tmp_path):
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("{}")
    link.symlink_to(target)
    process = run_command(REPO_ROOT / "aggregate.py", finished_run, "--json", link)
    assert process.returncode == 0, process.stderr[-2000:]
    assert link.is_symlink() and target.read_text().startswith("{\n")


def test_refusing_a_special_run_file_is_one_line_naming_what_is_there(tmp_path):
    from dqn_family.configs.errors import os_error_line

    fifo = tmp_path / "meta.json"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as raised:
        write_text_atomic(fifo, "{}")
    line, code = os_error_line(raised.value)
    assert line == f"{fifo}: is a named pipe (FIFO), not a regular file; refusing to replace it" and code == 2
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_atomic_write_refuses_a_planted_symlink_unless_the_user_named_it(tmp_path):
    victim, link = tmp_path / "victim.txt", tmp_path / "run" / "model_latest.pt"
    victim.write_text("mine")
    link.parent.mkdir()
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link; refusing to write through it"):
        write_text_atomic(link, "theirs")
    assert victim.read_text() == "mine"


def test_atomic_write_refuses_a_dangling_symlink_even_when_named(tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "missing" / "folder" / "x.json")
    with pytest.raises(OSError, match="symbolic link to nothing"):
        write_text_atomic(link, "{}", through_special=True)
    assert not (tmp_path / "missing").exists()


def test_checkpoints_are_never_written_through_a_planted_folder_link(tmp_path):
    from dqn_family.checkpoints import CheckpointError, save_checkpoint

    elsewhere, run_dir = tmp_path / "elsewhere", tmp_path / "run"
    elsewhere.mkdir()
    run_dir.mkdir()
    (run_dir / "checkpoints").symlink_to(elsewhere)
    with pytest.raises(CheckpointError, match="symbolic link"):
        save_checkpoint(run_dir, {"x": 1}, env_step=1, keep=2)
    assert list(elsewhere.iterdir()) == []
