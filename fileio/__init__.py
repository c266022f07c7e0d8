"""File I/O shared by every part of the project: atomic writes that never replace what is not a
regular file (``fileio.atomic``), bounded reads of files that may come from someone else, with
messages of bounded length (``fileio.reading``), and torch files loaded without running code
(``fileio.torch_files``).

Imports nothing from the project: every reader takes the exception type its caller reports
(a ConfigError, a CheckpointError, ...), so a problem is one line in the caller's own terms.
"""

from dqn_family.fileio.atomic import (
    RefusedPath,
    atomic_write,
    fsync_directory,
    open_for_writing,
    require_real_folder,
    require_writable_file,
    write_figure,
    write_text_atomic,
)
from dqn_family.fileio.reading import (
    MAX_DEPTH,
    check_depth,
    kind_of_file,
    load_json,
    load_yaml,
    one_line,
    read_regular_file,
    redact_credentials,
    require_regular_file,
    short_repr,
)

# fileio.torch_files (safe_torch_load) is imported where it is used, so that reading a config needs no torch.
__all__ = [
    "RefusedPath",
    "MAX_DEPTH",
    "atomic_write",
    "check_depth",
    "fsync_directory",
    "kind_of_file",
    "load_json",
    "load_yaml",
    "one_line",
    "open_for_writing",
    "read_regular_file",
    "redact_credentials",
    "require_real_folder",
    "require_regular_file",
    "require_writable_file",
    "short_repr",
    "write_figure",
    "write_text_atomic",
]
