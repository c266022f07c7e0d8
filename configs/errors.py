"""The one exception family for user mistakes (a single line, exit code 2), and the one place that
turns an operating-system error (a bad path, a full disk, read-only media) into a single line."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from dqn_family.fileio.atomic import RefusedPath

# The machine's problems (exit code 1); any other OSError is a path the user gave (exit code 2).
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO})
_HINTS = {
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "something that is not a folder is already there",
    errno.ENOSPC: "free some space; what was saved before is kept",
    errno.EDQUOT: "free some space; what was saved before is kept",
    errno.EROFS: "write somewhere else; nothing was changed there",
}
_MAX_PATH_CHARS = 160


class UserError(ValueError):
    """Bad input from the user (a flag, a file, an env id): the message says what and what is allowed."""


class ConfigError(UserError):
    """An invalid configuration value, key or file."""


def os_error_of(error: BaseException) -> OSError | None:
    """The OSError behind ``error``: itself, or one it was raised from or while handling (torch.save
    reports a full disk as a RuntimeError raised while handling the OSError)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, OSError) and link.errno is not None:
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def os_error_line(error: OSError) -> tuple[str, int]:
    """One line naming the path and the cause of ``error``, and the exit code: 1 for the machine
    (full disk, quota, read-only media, I/O error), 2 for a path the user gave."""
    if isinstance(error, RefusedPath):  # fileio's own refusal says what is there
        cause = error.strerror
    else:
        cause = os.strerror(error.errno) if error.errno is not None else (error.strerror or type(error).__name__)
    hint = None if error.errno is None else _HINTS.get(error.errno)
    # os.replace(source, target): the target is the path the user knows.
    path = error.filename2 if error.filename2 is not None else error.filename
    where = "" if path is None else f"{_short(os.fsdecode(path))}: "
    message = f"{where}{cause}" + (f" ({hint})" if hint else "")
    return message, 1 if error.errno in MACHINE_ERRNOS or error.errno is None else 2


def _short(path: str) -> str:
    """A path cut to a bounded length (a name too long for the file system is kept readable)."""
    return path if len(path) <= _MAX_PATH_CHARS else f"{path[: _MAX_PATH_CHARS // 2]}...{path[-40:]}"


@contextlib.contextmanager
def os_errors_in(folder: str | Path) -> Iterator[None]:
    """Name ``folder`` in an OSError that names no path (a write that found the disk full reports
    none), so that its one line says where."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        cause = os_error_of(error)
        if cause is None or cause.filename is not None:
            raise
        raise OSError(cause.errno, cause.strerror, str(folder)) from error
