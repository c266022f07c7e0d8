"""Imports go one way (house style 2): read from the source files' import statements with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "dqn_family"
PROJECT_MODULES = {
    "agents",
    "configs",
    "envs",
    "replay",
    "training",
    "fileio",
    "checkpoints",
    "analysis",
    "train",
    "evaluate",
    "deployment",
    "export",
}


def project_module(name: str) -> str:
    """The module a dotted import name means: the part after the ``dqn_family.`` package that owns
    the project's modules (``dqn_family.envs.make`` -> ``envs``), else its first part."""
    parts = name.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else parts[0]


def imported_top_level_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports (relative imports count as its package;
    ``from dqn_family import envs`` counts as envs)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(project_module(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.add(path.parent.name)
        elif isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(project_module(node.module))
    return names


def package_files(package: str) -> list[Path]:
    files = sorted((REPO_ROOT / package).glob("**/*.py"))
    assert files, f"no source files found for {package}"
    return files


def test_imported_top_level_modules_reads_all_import_forms(tmp_path):
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text(
        "import os.path\nimport numpy as np, torch\nfrom dqn_family.envs.make import x\nfrom . import y\n"
        "import dqn_family.replay.buffer\ndef f():\n    from dqn_family import train\n"
    )
    assert imported_top_level_modules(source) == {"os", "numpy", "torch", "envs", "pkg", "replay", "train"}


@pytest.mark.parametrize("path", package_files("agents"), ids=lambda p: p.name)
def test_agents_never_imports_envs_or_train(path):
    assert not imported_top_level_modules(path) & {"envs", "train", "evaluate"}


@pytest.mark.parametrize("path", package_files("replay"), ids=lambda p: p.name)
def test_replay_imports_only_numpy_and_torch(path):
    allowed = {"__future__", "numpy", "torch", "replay"}
    third_party_or_project = {
        name for name in imported_top_level_modules(path) if name in PROJECT_MODULES or not _is_stdlib(name)
    }
    assert third_party_or_project <= allowed


@pytest.mark.parametrize("package", ["agents", "configs", "envs", "replay", "training"])
def test_packages_never_import_train_or_evaluate(package):
    for path in package_files(package):
        assert not imported_top_level_modules(path) & {"train", "evaluate"}, path.name


def test_configs_imports_only_fileio_of_the_project():
    for path in package_files("configs"):
        assert not imported_top_level_modules(path) & (PROJECT_MODULES - {"configs", "fileio"}), path.name


@pytest.mark.parametrize("path", package_files("fileio"), ids=lambda p: p.name)
def test_fileio_imports_nothing_of_the_project(path):
    assert not imported_top_level_modules(path) & (PROJECT_MODULES - {"fileio"})


def test_evaluate_never_imports_train():
    assert "train" not in imported_top_level_modules(REPO_ROOT / "evaluate.py")


@pytest.mark.parametrize("path", package_files("deployment"), ids=lambda p: p.name)
def test_deployment_never_imports_the_scripts(path):
    assert not imported_top_level_modules(path) & {"train", "evaluate", "export"}


def test_play_onnx_imports_only_onnxruntime_gymnasium_and_numpy():
    imported = imported_top_level_modules(REPO_ROOT / "examples" / "play_onnx.py")
    assert {name for name in imported if not _is_stdlib(name)} == {"onnxruntime", "gymnasium", "numpy"}


def _is_stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names
