"""Every script answers --help without importing torch, gymnasium or Ray (seconds of imports to
print a page of text): its parser is built from the config dataclass and the light modules alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "gymnasium", "ray")

# Runs the script as `python SCRIPT --help` would, then prints which heavy packages were imported.
_HELP_WRAPPER = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    code = stop.code
else:
    code = None
print("heavy imports:", sorted(name for name in {heavy!r} if name in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "export.py", "tune.py", "multirun.py"])
def test_script_help_imports_no_torch_gymnasium_or_ray(tmp_path, script):
    done = subprocess.run(
        [sys.executable, "-c", _HELP_WRAPPER.format(heavy=HEAVY), str(REPO_ROOT / script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script}")
    assert done.stderr.splitlines()[-1] == "heavy imports: []"


def test_export_formats_of_the_help_are_those_export_writes():
    from dqn_family.deployment import SUFFIXES
    from dqn_family.deployment.formats import EXPORTERS, RUNNERS

    assert set(SUFFIXES) == set(EXPORTERS) == set(RUNNERS)


# The console scripts' entry points (dqn_family.cli), called as pip's generated script calls them.
_ENTRY_WRAPPER = """
import sys
from dqn_family import cli
sys.argv = [sys.argv[1], "--help"]
try:
    getattr(cli, sys.argv[0].removeprefix("dqn-"))()
except SystemExit as stop:
    code = stop.code
else:
    code = None
print("heavy imports:", sorted(name for name in {heavy!r} if name in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("command", ["dqn-train", "dqn-evaluate", "dqn-export", "dqn-tune", "dqn-multirun"])
def test_console_script_help_imports_no_torch_gymnasium_or_ray(tmp_path, command):
    done = subprocess.run(
        [sys.executable, "-c", _ENTRY_WRAPPER.format(heavy=HEAVY), command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    assert done.stderr.splitlines()[-1] == "heavy imports: []"
