"""analysis and its command-line scripts start train.py as a program and never import it (house
style 2), so a multirun trial trains exactly as `python train.py` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_imports import imported_top_level_modules

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO_ROOT / "analysis").glob("*.py")) + [
    REPO_ROOT / name for name in ("multirun.py", "aggregate.py", "plot.py")
]


def top_level_imports(path: Path) -> set[str]:
    return imported_top_level_modules(path)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_analysis_never_imports_train_or_evaluate(path):
    assert not top_level_imports(path) & {"train", "evaluate"}
