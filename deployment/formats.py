"""Exporting a GreedyPolicy to a file and running an exported file, by format name.

- 'onnx': torch's current exporter (``torch.onnx.export(..., dynamo=True)``, which traces with
  torch.export), opset ``ONNX_OPSET``; run with ONNX Runtime on the CPU.
- 'pt2': ``torch.export.export`` saved with ``torch.export.save``; run with ``torch.export.load``.

Both have a dynamic batch axis. An exporter returns the file's bytes, so that the caller writes them
atomically and hashes exactly what it wrote. A network torch cannot trace (data-dependent control
flow in ``forward``, say) raises ExportError with one line saying why.
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

from dqn_family.configs.errors import UserError
from dqn_family.deployment.policy import GreedyPolicy, ObservationSpec
from dqn_family.fileio import one_line

ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAMES = "observations", ("actions", "q_values")
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # observations -> (actions, Q-values)


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


def _exported_program(policy: GreedyPolicy, spec: ObservationSpec) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        with _quiet():
            return torch.export.export(policy, (spec.example(),), dynamic_shapes=({0: batch},))
    except Exception as error:  # torch raises many kinds (UserError, GuardOnDataDependentSymNode, ...)
        raise ExportError(f"torch.export cannot trace this network: {one_line(error, 240)}") from None


def export_onnx(policy: GreedyPolicy, spec: ObservationSpec) -> bytes:
    program = _exported_program(policy, spec)  # traced once, so that a failure says torch.export's reason
    try:
        with _quiet():
            onnx_program = torch.onnx.export(
                program,
                (spec.example(),),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                verbose=False,
            )
    except Exception as error:
        raise ExportError(f"the ONNX exporter cannot translate this network: {one_line(error, 240)}") from None
    assert onnx_program is not None  # dynamo=True returns an ONNXProgram (only the legacy exporter returns None)
    return onnx_program.model_proto.SerializeToString()


def export_pt2(policy: GreedyPolicy, spec: ObservationSpec) -> bytes:
    buffer = io.BytesIO()
    torch.export.save(_exported_program(policy, spec), buffer)
    return buffer.getvalue()


def onnx_runner(path: Path) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda observations: tuple(session.run(list(OUTPUT_NAMES), {INPUT_NAME: observations}))


def pt2_runner(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            actions, q_values = module(torch.from_numpy(np.ascontiguousarray(observations)))
        return actions.numpy(), q_values.numpy()

    return run


EXPORTERS: dict[str, Callable[[GreedyPolicy, ObservationSpec], bytes]] = {"onnx": export_onnx, "pt2": export_pt2}
RUNNERS: dict[str, Callable[[Path], Runner]] = {"onnx": onnx_runner, "pt2": pt2_runner}
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}


def require_onnx() -> None:
    """UserError naming the extra to install when the ONNX packages are missing."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f'--format onnx needs {", ".join(missing)}: pip install -e ".[export]"')
