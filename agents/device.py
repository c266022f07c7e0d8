"""Choosing the torch device and CPU thread count."""

from __future__ import annotations

import torch

from dqn_family.configs.config import DEVICE_PATTERN
from dqn_family.configs.errors import ConfigError


def resolve_device(spec: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; an explicit device must be one that Config
    allows (cpu, cuda, cuda:N, mps: never 'meta', which holds no data) and must exist."""
    if not isinstance(spec, str) or not DEVICE_PATTERN.match(spec):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {spec!r}")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {spec!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {spec!r} requested but MPS is not available; use --device cpu or auto")
    return device


def set_torch_threads(threads: int) -> None:
    """Set intra-op threads (0 leaves torch's default). Small networks are fastest on one thread."""
    if threads > 0:
        torch.set_num_threads(threads)
