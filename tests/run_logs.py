"""Reading what a run logged to TensorBoard, the way a user's TensorBoard would."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a run directory's event files, as [(step, value), ...]."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


def read_text(run_dir: str | Path, tag: str) -> str:
    """The first text summary logged under ``tag`` (SummaryWriter.add_text) in a run directory."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode("utf-8")
