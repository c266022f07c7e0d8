"""--track wandb|mlflow (training/tracking.py): the tracker gets the same scalars at the same env steps
as TensorBoard, and the config; a resume continues the same tracked run; a missing package is one
line before anything is written; a tracker failing mid-run does not stop training; tune.py's trials
are tracked too."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import types
from pathlib import Path

import pytest

from dqn_family import train
from dqn_family.configs import ConfigError, config_to_dict
from dqn_family.training import tracking
from tests.checkpoints.conftest import copy_run, small_config
from tests.run_logs import read_scalars

RESUME_FROM = 200  # small_config checkpoints at 200, 400 and 600


class FakeWandbRun:
    def __init__(self, calls: list, failing: bool) -> None:
        self.calls, self.failing, self.rows, self.summary, self.exit_code = calls, failing, [], {}, None

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.calls.append(("define_metric", name, step_metric))

    def log(self, row: dict) -> None:
        if self.failing:
            raise ConnectionError("the tracker went away")
        self.rows.append(dict(row))

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


@pytest.fixture
def fake_wandb(monkeypatch):
    """A stand-in ``wandb`` module that records what it is given (the real one's offline files can
    be read back only through its private modules)."""
    runs: list[tuple[dict, FakeWandbRun]] = []
    calls: list = []

    def init(**kwargs):
        run = FakeWandbRun(calls, module.failing)
        runs.append((kwargs, run))
        return run

    module = types.SimpleNamespace(init=init, Settings=lambda **kwargs: kwargs, runs=runs, calls=calls, failing=False)
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return module


def logged_by_tag(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    by_tag: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for tag, value in row.items():
            if tag != "env_step":
                by_tag.setdefault(tag, []).append((row["env_step"], value))
    return by_tag


def assert_same_scalars(tracked: dict[str, list[tuple[int, float]]], run_dir: Path) -> None:
    """Every TensorBoard tag and point is in the tracker (TensorBoard stores float32)."""
    board = read_scalars(run_dir)
    assert set(tracked) == set(board)
    for tag, points in board.items():
        assert [step for step, _ in tracked[tag]] == [step for step, _ in points], tag
        assert [value for _, value in tracked[tag]] == pytest.approx([value for _, value in points], rel=1e-6), tag


def test_wandb_gets_every_tensorboard_scalar_and_the_config(tmp_path, fake_wandb):
    config = small_config(tmp_path / "run", track="wandb", total_steps=400, eval_frequency=200)
    result = train.train(config)
    [(kwargs, run)] = fake_wandb.runs
    assert kwargs["mode"] == "offline" and kwargs["dir"] == str(result.run_dir) and kwargs["resume"] == "allow"
    assert kwargs["config"] == {**config_to_dict(config), "run_dir": str(result.run_dir)}
    assert ("define_metric", "*", "env_step") in fake_wandb.calls
    assert_same_scalars(logged_by_tag(run.rows), result.run_dir)
    assert [row["env_step"] for row in run.rows] == sorted(row["env_step"] for row in run.rows)  # one row a step
    assert len({row["env_step"] for row in run.rows}) == len(run.rows)
    assert "hyperparameters" in run.summary and run.exit_code == 0
    recorded = json.loads((result.run_dir / tracking.TRACKING_FILE).read_text())
    assert recorded == {"track": "wandb", "run_id": kwargs["id"], "key": recorded["key"]}
    assert kwargs["id"] == hashlib.sha256(recorded["key"].encode()).hexdigest()[:32]  # the id is the key's


def test_wandb_resume_continues_the_same_run_id(tmp_path, fake_wandb):
    finished = train.train(small_config(tmp_path / "first", track="wandb")).run_dir
    run_dir = copy_run(finished, tmp_path / "resumed", latest=RESUME_FROM)
    train.resume(run_dir)
    (first, _), (second, resumed) = fake_wandb.runs
    assert second["id"] == first["id"]
    assert min(row["env_step"] for row in resumed.rows) > RESUME_FROM


def test_tracker_failing_mid_run_warns_once_and_training_finishes(tmp_path, fake_wandb, capsys):
    fake_wandb.failing = True  # every log() raises
    result = train.train(small_config(tmp_path / "run", track="wandb"))
    assert result.env_steps == 600
    warnings = [line for line in capsys.readouterr().err.splitlines() if "experiment tracking stopped" in line]
    assert len(warnings) == 1 and "the tracker went away" in warnings[0]
    assert read_scalars(result.run_dir)["eval/mean_return"][-1][0] == 600  # TensorBoard went on


def test_mlflow_gets_every_tensorboard_scalar_params_and_resumes_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = small_config(tmp_path / "run", track="mlflow")
    result = train.train(config)
    run_id = json.loads((result.run_dir / tracking.TRACKING_FILE).read_text())["run_id"]
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_dir.name
    expected = {**config_to_dict(config), "run_dir": str(result.run_dir)}
    assert run.data.params == {name: str(value) for name, value in expected.items()}
    assert client.get_experiment(run.info.experiment_id).name == "CartPole-v1"
    tracked = {
        tag: sorted((m.step, m.value) for m in client.get_metric_history(run_id, tag)) for tag in run.data.metrics
    }
    assert_same_scalars(tracked, result.run_dir)
    assert "hyperparameters.md" in [entry.path for entry in client.list_artifacts(run_id)]

    resumed = copy_run(result.run_dir, tmp_path / "resumed", latest=RESUME_FROM)
    before = len(client.get_metric_history(run_id, "eval/mean_return"))
    train.resume(resumed)
    assert json.loads((resumed / tracking.TRACKING_FILE).read_text())["run_id"] == run_id
    again = client.get_metric_history(run_id, "eval/mean_return")
    assert [m.step for m in again[before:]] == [300, 600]  # the resumed evaluations, added to the same run
    assert client.get_run(run_id).info.status == "FINISHED"


def test_missing_tracker_package_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    real_find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(
        tracking.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    run_dir = tmp_path / "run"
    code = train.main(["--env", "CartPole-v1", "--track", "wandb", "--total-steps", "100", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "--track wandb needs the wandb package" in err and "dqn-family[track]" in err
    assert not run_dir.exists()


def test_unknown_tracker_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["--track", "neptune", "--total-steps", "100"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert "--track" in err and "neptune" in err and "'mlflow'" in err and "'wandb'" in err


@pytest.mark.parametrize(
    "content",
    [
        {"track": "mlflow", "run_id": "../../etc\n", "key": "0" * 32},
        {"track": "mlflow", "run_id": 12, "key": "0" * 32},
        {"track": "mlflow", "run_id": "abc", "key": "not hex"},
        {"track": "mlflow", "run_id": "abc"},  # an older run's record: no key
        [1, 2],
    ],
)
def test_tracking_file_that_is_no_verifiable_record_starts_a_new_run_and_says_so(tmp_path, capsys, content):
    (tmp_path / tracking.TRACKING_FILE).write_text(json.dumps(content))
    assert tracking._recorded(tmp_path, "mlflow") is None
    [note] = capsys.readouterr().err.splitlines()
    assert note.startswith(f"note: {tmp_path / tracking.TRACKING_FILE} is not a verifiable record of a mlflow run")


def test_tracking_file_of_the_other_tracker_is_left_to_it(tmp_path, capsys):
    (tmp_path / tracking.TRACKING_FILE).write_text(json.dumps({"track": "wandb", "run_id": "abc", "key": "0" * 32}))
    assert tracking._recorded(tmp_path, "mlflow") is None and capsys.readouterr().err == ""


def test_real_wandb_offline_run_writes_its_files_in_the_run_directory(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    result = train.train(small_config(tmp_path / "run", track="wandb", total_steps=200, eval_frequency=200))
    run_id = json.loads((result.run_dir / tracking.TRACKING_FILE).read_text())["run_id"]
    [offline] = (result.run_dir / "wandb").glob(f"offline-run-*-{run_id}")
    assert (offline / f"run-{run_id}.wandb").stat().st_size > 0


def test_tune_trials_are_tracked_and_track_does_not_change_the_study(tmp_path, fake_wandb):
    pytest.importorskip("optuna")
    from dqn_family import tune
    from tests.tuning.test_tune import TINY

    out = tmp_path / "study"
    assert tune.main(["--trials", "2", "--out", str(out), "--track", "wandb", *TINY]) == 0
    groups = sorted((kwargs["group"], kwargs["name"]) for kwargs, _ in fake_wandb.runs)
    assert groups == [("study", "trial_0"), ("study", "trial_1")]
    assert tune.main(["--trials", "3", "--out", str(out), *TINY]) == 0  # continued without --track


def test_tracker_that_cannot_start_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus-scheme://nowhere")
    code = train.main(["--track", "mlflow", "--total-steps", "100", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--track mlflow could not start" in err
    assert not (tmp_path / "run").exists()  # all or nothing: no config.yaml or meta.json left behind


def test_unreachable_tracker_with_a_password_fails_in_seconds_without_showing_it(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret-pw@127.0.0.1:9")  # port 9: nothing listens
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    code = train.main(["--track", "mlflow", "--total-steps", "100", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "could not start" in err
    assert "s3cret-pw" not in err and "alice:***@127.0.0.1" in err
    assert time.monotonic() - started < 60  # MLflow's own retries took ~4 minutes
    assert not (tmp_path / "run").exists()


def test_resume_continues_only_a_tracked_run_that_is_verifiably_its_own(tmp_path, monkeypatch, capsys):
    """A run directory from someone else names another experiment's MLflow run in tracking.json:
    resuming it must not append to that run or change its state; a new tracked run starts."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    victim = train.train(small_config(tmp_path / "victim", track="mlflow")).run_dir
    victim_id = json.loads((victim / tracking.TRACKING_FILE).read_text())["run_id"]
    client = MlflowClient(uri)
    history = [(m.step, m.value) for m in client.get_metric_history(victim_id, "eval/mean_return")]
    finished = train.train(small_config(tmp_path / "attacker", track="mlflow")).run_dir
    forged = copy_run(finished, tmp_path / "forged", latest=RESUME_FROM)
    own = json.loads((forged / tracking.TRACKING_FILE).read_text())
    (forged / tracking.TRACKING_FILE).write_text(json.dumps({**own, "run_id": victim_id}))  # its own key, their id
    capsys.readouterr()
    train.resume(forged)
    assert f"names mlflow run {victim_id}, which is not verifiably this run's" in capsys.readouterr().err
    assert [(m.step, m.value) for m in client.get_metric_history(victim_id, "eval/mean_return")] == history
    assert client.get_run(victim_id).info.status == "FINISHED"
    new_id = json.loads((forged / tracking.TRACKING_FILE).read_text())["run_id"]
    assert new_id not in (victim_id, own["run_id"])
    assert [m.step for m in client.get_metric_history(new_id, "eval/mean_return")] == [300, 600]


def test_wandb_resume_with_a_forged_run_id_starts_a_new_run(tmp_path, fake_wandb):
    finished = train.train(small_config(tmp_path / "first", track="wandb")).run_dir
    run_dir = copy_run(finished, tmp_path / "resumed", latest=RESUME_FROM)
    recorded = json.loads((run_dir / tracking.TRACKING_FILE).read_text())
    (run_dir / tracking.TRACKING_FILE).write_text(json.dumps({**recorded, "run_id": "someone-elses-run"}))
    train.resume(run_dir)
    (first, _), (second, _) = fake_wandb.runs
    assert second["id"] not in (first["id"], "someone-elses-run")


def test_wandb_folder_planted_as_a_link_is_refused(tmp_path, fake_wandb):
    finished = train.train(small_config(tmp_path / "first", track="wandb")).run_dir
    run_dir = copy_run(finished, tmp_path / "resumed", latest=RESUME_FROM)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(run_dir / "wandb", ignore_errors=True)
    (run_dir / "wandb").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="is a symbolic link, not a folder"):
        train.resume(run_dir)
    assert list(elsewhere.iterdir()) == []
