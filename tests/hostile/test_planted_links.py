"""Files the project (or a library it hands a path to) writes in a folder that already exists, where
someone else may have planted a symlink to a victim file or a FIFO: each is refused in one line
(exit 2), the victim stays byte-identical, and nothing hangs (fileio.atomic: atomic_write,
write_figure, open_for_writing, require_writable_file, require_real_folder). The run directory's
own files, the tuning study's files and the W&B folder have tests of their own (test_outputs.py,
tests/tuning/test_hostile_study.py, tests/test_tracking.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dqn_family.analysis.multirun import Trial, run_trial
from dqn_family.fileio import RefusedPath, open_for_writing, require_real_folder, write_figure
from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command

VICTIM_TEXT = "the victim's own bytes\n"


def plant(path: Path, kind: str, victim: Path) -> None:
    """A symlink to ``victim`` or a FIFO at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        path.symlink_to(victim)
    else:
        os.mkfifo(path)


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    return path


def assert_untouched(victim: Path, planted: Path, kind: str) -> None:
    assert victim.read_text() == VICTIM_TEXT
    assert planted.is_symlink() if kind == "symlink" else planted.is_fifo()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
@pytest.mark.parametrize("planted_name", ["model_latest.pt2.json", "model_latest.pt2"])
def test_export_refuses_a_planted_model_or_sidecar_path(run_copy, victim, kind, planted_name):
    """The issue's case: the sidecar was written through a planted link (the victim replaced) and
    hung on a planted FIFO."""
    planted = run_copy / planted_name
    plant(planted, kind, victim)
    process = run_command(REPO_ROOT / "export.py", run_copy, "--format", "pt2", timeout=120)
    assert_one_line_error(process, contains=planted_name)
    assert_untouched(victim, planted, kind)


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_plot_refuses_a_planted_figure_path(tmp_path, victim, kind):
    from tests.analysis.synthetic_runs import linear_evals, write_run

    write_run(tmp_path / "runs", env_id="CartPole-v1", algo="dqn", seed=1, evals=linear_evals(0.1, 1), final=101)
    planted = tmp_path / "figures" / "check_curves.png"
    plant(planted, kind, victim)
    process = run_command(
        REPO_ROOT / "plot.py", tmp_path / "runs", "--out", tmp_path / "figures", "--name", "check", timeout=120
    )
    assert_one_line_error(process, contains="check_curves.png")
    assert_untouched(victim, planted, kind)


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
@pytest.mark.parametrize("suffix", [".log", ".yaml"])
def test_multirun_refuses_a_planted_trial_log_or_config(tmp_path, victim, kind, suffix):
    log_path = tmp_path / "multirun" / "CartPole-v1__dqn__s1.log"
    planted = log_path.with_suffix(suffix)
    plant(planted, kind, victim)
    trial = Trial(
        name="CartPole-v1__dqn__s1",
        run_dir=str(tmp_path / "CartPole-v1__dqn__s1"),
        log_path=str(log_path),
        config_yaml="env_id: CartPole-v1\n",
        total_steps=100,
    )
    with pytest.raises(RefusedPath, match="refusing"):
        run_trial(trial)
    assert_untouched(victim, planted, kind)
    assert not (tmp_path / "CartPole-v1__dqn__s1").exists()  # no training started


@pytest.mark.parametrize("planted", ["folder link", "config link"])
def test_multirun_refuses_a_planted_multirun_folder_or_trial_config(tmp_path, victim, planted):
    """The review's case: ROOT/multirun linked to another folder made multirun replace the files there."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "outcomes.json").write_text(VICTIM_TEXT)
    if planted == "folder link":
        (root / "multirun").symlink_to(elsewhere)
    else:
        (root / "multirun").mkdir()
        (root / "multirun" / "CartPole-v1__dqn__s1.yaml").symlink_to(victim)
    process = run_command(REPO_ROOT / "multirun.py", "--root", root, "--seeds", "1", "--", "--total-steps", "100")
    assert_one_line_error(process, contains="refusing")
    assert (elsewhere / "outcomes.json").read_text() == VICTIM_TEXT and victim.read_text() == VICTIM_TEXT
    assert sorted(path.name for path in elsewhere.iterdir()) == ["outcomes.json"]
    assert not (root / "CartPole-v1__dqn__s1").exists()  # refused before any trial


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_evaluate_video_refuses_a_planted_episode_file(run_copy, tmp_path, victim, kind):
    pytest.importorskip("moviepy")
    planted = tmp_path / "videos" / "CartPole-v1-episode-0.mp4"
    plant(planted, kind, victim)
    process = run_command(
        REPO_ROOT / "evaluate.py", run_copy, "--episodes", "1", "--video", tmp_path / "videos", timeout=120
    )
    assert_one_line_error(process, contains="CartPole-v1-episode-0.mp4")
    assert_untouched(victim, planted, kind)


def test_mlflow_default_store_refuses_a_planted_mlruns_link(tmp_path, monkeypatch):
    from dqn_family.training.tracking import mlflow_uri

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mlruns").symlink_to(elsewhere)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RefusedPath, match="not a folder"):
        mlflow_uri()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
@pytest.mark.parametrize(
    "write",
    [
        lambda path: write_figure(path, _figure()),
        lambda path: open_for_writing(path).close(),
    ],
    ids=["write_figure", "open_for_writing"],
)
def test_writers_refuse_planted_paths(tmp_path, victim, kind, write: Callable[[Path], None]):
    planted = tmp_path / "out.png"
    plant(planted, kind, victim)
    with pytest.raises(RefusedPath, match="refusing"):
        write(planted)
    assert_untouched(victim, planted, kind)


def test_open_for_writing_empties_a_regular_file_and_writes_a_new_one(tmp_path):
    existing = tmp_path / "log"
    existing.write_text("an earlier, longer log\n")
    with open_for_writing(existing) as handle:
        handle.write(b"new\n")
    assert existing.read_text() == "new\n"


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_require_real_folder_refuses_what_is_not_a_real_folder(tmp_path, kind):
    path = tmp_path / "wandb"
    if kind == "symlink":
        (tmp_path / "target").mkdir()
        path.symlink_to(tmp_path / "target")
    else:
        path.write_text("x")
    with pytest.raises(RefusedPath, match="not a folder"):
        require_real_folder(path)
    assert require_real_folder(tmp_path / "new" / "folder").is_dir()


def _figure():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def test_write_figure_writes_the_format_of_its_suffix(tmp_path):
    write_figure(tmp_path / "a.png", _figure())
    write_figure(tmp_path / "a.svg", _figure())
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
