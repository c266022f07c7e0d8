"""Mixed precision for the learner's forward passes and loss (config ``precision``).

'bf16' and 'fp16' run the forward passes and the loss under ``torch.autocast``: matrix products
and convolutions in the low precision, the parameters and Adam's state in float32 ("master
weights"), so an update is applied in full precision. 'fp16' has a 5-bit exponent, so small
gradients underflow: its loss is scaled up before ``backward`` and the gradients scaled back
before clipping and Adam (``torch.amp.GradScaler``, which also skips a step whose gradients
overflowed and lowers the scale). bf16 has float32's exponent and needs no scaler. The
distributional maths (log-softmax, the categorical projection, the quantile loss) is done in
float32: the learners cast the head's outputs with ``.float()`` before it. Acting and evaluation
(numpy or torch) stay float32.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

# config ``precision`` -> the autocast dtype (None: plain float32). configs.config.PRECISIONS lists the same names.
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context the learner's forward passes and loss run in: autocast to ``precision``'s
    dtype on ``device``, or nothing for fp32."""
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 (None otherwise), with torch's defaults: scale 2**16, halved
    after a step with inf/NaN gradients (which is skipped), doubled after 2,000 clean steps."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def check_grad_scaler_state(state: Any) -> None:
    """ValueError unless ``state`` looks like a GradScaler.state_dict(): a dict of finite numbers."""
    expected: dict[str, type[float] | type[int]] = {
        "scale": float,
        "growth_factor": float,
        "backoff_factor": float,
        "growth_interval": int,
        "_growth_tracker": int,
    }
    if not isinstance(state, dict) or set(state) != set(expected):
        raise ValueError(f"the gradient scaler state must be a dict of {', '.join(expected)}")
    for key, kind in expected.items():
        value = state[key]
        if (
            type(value) is not kind
            or (kind is float and not (0.0 < value < float("inf")))
            or (kind is int and value < 0)
        ):
            raise ValueError(f"the gradient scaler's {key} must be a positive {kind.__name__}, got {value!r}")
