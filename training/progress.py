"""What a person sees while a run trains: on a terminal, a progress bar (tqdm) with one speed and
the latest return, evaluation, loss and epsilon; elsewhere (a redirected log, a multirun child),
no bar frames but one summary line every ``LINE_INTERVAL_S`` seconds and at the end, in a form
``analysis.multirun`` reads (``steps 12000/50000 [...]``)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LINE_INTERVAL_S = 5.0


class Progress:
    """Counts env steps (``update`` is on the loop's hot path: a bar update or one comparison) and
    shows the latest status set at each log interval (``set_status``)."""

    def __init__(self, *, total: int, initial: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total, self.steps, self.enabled = total, initial, enabled
        self.status: dict[str, str] = {}
        self.started, self.started_steps = time.perf_counter(), initial
        self.next_line = self.started + LINE_INTERVAL_S
        self.bar = (
            tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=self.stream)
            if enabled and _is_terminal(self.stream)
            else None
        )

    def update(self, steps: int) -> None:
        self.steps += steps
        if self.bar is not None:
            self.bar.update(steps)

    def set_status(self, **fields: str) -> None:
        """The latest figures (e.g. ret, eval, loss, eps): on the bar now, in the next line otherwise."""
        self.status.update(fields)
        if self.bar is not None:
            self.bar.set_postfix(self.status, refresh=False)
        elif self.enabled and time.perf_counter() >= self.next_line:
            self._line()

    def note(self, text: str) -> None:
        """A message about what the run is doing now (e.g. compiling), above the bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End the display: the bar's last frame on a terminal, else a last summary line. Only the
        first call shows anything (the loops close again in their ``finally``): a second would add
        a plain line under the finished bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.steps > self.started_steps:
            self._line()
        self.enabled = False  # closed: no more lines or notes

    def _line(self) -> None:
        now = time.perf_counter()
        rate = (self.steps - self.started_steps) / max(now - self.started, 1e-9)
        figures = " ".join(f"{key} {value}" for key, value in self.status.items())
        print(
            f"steps {self.steps}/{self.total} [{100 * self.steps / self.total:.0f}%, {rate:,.0f} steps/s] {figures}",
            file=self.stream,
            flush=True,
        )
        self.next_line = now + LINE_INTERVAL_S


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
