"""A command's results as JSON (``evaluate.py --json``, ``aggregate.py --json``): written to a file,
or onto stdout for ``-`` (the usual convention; ``./-`` is a file of that name). While the JSON goes
to stdout, the command's lines for people go to stderr (:func:`human_stream`), so that stdout is
JSON and nothing else; a path that is stdout itself (``/dev/stdout``) counts as ``-``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from dqn_family.fileio.atomic import write_text_atomic

STDOUT = "-"


def json_path(value: str) -> str:
    """``--json``'s value, as argparse's ``type``: a file path, or ``-`` for stdout; never empty
    (``--json ''`` would otherwise be taken as no --json at all, and nothing written)."""
    if not value:
        raise argparse.ArgumentTypeError("needs a file path, or - for stdout; got an empty string")
    return value


def names_stdout(path: str | None) -> bool:
    """Whether ``path`` is ``-`` or the very file this process's stdout is (``/dev/stdout``)."""
    if path is None:
        return False
    if path == STDOUT:
        return True
    try:
        named, out = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such file, or a stdout without a descriptor
        return False
    return (named.st_dev, named.st_ino) == (out.st_dev, out.st_ino)


def human_stream(json_path: str | None) -> TextIO:
    """Where a command prints its lines for people: stderr while its JSON goes to stdout, else stdout."""
    return sys.stderr if names_stdout(json_path) else sys.stdout


def write_json(path: str, data: Any) -> None:
    """``data`` as indented JSON onto stdout (see :func:`names_stdout`), else written atomically to
    ``path``, a file the user named (a link is followed, a device or pipe written through)."""
    text = json.dumps(data, indent=2) + "\n"
    if names_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_text_atomic(Path(path), text, through_special=True)
