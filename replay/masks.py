"""Action masks in replay: a state's legal actions, bool [A], stored as bits, eight actions to a byte
(``np.packbits`` along the action axis, the first action in the high bit), and unpacked to bool
when a batch is gathered, on the host (numpy) or on a device (torch). A buffer built without masks
holds no mask array at all: masks cost nothing when they are off.
Shapes: K = items, A = actions, W = mask_width(A) bytes.
"""

from __future__ import annotations

import numpy as np
import torch

from dqn_family.replay.storage import check_array

MASK_DTYPE = np.dtype(np.uint8)


def mask_width(n_actions: int) -> int:
    """Bytes per stored mask: one bit per action."""
    return (n_actions + 7) // 8


def pack_legal(legal_KA: np.ndarray, n_actions: int, what: str = "next_legal") -> np.ndarray:
    """Bits [..., W] uint8 of bool masks [..., A]; ValueError unless ``legal_KA`` is bool with A actions last."""
    legal_KA = np.asarray(legal_KA)
    if legal_KA.dtype != np.bool_ or legal_KA.ndim < 1 or legal_KA.shape[-1] != n_actions:
        raise ValueError(
            f"replay {what} must be a bool mask [..., {n_actions}], got {legal_KA.dtype}{list(legal_KA.shape)}"
        )
    return np.packbits(legal_KA, axis=-1)


def unpack_legal(bits_KW: np.ndarray, n_actions: int) -> np.ndarray:
    """Bool masks [..., A] of stored bits [..., W]."""
    return np.unpackbits(bits_KW, axis=-1, count=n_actions).astype(bool)


def unpack_legal_torch(bits_KW: torch.Tensor, n_actions: int) -> torch.Tensor:
    """``unpack_legal`` for a uint8 tensor (on any device): bool [..., A]."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=bits_KW.device)
    bits_KW8 = (bits_KW.unsqueeze(-1) >> shifts) & 1
    return bits_KW8.flatten(-2)[..., :n_actions].bool()


def check_mask_bits(state: dict, key: str, shape: tuple[int, ...], n_actions: int) -> np.ndarray:
    """``state[key]``: stored mask bits uint8 of ``shape`` (last axis W), the bits past the last action
    zero, as ``pack_legal`` leaves them; else ValueError."""
    bits = check_array(state, key, dtype=MASK_DTYPE, shape=shape)
    spare = 8 * mask_width(n_actions) - n_actions
    if spare and bits.size and np.any(bits[..., -1] & ((1 << spare) - 1)):
        raise ValueError(f"replay {key} has bits set past the {n_actions} actions")
    return bits


def refuse_mask_bits(state: dict, key: str) -> None:
    """ValueError if a state read from disk holds mask bits that a buffer without masks cannot take."""
    if isinstance(state, dict) and key in state:
        raise ValueError(
            f"replay state holds action masks ({key}); this run uses none (it was written with action masks on: "
            "resume it with the same --action-mask)"
        )
