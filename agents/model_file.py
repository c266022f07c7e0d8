"""Saved model files: a plain dict of tensors, numbers and strings, never a pickled object.

Files are written atomically and read with ``torch.load(weights_only=True)``, whose restricted
unpickler refuses any global it does not know: a planted pickle payload is rejected, never run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dqn_family.configs.errors import UserError
from dqn_family.fileio import atomic_write, short_repr
from dqn_family.fileio.torch_files import safe_torch_load

MODEL_FORMAT = "dqn-family-model"
MODEL_VERSION = 1


class ModelFileError(UserError):
    """A model file that is missing, corrupt, unsafe or of another format or version."""


def save_model(path: str | Path, q_network_state: dict[str, torch.Tensor], **metadata: int | float | str) -> None:
    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "q_network": q_network_state, **metadata}
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def load_model(path: str | Path) -> dict[str, Any]:
    """Load and check a model file; any problem is a one-line ModelFileError."""
    path = Path(path)
    payload = safe_torch_load(path, what="model file", error=ModelFileError)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a model file of this project (format {MODEL_FORMAT!r})")
    version = payload.get("version")
    if not (type(version) is int and version == MODEL_VERSION):
        raise ModelFileError(
            f"{path} has model format version {short_repr(version)}; this version reads version {MODEL_VERSION}"
        )
    return payload
