"""Every script answers --help without importing torch, gymnasium or Ray (seconds of imports to
print a page of text): its parser is built from the config dataclass and the light modules alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "gymnasium", "ray")

# Runs a command's --help (RUN is how: a script by path, or a console script's entry point), then
# prints which heavy packages were imported.
_HELP_WRAPPER = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    {run}
except SystemExit as stop:
    code = stop.code
else:
    code = None
print("heavy imports:", sorted(name for name in {heavy!r} if name in sys.modules), file=sys.stderr)
sys.exit(code)
"""
_SCRIPT = 'runpy.run_path(sys.argv[0], run_name="__main__")'
_ENTRY_POINT = 'from dqn_family import cli; getattr(cli, sys.argv[0].removeprefix("dqn-"))()'


def help_of(run: str, command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _HELP_WRAPPER.format(run=run, heavy=HEAVY), command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "export.py", "tune.py", "multirun.py"])
def test_script_help_imports_no_torch_gymnasium_or_ray(tmp_path, script):
    done = help_of(_SCRIPT, str(REPO_ROOT / script), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script}")
    assert done.stderr.splitlines()[-1] == "heavy imports: []"


def test_export_formats_of_the_help_are_those_export_writes():
    from dqn_family.deployment import SUFFIXES
    from dqn_family.deployment.formats import EXPORTERS, RUNNERS

    assert set(SUFFIXES) == set(EXPORTERS) == set(RUNNERS)


@pytest.mark.parametrize("command", ["dqn-train", "dqn-evaluate", "dqn-export", "dqn-tune", "dqn-multirun"])
def test_console_script_help_imports_no_torch_gymnasium_or_ray(tmp_path, command):
    done = help_of(_ENTRY_POINT, command, tmp_path)  # as pip's generated script calls the entry point
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    assert done.stderr.splitlines()[-1] == "heavy imports: []"
