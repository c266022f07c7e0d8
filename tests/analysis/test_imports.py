"""analysis and its command-line scripts start train.py as a program and never import it (house
style 2), so a multirun trial trains exactly as `python train.py` would."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO_ROOT / "analysis").glob("*.py")) + [REPO_ROOT / name for name in
                                                           ("multirun.py", "aggregate.py", "plot.py")]


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {node.module.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_analysis_never_imports_train_or_evaluate(path):
    assert not top_level_imports(path) & {"train", "evaluate"}
