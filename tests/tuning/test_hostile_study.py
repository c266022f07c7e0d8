"""tune.py against a study folder or database from someone else, and credentials: planted links
and FIFOs where the study writes (refused in one line, the victim untouched, no hang), trials
planted in study.db (validated like a config, importing fields kept out of best.yaml, stored
values printed bounded), a space that tunes infrastructure, a study name that leaves --out, and
a storage password that reaches no file, command line or message."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
import torch

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402

from dqn_family import tune  # noqa: E402
from dqn_family.configs import Config  # noqa: E402
from dqn_family.fileio import redact_credentials  # noqa: E402
from dqn_family.fileio.atomic import RefusedPath  # noqa: E402
from dqn_family.training.run_dir import create_run_dir  # noqa: E402
from dqn_family.tuning.report import write_figures  # noqa: E402
from dqn_family.tuning.study import STORAGE_ENV, open_storage, open_study  # noqa: E402
from dqn_family.tuning.workers import run_trials, worker_command, worker_environment  # noqa: E402
from tests.tuning.test_tune import TINY, settings  # noqa: E402

PASSWORD = "hunter2-secret"


@contextlib.contextmanager
def deadline(seconds: float):
    """TimeoutError in this (the main) thread after ``seconds``: a FIFO opened by mistake ends the test."""

    def expire(signal_number, frame):
        raise TimeoutError(f"still running after {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def tune_main(args: list[str]) -> int:
    try:
        with deadline(60):
            return tune.main(args)
    except SystemExit as exit_:  # argparse's own one-line errors
        return int(exit_.code or 0)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) and its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- planted links and FIFOs where the study writes ----------------------------------------------

PLANTED = [
    "study.db",
    "study.db-journal",
    "best.yaml",
    "best_3.yaml",
    "figures",
    "figures/optimization_history.png",
    "figures/param_importances.png",
    "trial_0",
]


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
@pytest.mark.parametrize("name", PLANTED)
def test_tune_refuses_a_planted_link_or_fifo_in_the_study_folder(tmp_path, capsys, name, kind):
    out, victim = tmp_path / "study", tmp_path / "victim"
    folder = name in ("figures", "trial_0")
    if folder:
        victim.mkdir()
        (victim / "optimization_history.png").write_bytes(b"the victim's own figure")
    else:
        victim.write_bytes(b"the victim's own bytes\n")
    before = snapshot(victim)
    planted = out / name
    planted.parent.mkdir(parents=True)
    if kind == "symlink":
        planted.symlink_to(victim, target_is_directory=folder)
    else:
        os.mkfifo(planted)
    assert tune_main(["--trials", "1", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tune.py: error: ") and str(planted) in err
    assert "symbolic link" in err if kind == "symlink" else "named pipe (FIFO)" in err
    assert snapshot(victim) == before
    assert {p.name for p in out.iterdir()} == {name.split("/")[0]}  # nothing else written (no study.db)


def test_write_figures_refuses_a_link_planted_after_the_start(tmp_path):
    """The write itself refuses (the check at the start is not the only guard)."""
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(params={"x": 1.0}, distributions={"x": FloatDistribution(0, 2)}, value=1.0)
    )
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"victim")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "optimization_history.png").symlink_to(victim)
    with pytest.raises(RefusedPath, match="symbolic link"):
        write_figures(study, settings(tmp_path), say=lambda line: None)
    assert victim.read_bytes() == b"victim"


def test_run_trials_refuses_a_trial_directory_planted_as_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "trial_0").symlink_to(victim, target_is_directory=True)
    with pytest.raises(RefusedPath, match="symbolic link"):
        run_trials(settings(tmp_path), say=lambda line: None)
    assert list(victim.iterdir()) == []


# --- trials planted in study.db ------------------------------------------------------------------


def planted_study(out: Path, trial: optuna.trial.FrozenTrial, flags: list[str] = TINY) -> None:
    """The study tune.py would open for ``--out out`` with ``flags``, holding ``trial``."""
    args, unknown = tune._parser().parse_known_args(["--trials", "1", "--out", str(out), *flags])
    chosen = tune.settings_from_args(args, unknown)
    out.mkdir(parents=True)
    study = open_study(chosen, open_storage(chosen.storage_url))
    study.add_trial(trial)


def valid_params() -> tuple[dict, dict]:
    """A trial the shipped dqn space can sample: every parameter at its low end or first choice."""
    space = settings(Path("unused")).space
    params = {name: getattr(param, "low", None) or param.choices[0] for name, param in space.items()}
    return params, {name: param.distribution() for name, param in space.items()}


def test_tune_refuses_a_planted_trial_naming_a_network_module(tmp_path, capsys, monkeypatch):
    (tmp_path / "evil_payload.py").write_text(
        f"open({str(tmp_path / 'MARKER')!r}, 'w').close()\nclass Net: pass\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    params, distributions = valid_params()
    out = tmp_path / "study"
    planted_study(
        out,
        optuna.trial.create_trial(
            params={**params, "network": "evil_payload:Net"},
            distributions={**distributions, "network": CategoricalDistribution(["evil_payload:Net"])},
            value=500.0,
        ),
    )
    assert tune_main(["--trials", "1", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "trial 0 has the parameter 'network', which the search space does not tune" in err
    assert not (out / "best.yaml").exists() and not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize(
    "name, value, distribution, expected",
    [
        ("bogus", 3, IntDistribution(1, 5), "trial 0 has the parameter 'bogus', which the search space does not tune"),
        ("hidden_sizes", "64,x", CategoricalDistribution(["64,x"]), "samples hidden_sizes from another range"),
        ("learning_rate", 5.0, FloatDistribution(1.0, 10.0), "samples learning_rate from another range"),
    ],
)
def test_tune_refuses_a_planted_trial_outside_the_space_in_one_line(
    tmp_path, capsys, name, value, distribution, expected
):
    params, distributions = valid_params()
    out = tmp_path / "study"
    planted_study(
        out,
        optuna.trial.create_trial(
            params={**params, name: value}, distributions={**distributions, name: distribution}, value=1.0
        ),
    )
    assert tune_main(["--trials", "1", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_tune_refuses_a_planted_trial_that_makes_an_invalid_config_in_one_line(tmp_path, capsys):
    params, distributions = valid_params()
    flags = [*TINY, "--buffer-size", "200"]  # the last --buffer-size wins; the space's batch_size 256 is above it
    out = tmp_path / "study"
    planted_study(
        out,
        optuna.trial.create_trial(params={**params, "batch_size": 256}, distributions=distributions, value=1.0),
        flags,
    )
    assert tune_main(["--trials", "1", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert "study 'CartPole-v1__dqn': trial 0's parameters do not make a valid config: " in err
    assert "batch_size" in err and err.count("\n") == 1 and not (out / "best.yaml").exists()


def test_tune_prints_a_planted_trial_attribute_bounded_and_escaped(tmp_path, capsys):
    params, distributions = valid_params()
    out = tmp_path / "study"
    huge = "\x1b[2J" + "A" * 1_000_000
    planted_study(
        out,
        optuna.trial.create_trial(
            params=params, distributions=distributions, value=500.0, user_attrs={"run_dir": huge}
        ),
    )
    assert tune_main(["--trials", "1", "--out", str(out), *TINY]) == 0  # the study is already complete
    printed = capsys.readouterr()
    best = [line for line in printed.out.splitlines() if line.startswith("best: trial 0")]
    assert len(best) == 1 and "\\x1b[2J" in best[0] and len(best[0]) < 600
    assert "\x1b" not in printed.out + printed.err and len(printed.out + printed.err) < 5_000


def test_tune_refuses_a_space_that_tunes_actors(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("actors: {type: int, low: 1, high: 4}\n", encoding="utf-8")
    assert tune_main(["--space", str(space), "--out", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"search space {space}: 'actors' cannot be tuned" in err
    assert "tunable: activation, actor_exploration, adam_eps, " in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


# --- the study name ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "."])
def test_tune_refuses_a_study_name_that_is_a_parent_or_this_folder(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert tune_main(["--study", name, *TINY]) == 2
    err = capsys.readouterr().err
    assert "--study must be 1 to 100 letters" in err and "(not '.' or '..')" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# --- credentials ---------------------------------------------------------------------------------


def test_redact_credentials_hides_url_and_query_passwords():
    assert redact_credentials("postgresql://user:p@ss:w0rd@db.example/x") == "postgresql://user:***@db.example/x"
    assert (
        redact_credentials("--storage=mysql://u:pw@h/db?a=1&password=pw2")
        == "--storage=mysql://u:***@h/db?a=1&password=***"
    )
    assert redact_credentials("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert redact_credentials("postgresql://user@h/db") == "postgresql://user@h/db"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [  # the review's cases: each printed its secret in full
        ("storage u:secret@127.0.0.1:1/db cannot be opened", "storage u:***@127.0.0.1:1/db cannot be opened"),
        ("postgresql://u:x@h:1/db?sslpassword=secret", "postgresql://u:***@h:1/db?sslpassword=***"),
        ("postgresql://u:sec ret@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
        (
            "API request to http://secrettoken@127.0.0.1:9/api failed",
            "API request to http://***@127.0.0.1:9/api failed",
        ),
        ("https://h/x?api_key=secret&a=1", "https://h/x?api_key=***&a=1"),
        ("env CartPole-v1 at step 3: ok", "env CartPole-v1 at step 3: ok"),
        ("module:Name and a@b", "module:Name and a@b"),
    ],
)
def test_redact_credentials_hides_the_forms_a_url_takes(text, redacted):
    assert redact_credentials(text) == redacted
    assert "secret" not in redact_credentials(text) and "sec ret" not in redact_credentials(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["--storage", f"postgresql://u:{PASSWORD}@h/db", "--trials", "2"],
        [f"--storage=postgresql://u:{PASSWORD}@h/db", "--trials", "2"],
        ["--stor", f"postgresql://u:{PASSWORD}@h/db", "--trials", "2"],
    ],
)
def test_worker_command_has_no_storage_and_the_environment_has_it(argv):
    command = worker_command([*argv, "--", "--total-steps", "300"])
    assert command[-6:] == ["--worker", "--trials", "2", "--", "--total-steps", "300"]
    assert not any(PASSWORD in word for word in command)
    assert worker_environment(f"postgresql://u:{PASSWORD}@h/db")[STORAGE_ENV] == f"postgresql://u:{PASSWORD}@h/db"


@pytest.mark.parametrize("worker", [["--worker"], []])
def test_tune_reads_the_storage_from_the_environment(tmp_path, monkeypatch, worker):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv(STORAGE_ENV, url)
    args, unknown = tune._parser().parse_known_args([*worker, "--out", str(tmp_path / "out"), *TINY])
    assert tune.settings_from_args(args, unknown).storage_url == url


def test_run_directory_meta_json_records_the_command_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["tune.py", "--storage", f"postgresql://user:{PASSWORD}@db/x", "--trials", "2"])
    run_dir = create_run_dir(Config(run_dir=str(tmp_path / "run")), torch.device("cpu"))
    meta = (run_dir / "meta.json").read_text()
    assert PASSWORD not in meta
    assert json.loads(meta)["command"] == ["tune.py", "--storage", "postgresql://user:***@db/x", "--trials", "2"]


def test_tune_unparsable_storage_url_error_has_no_password(tmp_path, capsys):
    url = f"postgresql://user:{PASSWORD}@host:notaport/db"
    assert tune_main(["--storage", url, "--out", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "storage postgresql://user:***@host:notaport/db cannot be opened" in err
    assert PASSWORD not in err and err.count("\n") == 1
