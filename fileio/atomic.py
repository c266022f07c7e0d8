"""Atomic writes: a reader, a kill or a crash sees the old file or the new one, never half of one.

Only regular files are replaced. For a path the user named (``through_special=True``: evaluate.py
--json, export.py --out, ...) a symlink is followed and the file it points to replaced (the link
stays a link), and a device, FIFO or pipe (/dev/null, /dev/stdout piped into another program) is
written through, never renamed over. A run directory's own files may come from someone else:
there a symlink or special file is refused with an OSError naming it (``RefusedPath``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from dqn_family.fileio.reading import kind_of_file


class RefusedPath(OSError):
    """A path that is not replaced because of what is there; its message says what."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any], *, through_special: bool = False) -> None:
    """Let ``write`` fill a temporary file in the target's folder, fsync it, rename it over the
    target, then fsync the folder (so the rename itself survives a power cut).

    ``through_special`` says the user named ``path`` on their command line: a symlink is followed
    (its target replaced) and a device, FIFO or pipe is written through. Otherwise (a run
    directory's own files, which may come from someone else) a symlink or special file there is
    refused: a planted link must not make a run overwrite the file it points to."""
    path = Path(path)
    kind = kind_of_file(path)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if kind == "a symbolic link to nothing" or (path.is_symlink() and not through_special):
        raise RefusedPath(errno.EINVAL, f"is {kind or 'a symbolic link'}; refusing to write through it", str(path))
    if kind not in (None, "nothing"):  # a device, FIFO or socket
        if not through_special:
            raise RefusedPath(errno.EINVAL, f"is {kind}, not a regular file; refusing to replace it", str(path))
        with open(path, "wb") as handle:  # no O_CREAT race: it exists; the kernel follows /dev/stdout etc.
            write(handle)
            handle.flush()
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's 0600
        os.replace(tmp, target)
    except OSError as error:  # name the file being written, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(target)) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_text_atomic(path: str | Path, text: str, *, through_special: bool = False) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), through_special=through_special)


def fsync_directory(folder: Path) -> None:
    """Make renames and new names in ``folder`` durable (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; set straight back, once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()
