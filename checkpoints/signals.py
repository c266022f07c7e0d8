"""Stopping on SIGINT or SIGTERM at a moment of the loop's choosing, so that it can save a
checkpoint first: the signal only sets a flag, which the loop reads once per step."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training, after a checkpoint of the step reached was saved."""

    def __init__(self, signal_number: int, run_dir: Path, env_steps: int) -> None:
        self.exit_code = 128 + signal_number  # the shell's convention for "ended by this signal"
        super().__init__(
            f"stopped by {signal.Signals(signal_number).name} at env step {env_steps:,}; "
            f"checkpoint saved. Resume with: python train.py --resume {run_dir}"
        )


class StopRequest:
    """Set by the first SIGINT or SIGTERM. A second one stops at once by raising SystemExit
    (a checkpoint write it interrupts leaves the previous checkpoint as the latest)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signal_number: int, frame: Any) -> None:
        name = signal.Signals(signal_number).name
        if self.signal is not None:
            sys.stderr.write(f"\ntrain.py: second {name}: stopping now, without a new checkpoint\n")
            raise SystemExit(128 + signal_number)
        self.signal = signal_number
        sys.stderr.write(f"\ntrain.py: {name}: saving a checkpoint, then stopping (send it again to stop at once)\n")


@contextlib.contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a StopRequest inside the block, then put the previous handlers
    back. Signal handlers can only be set in the main thread: elsewhere, or when not ``enabled``,
    the request is never set and signals keep their usual effect. Inside another such block, the
    outer block's request goes on (a signal it saw is not forgotten)."""
    stop = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return
    outer = signal.getsignal(signal.SIGINT)
    if isinstance(outer, StopRequest):
        yield outer
        return
    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
