"""Exporting a policy module (deployment.policy) to a file and running an exported file, by format name.

- 'onnx': torch's current exporter (``torch.onnx.export(..., dynamo=True)``, which traces with
  torch.export), opset ``ONNX_OPSET``; run with ONNX Runtime on the CPU.
- 'pt2': ``torch.export.export`` saved with ``torch.export.save``; run with ``torch.export.load``.

Both have a dynamic batch axis (on the state too, for a recurrent network's step). An exporter
returns the file's bytes, so that the caller writes them atomically and hashes exactly what it wrote.
A network torch cannot trace (data-dependent control flow in ``forward``, say) raises ExportError
with one line saying why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dqn_family.configs.errors import UserError
from dqn_family.deployment import SUFFIXES as SUFFIXES  # by format name, as EXPORTERS and RUNNERS
from dqn_family.deployment.policy import ObservationSpec
from dqn_family.fileio import one_line

ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAMES = "observations", ("actions", "q_values")
STATE_INPUT, STATE_OUTPUT = "state", "next_state"  # a recurrent network's step also takes and returns its state
MASK_INPUT = "action_mask"  # a run with action masks: bool [B, A], last
# (observations[, state][, action_mask]) -> (actions, Q-values[, next state])
Runner = Callable[..., tuple[np.ndarray, ...]]


def input_names(spec: ObservationSpec) -> list[str]:
    """observations (or one input per key of dictionary observations)[, state][, action_mask]."""
    observations = [INPUT_NAME] if spec.parts is None else list(spec.parts)
    names = observations if spec.state_size is None else [*observations, STATE_INPUT]
    return names if spec.action_mask is None else [*names, MASK_INPUT]


def output_names(spec: ObservationSpec) -> list[str]:
    return list(OUTPUT_NAMES) if spec.state_size is None else [*OUTPUT_NAMES, STATE_OUTPUT]


class ExportError(UserError):
    """A network that torch cannot export."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines and warnings (torchvision missing, ...) are not the user's concern."""
    loggers = [
        logging.getLogger(name)
        for name in (
            "torch",
            "torch.onnx",
            "torch.export",
            "torch._export",
            "torch.fx",
            "torch.fx.experimental.symbolic_shapes",
            "torch._dynamo",
            "onnxscript",
        )
    ]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _exported_program(policy: nn.Module, spec: ObservationSpec) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    inputs = spec.example_inputs()
    dynamic: tuple = tuple({0: batch} for _ in inputs)
    if spec.parts is not None:  # PositionalInputs' forward(*inputs): one argument, a tuple of them
        dynamic = (dynamic,)
    try:
        with _quiet():
            return torch.export.export(policy, inputs, dynamic_shapes=dynamic)
    except Exception as error:  # torch raises many kinds (UserError, GuardOnDataDependentSymNode, ...)
        raise ExportError(f"torch.export cannot trace this network: {one_line(error, 240)}") from None


def export_onnx(policy: nn.Module, spec: ObservationSpec) -> bytes:
    names = [*input_names(spec), *output_names(spec)]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:  # an ONNX graph's names are unique: a Dict observation key may not be another input's or an output's
        fixed = [name for name in names if spec.parts is None or name not in spec.parts]
        raise ExportError(
            f"observation key(s) {clash} are also names of the model's other inputs or outputs "
            f"({', '.join(fixed)}); rename the key in the env, or export --format pt2"
        )
    program = _exported_program(policy, spec)  # traced once, so that a failure says torch.export's reason
    try:
        with _quiet():
            onnx_program = torch.onnx.export(
                program,
                spec.example_inputs(),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=input_names(spec),
                output_names=output_names(spec),
                verbose=False,
            )
    except Exception as error:
        raise ExportError(f"the ONNX exporter cannot translate this network: {one_line(error, 240)}") from None
    assert onnx_program is not None  # dynamo=True returns an ONNXProgram (only the legacy exporter returns None)
    return onnx_program.model_proto.SerializeToString()


def export_pt2(policy: nn.Module, spec: ObservationSpec) -> bytes:
    buffer = io.BytesIO()
    torch.export.save(_exported_program(policy, spec), buffer)
    return buffer.getvalue()


def onnx_runner(model: Path | bytes) -> Runner:
    """Run an ONNX model from its file or its bytes (export.py verifies the bytes it wrote)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its coloured warnings would surround a command's one line
    source = model if isinstance(model, bytes) else str(model)
    session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    names = [graph_input.name for graph_input in session.get_inputs()]
    return lambda *inputs: tuple(session.run(None, dict(zip(names, inputs))))


def pt2_runner(model: Path | bytes) -> Runner:
    """Run a .pt2 program from its file or its bytes. torch.export.load unpickles: a .pt2 is code, so
    the project loads only one it has just written (export.py --verify passes the bytes it wrote)."""
    module = torch.export.load(io.BytesIO(model) if isinstance(model, bytes) else str(model)).module()

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.no_grad():
            outputs = module(*(torch.from_numpy(np.ascontiguousarray(array)) for array in inputs))
        return tuple(output.numpy() for output in outputs)

    return run


EXPORTERS: dict[str, Callable[[nn.Module, ObservationSpec], bytes]] = {"onnx": export_onnx, "pt2": export_pt2}
RUNNERS: dict[str, Callable[[Path | bytes], Runner]] = {"onnx": onnx_runner, "pt2": pt2_runner}


def require_onnx() -> None:
    """UserError naming the extra to install when the ONNX packages are missing."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f'--format onnx needs {", ".join(missing)}: pip install -e ".[export]"')
