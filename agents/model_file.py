"""Saved model files: a plain dict of tensors, numbers and strings, never a pickled object.

Files are written atomically and read with ``torch.load(weights_only=True)``, whose restricted
unpickler refuses any global it does not know: a planted pickle payload is rejected, never run.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import torch

from configs import atomic_write
from configs.errors import UserError

MODEL_FORMAT = "dqn-family-model"
MODEL_VERSION = 1


class ModelFileError(UserError):
    """A model file that is missing, corrupt, unsafe or of another format or version."""


def save_model(path: str | Path, q_network_state: dict[str, torch.Tensor], **metadata: int | float | str) -> None:
    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "q_network": q_network_state, **metadata}
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def safe_torch_load(path: Path, what: str, error_type: type[UserError]) -> Any:
    """``torch.load(weights_only=True)``, with every failure turned into one line of ``error_type``."""
    if path.stat().st_size == 0:
        raise error_type(f"{what} {path} is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt zip, truncated file, or a refused pickle global
        raise error_type(f"cannot load {what} {path}: {_load_failure(error)}") from None


def _load_failure(error: Exception) -> str:
    """Why torch.load failed, without torch's advice to retry with weights_only=False (unsafe)."""
    text = " ".join(str(error).split())
    refused = re.search(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", text)
    if refused:
        name = refused.group(1) or refused.group(2)
        return f"it holds a pickled reference to {name}, which is refused and never run"
    detail = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    if detail:
        return f"not a plain tensor file ({detail.group(1).strip() or 'unreadable pickle'}); nothing in it was run"
    return (text.split(". ")[0] or type(error).__name__)[:160] + " (corrupt or truncated?)"


def load_model(path: str | Path) -> dict[str, Any]:
    """Load and check a model file; any problem is a one-line ModelFileError."""
    path = Path(path)
    problem = not_a_regular_file(path)
    if problem:
        raise ModelFileError(f"model file {path} {problem}")
    payload = safe_torch_load(path, "model file", ModelFileError)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a model file of this project (format {MODEL_FORMAT!r})")
    if payload.get("version") != MODEL_VERSION:
        raise ModelFileError(f"{path} has model format version {payload.get('version')!r}; "
                             f"this version reads version {MODEL_VERSION}")
    return payload


_KINDS = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file ("does not exist", "is a folder, not a file", ...), or
    None for a regular file (a symbolic link counts as what it points to). Reading only regular
    files means a FIFO or a device never blocks or streams forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a symbolic link to nothing" if path.is_symlink() else "does not exist"
    except OSError as error:
        return f"cannot be read: {os.strerror(error.errno) if error.errno else error}"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS.items() if test(mode)), "of an unknown kind")
    return f"is {kind}, not a regular file"
