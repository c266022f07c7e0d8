"""Checkpoint files: their layout on disk, a write protocol that survives a kill at any moment, and
loading that never runs code.

In ``RUN_DIR/checkpoints/``, one checkpoint is two files::

    step_000000050000.pt    the training state: torch.save of a plain dict of tensors, numbers,
                            strings, lists, tuples and dicts (never a pickled object)
    step_000000050000.json  its manifest: format, version, env step, the state file's size and SHA-256

Writing (:func:`save_checkpoint`):

1. the state goes to a temporary file in the same folder (hashed as it is written), is flushed
   and fsynced, renamed to ``step_N.pt``, and the folder is fsynced;
2. the manifest is written the same way. Its rename is the commit point: a checkpoint exists
   once its manifest does, so a kill before then leaves the previous checkpoint as the latest;
3. only then are checkpoints beyond the newest ``keep`` deleted (manifest first, so no manifest
   ever names a missing file), with the leftovers of interrupted writes.

Reading (:func:`load_checkpoint`): the manifest is JSON; the state file must have the size and
SHA-256 it records before it is opened, and it is opened with ``torch.load(weights_only=True)``,
whose restricted unpickler refuses every global but tensors and plain containers, so a planted
payload is refused, never run. The latest checkpoint is the manifest with the highest step; a
damaged one is reported, never silently skipped (that would quietly go back in time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from dqn_family.configs.config import is_int
from dqn_family.configs.errors import UserError
from dqn_family.fileio import atomic_write, load_json, one_line, require_regular_file, short_repr, write_text_atomic
from dqn_family.fileio.torch_files import safe_torch_load

CHECKPOINT_FORMAT = "dqn-family-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_FOLDER = "checkpoints"
_NAME = re.compile(r"^step_(\d{12})\.(pt|json)$")
_MANIFEST_MAX_BYTES = 64 * 1024
# Tests only: "SECONDS" pauses at every stage of every checkpoint write, "SECONDS:STAGE:STEP" at
# one stage of one step's write; each stage is announced on stderr as "checkpoint-test: STAGE STEP",
# so that a test can kill the process at that very moment.
PAUSE_ENV = "DQN_FAMILY_TEST_CHECKPOINT_PAUSE"
STAGES = ("writing-state", "state-renamed", "committed", "pruning")


class CheckpointError(UserError):
    """A checkpoint that is missing, damaged, unsafe, of another version, or of another run."""


def checkpoint_folder(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FOLDER


def _stem(env_step: int) -> str:
    return f"step_{env_step:012d}"


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], *, env_step: int, keep: int) -> Path:
    """Write ``state`` as the checkpoint of ``env_step`` (see the module docstring for the
    protocol), keep the newest ``keep`` checkpoints, and return the new manifest's path."""
    folder = checkpoint_folder(run_dir)
    if folder.is_symlink():  # a run directory from someone else must not make us write elsewhere
        raise CheckpointError(f"{folder} is a symbolic link; checkpoints are written only into a real folder")
    folder.mkdir(exist_ok=True)
    stem = _stem(env_step)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "env_step": env_step, **state}
    writer: _HashingWriter | None = None

    def write(handle: BinaryIO) -> None:
        nonlocal writer
        writer = _HashingWriter(handle, env_step)
        # torch.save only writes and flushes; its annotation asks for a whole IO[bytes].
        torch.save(payload, cast(BinaryIO, writer))

    atomic_write(folder / f"{stem}.pt", write)
    assert writer is not None  # atomic_write has called write() (it raises if writing failed)
    _test_pause("state-renamed", env_step)
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "env_step": env_step,
        "state_file": f"{stem}.pt",
        "state_bytes": writer.size,
        "state_sha256": writer.sha256.hexdigest(),
    }
    write_text_atomic(folder / f"{stem}.json", json.dumps(manifest, indent=2) + "\n")
    _test_pause("committed", env_step)
    _prune(folder, keep, env_step)
    return folder / f"{stem}.json"


class _HashingWriter:
    """A write-only file that hashes and counts what passes through (torch.save only writes)."""

    def __init__(self, handle: BinaryIO, env_step: int) -> None:
        self.handle, self.env_step = handle, env_step
        self.sha256, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        written = self.handle.write(data)
        if self.size == len(data):  # the first write: a test may stop here, with half a file on disk
            self.handle.flush()
            _test_pause("writing-state", self.env_step)
        return written

    def flush(self) -> None:
        self.handle.flush()


def _prune(folder: Path, keep: int, env_step: int) -> None:
    committed = sorted(step for step, _ in list_checkpoints(folder.parent))
    for step in committed[:-keep]:
        (folder / f"{_stem(step)}.json").unlink(missing_ok=True)
        _test_pause("pruning", env_step)
        (folder / f"{_stem(step)}.pt").unlink(missing_ok=True)
    kept = set(committed[-keep:])
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        orphan_state = match is not None and match[2] == "pt" and int(match[1]) not in kept
        leftover_temp = path.name.startswith(".step_") and path.name.endswith(".tmp")
        if orphan_state or leftover_temp:  # what interrupted writes left behind
            path.unlink(missing_ok=True)


def _test_pause(stage: str, env_step: int) -> None:
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    print(f"checkpoint-test: {stage} {env_step}", file=sys.stderr, flush=True)
    seconds, _, where = spec.partition(":")
    if not where or where == f"{stage}:{env_step}":
        time.sleep(float(seconds))


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(env step, manifest path) of every committed checkpoint of a run, oldest first."""
    folder = checkpoint_folder(run_dir)
    if not folder.is_dir():
        return []
    found = [
        (int(match[1]), path)
        for path in folder.iterdir()
        if (match := _NAME.match(path.name)) is not None and match[2] == "json"
    ]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The manifest of the newest checkpoint; CheckpointError if there is none."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(
            f"{run_dir} has no checkpoint to resume from (none is written before "
            "the first --checkpoint-every env steps, or the exit)"
        )
    return found[-1][1]


def load_checkpoint(manifest_path: str | Path) -> dict[str, Any]:
    """Check a checkpoint against its manifest and load its state; any problem is a one-line
    CheckpointError, and no code from the file ever runs."""
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    state_path = manifest_path.with_name(manifest["state_file"])
    _verify(state_path, manifest)
    payload = safe_torch_load(state_path, what="checkpoint", error=CheckpointError)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{state_path} is not a checkpoint of this project (format {CHECKPOINT_FORMAT!r})")
    _check_version(payload.get("version"), state_path)
    if not (is_int(payload.get("env_step")) and payload["env_step"] == manifest["env_step"]):
        raise CheckpointError(
            f"{state_path} holds env step {short_repr(payload.get('env_step'))}, "
            f"its manifest says {manifest['env_step']}"
        )
    return payload


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A checkpoint manifest, checked field by field."""
    path = Path(path)
    manifest = load_json(path, max_bytes=_MANIFEST_MAX_BYTES, what="checkpoint manifest", error=CheckpointError)
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint manifest of this project (format {CHECKPOINT_FORMAT!r})")
    _check_version(manifest.get("version"), path)
    step, name = manifest.get("env_step"), manifest.get("state_file")
    size, digest = manifest.get("state_bytes"), manifest.get("state_sha256")
    if (
        not is_int(step)
        or step < 0
        or name != f"{_stem(step)}.pt"
        or path.name != f"{_stem(step)}.json"
        or not is_int(size)
        or size < 0
        or not isinstance(digest, str)
        or not re.fullmatch(r"[0-9a-f]{64}", digest)
    ):
        raise CheckpointError(f"checkpoint manifest {path} is damaged: its fields are missing or malformed")
    return manifest


def _verify(state_path: Path, manifest: dict[str, Any]) -> None:
    require_regular_file(state_path, what="checkpoint", error=CheckpointError)  # never hash a FIFO or a device
    try:
        size = state_path.stat().st_size
        if size != manifest["state_bytes"]:
            raise CheckpointError(
                f"checkpoint {state_path} is damaged: {size} bytes, its manifest says "
                f"{manifest['state_bytes']} (truncated or overwritten)"
            )
        digest = hashlib.sha256()
        with open(state_path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {state_path}: {one_line(error)}") from None
    if digest.hexdigest() != manifest["state_sha256"]:
        raise CheckpointError(f"checkpoint {state_path} is damaged: its SHA-256 does not match its manifest")


def _check_version(version: Any, path: Path) -> None:
    if not (type(version) is int and version == CHECKPOINT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {short_repr(version)}; this version of the code "
            f"reads version {CHECKPOINT_VERSION}"
        )


@contextlib.contextmanager
def lock_run_dir(run_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on a run directory, so that two processes never train (or resume)
    the same run at once. The kernel drops the lock when its process dies, however it dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"run directory {run_dir} is in use by another training process; wait for it to end or stop it first"
            ) from None
        except OSError:  # a file system without locks: go on without one
            pass
        yield
    finally:
        os.close(fd)
