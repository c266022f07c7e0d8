"""analysis.progress: the combined view and the closing report, on hand-made trials."""

from __future__ import annotations

import io

from dqn_family.analysis.multirun import Outcome, Trial
from dqn_family.analysis.progress import ProgressView, report


def make_trials(tmp_path) -> list[Trial]:
    names = ["A__dqn__s1", "A__dqn__s2", "A__dqn__s3"]
    return [
        Trial(
            name=name,
            run_dir=str(tmp_path / name),
            log_path=str(tmp_path / f"{name}.log"),
            config_yaml="",
            total_steps=400,
        )
        for name in names
    ]


def test_progress_view_summary_counts_states_and_steps(tmp_path):
    trials = make_trials(tmp_path)
    (tmp_path / "A__dqn__s2.log").write_bytes(b"\r 25%| | 100/400 [00:01<00:03]")  # running, 100 steps
    view = ProgressView(trials, stream=io.StringIO(), live=False)
    summary = view.summary({"A__dqn__s1": Outcome("A__dqn__s1", 0, 1.0, "")})
    assert summary.startswith("[multirun] 1/3 done, 0 failed, 1 running, 1 waiting; 500 of 1,200 env steps (42%)")


def test_progress_view_not_live_prints_each_trial_once_when_it_ends(tmp_path):
    trials, stream = make_trials(tmp_path), io.StringIO()
    view = ProgressView(trials, stream=stream, live=False, every_seconds=3600)
    outcomes = {"A__dqn__s3": Outcome("A__dqn__s3", 1, 2.0, "RuntimeError: boom")}
    view.update(outcomes)
    view.update(outcomes)
    assert stream.getvalue() == "  A__dqn__s3                         FAILED   (exit 1) RuntimeError: boom\n"


def test_progress_view_live_redraws_over_previous_lines(tmp_path):
    trials, stream = make_trials(tmp_path), io.StringIO()
    view = ProgressView(trials, stream=stream, live=True)
    view.update({})
    view.update({})
    first, second = stream.getvalue().split("\x1b[4F")  # 3 trial lines + summary, redrawn once
    assert first.count(" waiting\n") == 3 and second.count(" waiting\n") == 3


def test_report_lists_failures_with_their_logs(tmp_path):
    trials = make_trials(tmp_path)
    text = report(
        trials,
        {
            "A__dqn__s1": Outcome("A__dqn__s1", 0, 1.0, ""),
            "A__dqn__s2": Outcome("A__dqn__s2", 1, 2.0, "RuntimeError: boom"),
        },
    )
    assert "A__dqn__s2" in text and "RuntimeError: boom" in text
    assert text.splitlines()[-2:] == ["1 of 3 trials failed; their output:", f"  {tmp_path / 'A__dqn__s2.log'}"]
