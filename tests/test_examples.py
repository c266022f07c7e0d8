"""The notebooks in examples/: committed without outputs, and each runs from top to bottom in a
fresh Jupyter kernel (nbclient, installed with nbmake by the dev extra) against this checkout's code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
QUICKSTART = EXAMPLES / "quickstart.ipynb"


def test_quickstart_notebook_is_committed_without_outputs():
    cells = json.loads(QUICKSTART.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.slow
def test_quickstart_notebook_runs_and_plots_the_evaluation_curve(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The kernel is a new process: put this checkout first on its path, as pytest does for the tests.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "agg")  # %matplotlib inline still draws PNGs into the outputs
    notebook = nbformat.read(QUICKSTART, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "15,000 env steps" in text and "mean return" in text
    assert any("image/png" in output.get("data", {}) for output in outputs)
