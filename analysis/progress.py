"""The combined progress view of a multirun, and its closing report.

On a terminal: one line per trial (waiting, running with its env steps, done, FAILED) redrawn in
place, with a summary line below. Elsewhere (a log file, CI): a line as each trial ends and a
summary line every ``every_seconds``, so the log stays short.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from dqn_family.analysis.multirun import Outcome, Trial, steps_done
from dqn_family.analysis.runs import read_summary
from dqn_family.fileio import write_text_atomic


class ProgressView:
    def __init__(
        self,
        trials: list[Trial],
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        every_seconds: float = 30.0,
    ) -> None:
        self.trials = trials
        self.stream = sys.stdout if stream is None else stream
        self.live = self.stream.isatty() if live is None else live
        self.every_seconds = every_seconds
        self.start = self.last_summary = time.monotonic()
        self.reported: set[str] = set()
        self.drawn_lines = 0

    def update(self, outcomes: dict[str, Outcome]) -> None:
        if self.live:
            self._redraw(outcomes)
            return
        for trial in self.trials:
            if trial.name in outcomes and trial.name not in self.reported:
                self.reported.add(trial.name)
                self.stream.write(_status_line(trial, outcomes[trial.name]) + "\n")
        if time.monotonic() - self.last_summary >= self.every_seconds:
            self.last_summary = time.monotonic()
            self.stream.write(self.summary(outcomes) + "\n")
        self.stream.flush()

    def close(self, outcomes: dict[str, Outcome]) -> None:
        if self.live:
            self._redraw(outcomes)
        else:
            self.last_summary = -float("inf")
            self.update(outcomes)

    def summary(self, outcomes: dict[str, Outcome]) -> str:
        failed = sum(not outcome.ok for outcome in outcomes.values())
        running = sum(trial.name not in outcomes and Path(trial.log_path).exists() for trial in self.trials)
        waiting = len(self.trials) - len(outcomes) - running
        steps = sum(_steps(trial, outcomes.get(trial.name)) for trial in self.trials)
        total = sum(trial.total_steps for trial in self.trials)
        minutes = (time.monotonic() - self.start) / 60
        return (
            f"[multirun] {len(outcomes) - failed}/{len(self.trials)} done, {failed} failed, {running} running, "
            f"{waiting} waiting; {steps:,} of {total:,} env steps ({steps / max(total, 1):.0%}); "
            f"{minutes:.1f} min"
        )

    def _redraw(self, outcomes: dict[str, Outcome]) -> None:
        columns, rows = shutil.get_terminal_size()
        trials = self.trials
        if len(trials) + 2 > rows:  # too many to show: keep the running and failed ones
            trials = [
                t for t in trials if Path(t.log_path).exists() and (t.name not in outcomes or not outcomes[t.name].ok)
            ]
        lines = [_status_line(trial, outcomes.get(trial.name)) for trial in trials] + [self.summary(outcomes)]
        up = f"\x1b[{self.drawn_lines}F" if self.drawn_lines else ""
        self.stream.write(up + "\x1b[J" + "".join(line[: columns - 1] + "\n" for line in lines))
        self.stream.flush()
        self.drawn_lines = len(lines)


def _steps(trial: Trial, outcome: Outcome | None) -> int:
    if outcome is not None and outcome.ok:
        return trial.total_steps
    return steps_done(Path(trial.log_path)) or 0


def _status_line(trial: Trial, outcome: Outcome | None) -> str:
    if outcome is None:
        if not Path(trial.log_path).exists():
            return f"  {trial.name:<34} waiting"
        steps = steps_done(Path(trial.log_path)) or 0
        return (
            f"  {trial.name:<34} running  {steps:>10,} / {trial.total_steps:,} env steps "
            f"({steps / trial.total_steps:.0%})"
        )
    if outcome.ok:
        return f"  {trial.name:<34} done     {trial.total_steps:>10,} env steps in {outcome.seconds:.0f} s"
    return f"  {trial.name:<34} FAILED   (exit {outcome.returncode}) {outcome.error}"


def final_eval(trial: Trial) -> float | None:
    score = read_summary(Path(trial.run_dir) / "summary.json").get("final_eval_mean_return")
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None


def report(trials: list[Trial], outcomes: dict[str, Outcome]) -> str:
    """The closing report: each trial's status and final evaluation, then the failures' logs."""
    lines = []
    for trial in trials:
        outcome = outcomes.get(trial.name)
        if outcome is None:
            lines.append(f"  {trial.name:<34} not run")
        elif outcome.ok:
            score = final_eval(trial)
            lines.append(
                f"  {trial.name:<34} ok      {outcome.seconds:7.0f} s   final eval "
                f"{'-' if score is None else f'{score:.1f}'}"
            )
        else:
            lines.append(f"  {trial.name:<34} FAILED  {outcome.seconds:7.0f} s   {outcome.error}")
    failed = [trial for trial in trials if trial.name in outcomes and not outcomes[trial.name].ok]
    if failed:
        lines.append(f"{len(failed)} of {len(trials)} trials failed; their output:")
        lines += [f"  {trial.log_path}" for trial in failed]
    return "\n".join(lines)


def write_outcomes(path: Path, trials: list[Trial], outcomes: dict[str, Outcome]) -> None:
    data = [
        {
            "name": t.name,
            "run_dir": t.run_dir,
            "log": t.log_path,
            "returncode": outcomes[t.name].returncode if t.name in outcomes else None,
            "seconds": round(outcomes[t.name].seconds, 1) if t.name in outcomes else None,
            "error": outcomes[t.name].error if t.name in outcomes else None,
            "final_eval_mean_return": final_eval(t),
        }
        for t in trials
    ]
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
