"""The progress display (training.progress): no bar frames where stderr is not a terminal, one
summary line per interval that multirun's progress view can read, and notes."""

from __future__ import annotations

import io

from dqn_family.analysis.multirun import steps_done
from dqn_family.training import progress as progress_module
from dqn_family.training.progress import Progress


def test_progress_off_a_terminal_writes_summary_lines_not_bar_frames(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module, "LINE_INTERVAL_S", 0.0)
    progress = Progress(total=400, initial=0, enabled=True, stream=stream)
    progress.update(100)
    progress.set_status(ret="12.0", loss="0.5")
    progress.update(100)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("steps 100/400 [25%, ") and lines[0].endswith("] ret 12.0 loss 0.5")
    assert lines[-1].startswith("steps 200/400 [50%, ")


def test_progress_lines_are_read_by_multirun(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_module, "LINE_INTERVAL_S", 0.0)
    log = tmp_path / "trial.log"
    with open(log, "w") as stream:
        progress = Progress(total=400, initial=100, enabled=True, stream=stream)
        progress.update(150)
        progress.close()
    assert steps_done(log) == 250


def test_progress_lines_wait_for_the_interval(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module, "LINE_INTERVAL_S", 3600.0)
    progress = Progress(total=400, initial=0, enabled=True, stream=stream)
    progress.update(100)
    progress.set_status(ret="1.0")
    assert stream.getvalue() == ""
    progress.close()  # the last line is written whatever the interval
    assert stream.getvalue().count("\n") == 1


def test_progress_disabled_writes_nothing():
    stream = io.StringIO()
    progress = Progress(total=10, initial=0, enabled=False, stream=stream)
    progress.update(10)
    progress.set_status(ret="1.0")
    progress.note("compiling")
    progress.close()
    assert stream.getvalue() == ""


def test_progress_note_is_its_own_line():
    stream = io.StringIO()
    Progress(total=10, initial=0, enabled=True, stream=stream).note("compiling the update")
    assert stream.getvalue() == "compiling the update\n"


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, so that Progress draws its tqdm bar on it."""

    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_ends_with_the_bar_alone():
    stream = _Terminal()
    progress = Progress(total=400, initial=0, enabled=True, stream=stream)
    progress.update(400)
    progress.close()
    progress.close()  # the loops close again in their finally
    lines = stream.getvalue().split("\n")  # the bar's frames are separated by carriage returns
    assert len(lines) == 2 and lines[1] == ""  # one line, ended once
    assert lines[0].split("\r")[-1].startswith("100%|") and "400/400" in lines[0]
    assert "steps 400/400" not in stream.getvalue()  # no plain summary line under the bar
