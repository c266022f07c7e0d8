"""A run directory never chooses what is imported (configs.trust): a 'module:Name' in a run's
config.yaml is imported only if the user names it or passes --trust-imports, never from inside
the run directory, and the current directory is importable for names the user gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dqn_family.configs.trust import UntrustedImportError, check_run_imports, module_files
from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command

PAYLOAD = 'from pathlib import Path\nPath(__file__).resolve().parent.joinpath("PWNED").write_text("x")\n'


def plant_payload(run_dir: Path, field: str, value: str) -> None:
    (run_dir / "payload.py").write_text(PAYLOAD)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config[field] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def evil_run(finished_run, tmp_path) -> tuple[Path, Path]:
    """The issue's reproduction: runs/evil/ beside a checkout-like folder, naming its own payload."""
    workdir = tmp_path / "work"
    run_dir = workdir / "runs" / "evil"
    shutil.copytree(finished_run, run_dir)
    plant_payload(run_dir, "env_id", "runs.evil.payload:CartPole-v1")
    return workdir, run_dir


def test_evaluate_refuses_env_module_named_by_run_and_imports_nothing(evil_run):
    workdir, run_dir = evil_run
    process = run_command(REPO_ROOT / "evaluate.py", "runs/evil", "--episodes", "1", cwd=workdir)
    assert_one_line_error(process, contains="--trust-imports")
    assert not (run_dir / "PWNED").exists()


def test_evaluate_refuses_module_inside_run_dir_even_when_trusted(evil_run):
    workdir, run_dir = evil_run
    # Trusted names come from the Python path (never the current directory): put the folder there.
    process = run_command(
        REPO_ROOT / "evaluate.py",
        "runs/evil",
        "--episodes",
        "1",
        "--trust-imports",
        cwd=workdir,
        env={"PYTHONPATH": str(workdir)},
    )
    assert_one_line_error(process, contains="inside the run directory")
    assert not (run_dir / "PWNED").exists()


def test_evaluate_refuses_network_module_named_by_run(run_copy):
    plant_payload(run_copy, "network", "payload:Net")
    process = run_command(REPO_ROOT / "evaluate.py", run_copy, "--episodes", "1", cwd=run_copy)
    assert_one_line_error(process, contains="network")
    assert not (run_copy / "PWNED").exists()


def test_resume_refuses_module_named_by_run_and_imports_nothing(evil_run):
    workdir, run_dir = evil_run
    process = run_command(REPO_ROOT / "train.py", "--resume", "runs/evil", cwd=workdir)
    assert_one_line_error(process, contains="--trust-imports")
    assert not (run_dir / "PWNED").exists()


def test_resume_refuses_module_inside_run_dir_even_when_given_again(evil_run):
    workdir, run_dir = evil_run
    process = run_command(
        REPO_ROOT / "train.py", "--resume", "runs/evil", "--env", "runs.evil.payload:CartPole-v1", cwd=workdir
    )
    assert_one_line_error(process, contains="inside the run directory")
    assert not (run_dir / "PWNED").exists()


def test_check_run_imports_accepts_value_the_user_gave_again(tmp_path):
    values = {"env_id": "tests.scripted_envs:TestOnly/Counting-v0", "network": None}
    check_run_imports(values, tmp_path, given=["tests.scripted_envs:TestOnly/Counting-v0"])
    with pytest.raises(UntrustedImportError, match="env_id"):
        check_run_imports(values, tmp_path, given=["tests.scripted_envs:Other-v0"])


def test_check_run_imports_ignores_plain_env_ids(tmp_path):
    check_run_imports({"env_id": "CartPole-v1", "network": None}, tmp_path)


def test_module_files_finds_packages_on_the_way_without_importing(tmp_path, monkeypatch):
    package = tmp_path / "pkg_never_imported"
    package.mkdir()
    (package / "__init__.py").write_text("raise SystemExit('imported!')\n")
    (package / "mod.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module_files("pkg_never_imported.mod") == [package / "__init__.py", package, package / "mod.py"]


def test_train_imports_network_module_from_the_current_directory(tmp_path):
    (tmp_path / "my_nets.py").write_text(
        "from torch import nn\n"
        "def GatedQNet(observation_shape, n_actions):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(observation_shape[0], n_actions))\n"
    )
    run_dir = tmp_path / "run"
    trained = run_command(
        REPO_ROOT / "train.py",
        "--env",
        "CartPole-v1",
        "--network",
        "my_nets:GatedQNet",
        "--total-steps",
        "100",
        "--learning-starts",
        "50",
        "--batch-size",
        "8",
        "--buffer-size",
        "100",
        "--eval-frequency",
        "0",
        "--no-progress",
        "--run-dir",
        run_dir,
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    # A run's names are imported, when trusted, from the Python path: never from the current directory.
    evaluated = run_command(REPO_ROOT / "evaluate.py", run_dir, "--episodes", "1", "--trust-imports", cwd=tmp_path)
    assert_one_line_error(evaluated, contains="PYTHONPATH")
    evaluated = run_command(
        REPO_ROOT / "evaluate.py",
        run_dir,
        "--episodes",
        "1",
        "--trust-imports",
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "mean return" in evaluated.stdout


@pytest.mark.parametrize("trusted_prefix", ["envs.pomdp", "dqn_family.envs.popgym_tasks"])
@pytest.mark.parametrize("command", ["evaluate", "export", "resume"])
def test_trusted_env_module_cannot_carry_a_second_import(run_copy, trusted_prefix, command):
    """The issue's attack: '<trusted module>:payload:Id' passed the check and gymnasium.make imported
    'payload' from the current directory (the run directory). The env id's grammar has one colon."""
    plant_payload(run_copy, "env_id", f"{trusted_prefix}:payload:CartPole-v1")
    args = {
        "evaluate": [REPO_ROOT / "evaluate.py", ".", "--episodes", "1"],
        "export": [REPO_ROOT / "export.py", ".", "--format", "pt2"],
        "resume": [REPO_ROOT / "train.py", "--resume", "."],
    }[command]
    before = sorted(path.name for path in run_copy.iterdir())
    process = run_command(*args, cwd=run_copy)
    assert_one_line_error(process, contains="is not 'EnvId'")
    assert not (run_copy / "PWNED").exists()
    assert sorted(path.name for path in run_copy.iterdir()) == before


def test_package_imported_for_a_run_is_never_found_in_the_current_directory(run_copy):
    """``python -m`` puts the current directory first on the import path: a run directory holding
    ``minatar.py`` would be what a MinAtar env id imports. Reading a run, the current directory is
    off the path, so the installed package (or none) is imported."""
    pytest.importorskip("minatar")
    (run_copy / "minatar.py").write_text(PAYLOAD)
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["env_id"] = "MinAtar/Breakout-v1"
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    process = run_command("-m", "dqn_family.evaluate", ".", "--episodes", "1", cwd=run_copy)
    assert_one_line_error(process, contains="does not fit the network")  # a CartPole model, a MinAtar env
    assert not (run_copy / "PWNED").exists()


@pytest.mark.parametrize("planted", ["numpy", "gymnasium", "yaml"])
@pytest.mark.parametrize("command", ["evaluate", "export", "aggregate"])
def test_python_m_from_inside_a_run_never_imports_a_planted_module(run_copy, planted, command):
    """``python -m dqn_family.X`` from inside a run directory: the command's own imports (numpy,
    gymnasium, yaml) come before any of its code, so the current folder is taken off the path as
    the package is first imported (dqn_family/__init__.py)."""
    (run_copy / f"{planted}.py").write_text(PAYLOAD)
    args = {"evaluate": [".", "--episodes", "1"], "export": [".", "--format", "pt2"], "aggregate": ["."]}[command]
    process = run_command("-m", f"dqn_family.{command}", *args, cwd=run_copy)
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    assert not (run_copy / "PWNED").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("env_id", "a:b:CartPole-v1"), ("env_id", "../x:CartPole-v1"), ("env_id", ":CartPole-v1"), ("network", "m:a:b")],
)
def test_config_refuses_specs_outside_the_grammar(field, value):
    from dqn_family.configs import Config, ConfigError

    with pytest.raises(ConfigError, match="module"):
        Config(**{field: value})
