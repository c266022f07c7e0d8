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
    process = run_command(REPO_ROOT / "evaluate.py", "runs/evil", "--episodes", "1", "--trust-imports", cwd=workdir)
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
    evaluated = run_command(REPO_ROOT / "evaluate.py", run_dir, "--episodes", "1", "--trust-imports", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "mean return" in evaluated.stdout
