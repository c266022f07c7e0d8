"""Atomic writes: a reader, a kill or a crash sees the old file or the new one, never half of one.

Only regular files are replaced. For a path the user named (``through_special=True``: evaluate.py
--json, export.py --out, ...) a symlink is followed and the file it points to replaced (the link
stays a link), and a device, FIFO or pipe (/dev/null, /dev/stdout piped into another program) is
written through, never renamed over. A run directory's own files may come from someone else:
there a symlink or special file is refused with an OSError naming it (``RefusedPath``).
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

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
    if not through_special or kind == "a symbolic link to nothing":
        require_writable_file(path)
    if kind not in (None, "nothing"):  # a device, FIFO or socket the user named
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


def require_writable_file(path: Path) -> None:
    """Refuse (``RefusedPath``) a path that a run, a study or a derived name writes to when a symlink
    or anything but a regular file is there: written through, it would reach what a planted link
    points to, or hang on a FIFO."""
    kind = kind_of_file(path)
    if kind == "a symbolic link to nothing" or path.is_symlink():
        raise RefusedPath(errno.EINVAL, f"is {kind or 'a symbolic link'}; refusing to write through it", str(path))
    if kind not in (None, "nothing"):
        raise RefusedPath(errno.EINVAL, f"is {kind}, not a regular file; refusing to replace it", str(path))


def write_text_atomic(path: str | Path, text: str, *, through_special: bool = False) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), through_special=through_special)


class _Figure(Protocol):
    def savefig(self, fname: Any, **kwargs: Any) -> Any: ...


def write_figure(path: str | Path, figure: _Figure, **savefig_options: Any) -> None:
    """Save a matplotlib figure as ``path`` (its format from the suffix) by :func:`atomic_write`:
    drawn into memory, then renamed into place, so that a link planted where it goes is refused,
    never written through (matplotlib's own ``savefig(path)`` follows it)."""
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or None, **savefig_options)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def open_for_writing(path: str | Path) -> BinaryIO:
    """``path`` created or emptied for writing as it is written (a child process's log), refusing
    (``RefusedPath``) a symlink or anything but a regular file there: opened without following a
    link and without blocking, so a planted FIFO is an error, not a hang."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EMLINK):  # a link (ELOOP), a FIFO with no reader (ENXIO)
            require_writable_file(path)  # says what is there
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            require_writable_file(path)  # says what is there
            raise RefusedPath(errno.EINVAL, "is not a regular file; refusing to write to it", str(path))
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def require_real_folder(path: str | Path, *, create: bool = True) -> Path:
    """``path`` as a folder that the project, or a library it hands the path to (W&B's ``wandb/``,
    MLflow's store), writes files in: created if missing (with ``create``; else nothing there is
    fine too); a symlink or anything but a real folder there is refused (``RefusedPath``), since
    the writes would go wherever it points."""
    path = Path(path)
    if not path.is_symlink() and not path.exists():
        if not create:
            return path
        path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        kind = "a symbolic link" if path.is_symlink() else kind_of_file(path)
        raise RefusedPath(errno.EINVAL, f"is {kind}, not a folder; refusing to write into it", str(path))
    return path


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
