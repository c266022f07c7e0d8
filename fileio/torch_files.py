"""Loading torch files (model files, checkpoints) without running code: ``torch.load`` with
``weights_only=True``, whose restricted unpickler rebuilds tensors and plain containers and refuses
every other global, so a planted pickle payload is refused, never run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from dqn_family.fileio.reading import check_depth, one_line, require_regular_file


def safe_torch_load(path: str | Path, *, what: str, error: type[Exception]) -> Any:
    """The contents of a regular, non-empty torch file, nested at most MAX_DEPTH deep; every
    failure is one line of ``error``."""
    path = Path(path)
    require_regular_file(path, what=what, error=error)
    if path.stat().st_size == 0:
        raise error(f"{what} {path} is empty")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as problem:  # corrupt zip, truncated file, or a refused pickle global
        raise error(f"cannot load {what} {path} safely: {_load_failure(problem)}") from None
    return check_depth(payload, what=f"{what} {path}", error=error)


def _load_failure(problem: Exception) -> str:
    """Why torch.load refused a file, without torch's advice to retry with weights_only=False
    (which would run whatever the file holds)."""
    text = one_line(problem, limit=2000)
    refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if refused:
        return f"it holds a pickled reference to {refused[1][:120]}, which is refused and never run"
    detail = re.search(r"WeightsUnpickler error: (.*?)(?: Please use| Check the documentation|$)", text)
    if detail:
        return (
            f"it is not a plain tensor file ({detail[1].strip()[:120] or 'unreadable pickle'}); nothing in it was run"
        )
    return f"{(text.split('. ')[0] or type(problem).__name__)[:160]} (damaged or not a torch file)"
