"""Imports go one way (house style 2): ``checkpoints`` builds on ``configs`` only, and no lower
package reaches up into it."""

from __future__ import annotations

import pytest

from tests.test_imports import PROJECT_MODULES, imported_top_level_modules, package_files


@pytest.mark.parametrize("path", package_files("checkpoints"), ids=lambda p: p.name)
def test_checkpoints_imports_only_configs_of_the_project(path):
    assert imported_top_level_modules(path) & (PROJECT_MODULES | {"checkpoints"}) <= {
        "configs",
        "checkpoints",
        "fileio",
    }


@pytest.mark.parametrize("package", ["agents", "configs", "envs", "replay"])
def test_lower_packages_never_import_checkpoints(package):
    for path in package_files(package):
        assert "checkpoints" not in imported_top_level_modules(path), path.name
