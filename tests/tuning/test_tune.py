"""tune.py and tuning/: a tiny study end to end (run directories, objective values, best.yaml that
trains, figures), pruning through train()'s evaluation hook, a study continued after SIGKILL,
parallel workers, NSGA-II's Pareto configs, and the command line's one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402

from dqn_family import evaluate, train, tune  # noqa: E402
from dqn_family.configs import load_config  # noqa: E402
from dqn_family.tuning.objective import objective_value, too_few_evaluations  # noqa: E402
from dqn_family.tuning.report import dashboard_line, write_best  # noqa: E402
from dqn_family.tuning.space import load_space, shipped_space_path  # noqa: E402
from dqn_family.tuning.study import (  # noqa: E402
    TuneSettings,
    fail_dead_trials,
    open_storage,
    open_study,  # noqa: E402
    this_worker,
)
from dqn_family.tuning.workers import run_trials  # noqa: E402
from tests.run_logs import read_scalars  # noqa: E402

# 300 env steps per trial, evaluated (2 episodes) at 100, 200 and 300: a trial takes about a second.
TINY = [
    "--total-steps",
    "300",
    "--eval-frequency",
    "100",
    "--eval-episodes",
    "2",
    "--learning-starts",
    "50",
    "--buffer-size",
    "300",
    "--device",
    "cpu",
    "--checkpoint-every",
    "0",
]
TINY_OVERRIDES = dict(
    total_steps=300,
    eval_frequency=100,
    eval_episodes=2,
    learning_starts=50,
    buffer_size=300,
    device="cpu",
    checkpoint_every=0,
)


def load(out: Path, name: str = "CartPole-v1__dqn") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def settings(tmp_path: Path, **changes) -> TuneSettings:
    values = dict(
        env_id="CartPole-v1",
        algo="dqn",
        trials=1,
        study_name="s",
        storage_url=f"sqlite:///{tmp_path / 'db'}",
        out=tmp_path,
        space=load_space(shipped_space_path("CartPole-v1", "dqn")),
        overrides={**TINY_OVERRIDES, "progress": False},
    )
    values.update(changes)
    return TuneSettings(**values)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """A 3-trial study through tune.py's command line (TPE, median pruner, which cannot prune
    before its 5 startup trials). Returns (exit code, out folder)."""
    out = tmp_path_factory.mktemp("tune") / "study"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = tune.main(["--trials", "3", "--out", str(out), *TINY])
    (out.parent / "stdout.txt").write_text(printed.getvalue())  # what tune.py printed, for the tests of its lines
    return code, out


# --- objective ----------------------------------------------------------------------------------


def test_objective_value_mean_last_is_the_mean_of_the_last_three_evaluations():
    assert objective_value("mean-last", [10.0, 20.0, 30.0, 40.0]) == 30.0
    assert objective_value("mean-last", [10.0, 20.0]) == 15.0


def test_objective_value_auc_is_the_mean_of_all_evaluations():
    assert objective_value("auc", [10.0, 20.0, 30.0, 40.0]) == 25.0


# --- a tiny study -------------------------------------------------------------------------------


def test_tune_tiny_study_finishes_three_trials_each_a_run_directory(tiny_study):
    code, out = tiny_study
    trials = load(out).get_trials()
    assert code == 0
    assert [(t.number, t.state) for t in trials] == [
        (0, TrialState.COMPLETE),
        (1, TrialState.COMPLETE),
        (2, TrialState.COMPLETE),
    ]
    for trial in trials:
        run_dir = out / f"trial_{trial.number}"
        assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 300
        assert load_config(run_dir / "config.yaml").learning_rate == trial.params["learning_rate"]


def test_tune_prints_one_line_per_finished_trial_with_state_value_and_time(tiny_study):
    _, out = tiny_study
    lines = [line for line in (out.parent / "stdout.txt").read_text().splitlines() if line.startswith("trial ")]
    pattern = r"trial (\d): (COMPLETE|PRUNED at env step [\d,]+), value (-?[\d.]+), ([\d.]+) s \(learning_rate=.*\)"
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert len(lines) == 3 and all(matches), lines
    trials = load(out).get_trials()
    assert [int(m[1]) for m in matches] == [0, 1, 2]
    assert [float(m[3]) for m in matches] == [round(t.value, 1) for t in trials]
    assert [float(m[4]) for m in matches] == [round(t.duration.total_seconds(), 1) for t in trials]


def test_too_few_evaluations_warns_when_mean_last_averages_fewer_than_three(tmp_path):
    two = settings(tmp_path, overrides={**TINY_OVERRIDES, "eval_frequency": 150})
    assert too_few_evaluations(two) == (
        "--total-steps 300 with --eval-frequency 150 gives each trial 2 periodic evaluation(s), and the "
        "objective mean-last is the mean of the last 3: here it is the mean of 2; for 3, set --eval-frequency "
        "to 100 or less"
    )
    assert too_few_evaluations(settings(tmp_path)) is None  # 300 // 100 = 3
    assert too_few_evaluations(settings(tmp_path, overrides=two.overrides, objective="auc")) is None


def test_dashboard_line_says_how_to_install_optuna_dashboard_when_missing(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert dashboard_line("sqlite:////s/study.db") == (
        "dashboard: optuna-dashboard is not installed; install it (pip install optuna-dashboard), "
        "then: optuna-dashboard sqlite:////s/study.db"
    )
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert dashboard_line("postgresql://u:pw@h/db") == "dashboard: optuna-dashboard postgresql://u:***@h/db"


def test_tune_trial_value_is_mean_of_its_last_three_logged_evaluations(tiny_study):
    _, out = tiny_study
    for trial in load(out).get_trials():
        evaluations = [value for _, value in read_scalars(out / f"trial_{trial.number}")["eval/mean_return"]]
        assert len(evaluations) == 3  # at 100, 200 and 300 env steps
        assert trial.value == pytest.approx(np.mean(evaluations))


def test_tune_trial_run_directory_is_evaluable(tiny_study):
    _, out = tiny_study
    assert evaluate.main([str(out / "trial_0"), "--episodes", "1"]) == 0


def test_tune_best_yaml_holds_the_best_trials_params_and_trains(tiny_study, tmp_path):
    _, out = tiny_study
    best = load(out).best_trial
    config = load_config(out / "best.yaml")
    assert (config.learning_rate, config.batch_size, config.run_dir) == (
        best.params["learning_rate"],
        best.params["batch_size"],
        None,
    )
    assert config.hidden_sizes == tuple(int(w) for w in best.params["hidden_sizes"].split(","))
    code = train.main(
        [
            "--config",
            str(out / "best.yaml"),
            "--total-steps",
            "150",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "run" / "summary.json").is_file()


def test_tune_writes_study_figures(tiny_study):
    _, out = tiny_study
    names = {path.name for path in (out / "figures").iterdir()}
    assert {"optimization_history.png", "parallel_coordinate.png", "param_importances.png"} <= names


def test_tune_rerun_with_more_trials_tops_the_study_up(tiny_study, capsys):
    code, out = tiny_study
    assert tune.main(["--trials", "4", "--out", str(out), *TINY]) == 0
    assert [t.number for t in load(out).get_trials()] == [0, 1, 2, 3]
    assert tune.main(["--trials", "4", "--out", str(out), *TINY]) == 0  # nothing left to do
    assert len(load(out).get_trials()) == 4


def test_tune_rerun_with_other_settings_is_refused(tiny_study, capsys):
    _, out = tiny_study
    assert tune.main(["--trials", "4", "--out", str(out), "--objective", "auc", *TINY]) == 2
    assert "objective differ" in capsys.readouterr().err


# --- pruning ------------------------------------------------------------------------------------


def test_run_trials_pruned_trial_stops_at_first_evaluation_and_run_dir_says_so(tmp_path):
    run_trials(settings(tmp_path), pruner=optuna.pruners.ThresholdPruner(lower=1e9), say=lambda line: None)
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db'}").get_trials()[0]
    summary = json.loads((tmp_path / "trial_0" / "summary.json").read_text())
    assert trial.state == TrialState.PRUNED and trial.last_step == 100
    assert summary["env_steps"] == 100  # stopped at the first evaluation, not at total_steps 300
    assert summary["stopped_early"].startswith("pruned by Optuna")
    assert json.loads((tmp_path / "trial_0" / "trial.json").read_text())["pruned"] is True


def test_tune_refuses_pruner_with_nsga2(capsys, tmp_path):
    assert tune.main(["--sampler", "nsga2", "--pruner", "median", "--out", str(tmp_path), *TINY]) == 2
    assert "Optuna cannot prune multi-objective studies" in capsys.readouterr().err


# --- multi-objective ----------------------------------------------------------------------------


def test_nsga2_study_writes_a_config_per_pareto_optimal_trial(tmp_path):
    chosen = settings(tmp_path, sampler="nsga2", pruner="none", trials=2)
    run_trials(chosen, say=lambda line: None)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db'}")
    files = write_best(study, chosen)
    assert all(len(trial.values) == 2 for trial in study.trials)  # (mean return, training seconds)
    assert sorted(files) == sorted(tmp_path / f"best_{trial.number}.yaml" for trial in study.best_trials)
    assert all(load_config(path).run_dir is None for path in files)


# --- workers that are gone ----------------------------------------------------------------------


def test_fail_dead_trials_fails_running_trial_whose_process_ended(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'db'}")
    study = open_study(settings(tmp_path), storage)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone, alive = study.ask(), study.ask()
    gone.set_user_attr("worker", {**this_worker(), "pid": int(dead.stdout), "started": "0"})
    alive.set_user_attr("worker", this_worker())
    assert fail_dead_trials(study, storage) == [gone.number]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]


@pytest.mark.slow
def test_tune_continued_after_sigkill_has_the_requested_finished_trials(tmp_path):
    out = tmp_path / "study"
    command = [
        sys.executable,
        "-m",
        "dqn_family.tune",
        "--trials",
        "2",
        "--out",
        str(out),
        "--pruner",
        "none",
        *TINY[:1],
        "5000",
        *TINY[2:],
    ]  # seconds per trial: time to see one RUNNING and kill it
    log = tmp_path / "first.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        # A trial's run directory is made after the trial is RUNNING in the study. Only the file
        # system is watched here: opening the SQLite study while tune.py creates it could race.
        deadline = time.monotonic() + 120
        while not list(out.glob("trial_*/config.yaml")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert process.poll() is None, f"tune.py ended before a trial started: {log.read_text()[-2000:]}"
        assert list(out.glob("trial_*/config.yaml")), "no trial started"
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed = _running_trials(out)
    assert len(killed) == 1, "the trial seen running ended just before the kill; run the test again"
    killed = killed[0]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    trials = load(out).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert trials[killed].state == TrialState.FAIL
    assert len(finished) == 2 and killed not in {t.number for t in finished}
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)  # each trial its own directory


def _running_trials(out: Path) -> list[int]:
    if not (out / "study.db").exists():
        return []
    try:
        return [t.number for t in load(out).get_trials(states=(TrialState.RUNNING,)) if "worker" in t.user_attrs]
    except Exception:  # the study is being created
        return []


@pytest.mark.slow
def test_tune_two_local_workers_share_the_study_without_duplicates(tmp_path):
    out = tmp_path / "study"
    assert tune.main(["--trials", "3", "--workers", "2", "--out", str(out), *TINY]) == 0
    trials = load(out).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 3 <= len(finished) <= 4  # two workers may both start the last trial: at most workers - 1 more
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2
    assert all((out / f"trial_{t.number}" / "summary.json").is_file() for t in finished)


# --- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--trials", "0"], "--trials must be >= 1"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--sampler", "grid"], "argument --sampler: invalid choice"),
        (["--storage", "nosuchdb://x"], "storage nosuchdb://x cannot be opened"),
        (["--storage", "sqlite:////nonexistent-folder/x/study.db"], "cannot be opened"),
        (["--eval-frequency", "0"], "--eval-frequency must be between 1 and --total-steps"),
        (["--algo", "nope"], "--algo must be one of"),
        (["--env", "NoSuchEnv-v0"], "is not registered"),
        (["--learning-rate", "0.01"], "learning_rate is both fixed by a train flag and in the search space"),
        (["--", "--env", "Acrobot-v1"], "env_id is set by tune.py itself: use tune.py's --env"),
        (["--study", "../x"], "--study must be 1 to 100 letters"),
    ],
)
def test_tune_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, args, expected):
    own, after = (args[: args.index("--")], args[args.index("--") :]) if "--" in args else (args, [])
    try:
        code = tune.main([*TINY, *own, "--out", str(tmp_path / "out"), *after])
    except SystemExit as exit_:  # argparse's own errors (one line too: configs.make_parser)
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_tune_cli_bad_space_file_exits_2_naming_file_and_key(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("gamma: {type: float, low: 0.999, high: 0.9}\n")
    assert tune.main(["--space", str(space), "--out", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"search space {space}: 'gamma': low (0.999) is above high (0.9)" in err and err.count("\n") == 1


def test_tune_workers_never_import_from_the_folder_tune_runs_in(tmp_path):
    """Worker processes (python -m dqn_family.tune --worker) start in the user's folder: a numpy.py
    planted there must not be what they import."""
    (tmp_path / "numpy.py").write_text('open(__file__ + ".PWNED", "w").write("x")\n')
    done = subprocess.run(
        [sys.executable, "-m", "dqn_family.tune", "--trials", "2", "--workers", "2", "--out", str(tmp_path / "s")]
        + TINY,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not list(tmp_path.glob("*.PWNED"))
    assert done.returncode == 0, done.stderr[-2000:]
