"""The installed library is one package, dqn_family, that owns the repository's folders and scripts:
a user's own folder named like one of them (a configs/ of YAML files is common) never shadows it,
and the commands are console scripts."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys

import pytest


def python_in(folder, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("regular_package", [False, True], ids=["folder of YAML files", "package of its own"])
def test_user_folders_named_like_ours_do_not_shadow_the_library(tmp_path, regular_package):
    for name in ("configs", "agents", "envs", "replay", "training", "analysis", "fileio", "checkpoints"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "experiment.yaml").write_text("learning_rate: 0.001\n")
        if regular_package:
            (tmp_path / name / "__init__.py").write_text("raise ImportError('the user\\'s own package')\n")
    (tmp_path / "train.py").write_text("raise ImportError('the user\\'s own train.py')\n")
    done = python_in(
        tmp_path,
        "from dqn_family import train; from dqn_family.configs import resolve_config; "
        "print(resolve_config({'learning_rate': 1e-3}).learning_rate)",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0.001"


def test_distribution_installs_one_top_level_package():
    distribution = importlib.metadata.distribution("dqn-family")
    assert distribution.read_text("top_level.txt").split() == ["dqn_family"]


@pytest.mark.parametrize(
    "command", ["dqn-train", "dqn-evaluate", "dqn-multirun", "dqn-aggregate", "dqn-plot", "dqn-tune", "dqn-export"]
)
def test_console_script_runs_from_any_folder(tmp_path, command):
    (tmp_path / "configs").mkdir()  # a folder of the user's that shadowed ours before
    executable = shutil.which(command)
    assert executable is not None, f"{command} is not installed (pip install -e .)"
    done = subprocess.run([executable, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
