"""Every lesson notebook runs from top to bottom (its claims are asserts), and none is committed
with outputs."""

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from scratchgpt.lessons.real_data import BESIDE_CHECKOUT

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_nine_lessons():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08", "09"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_runs_again(path, tmp_path, monkeypatch):
    """Run all, as a student does; where the lesson wrote something beside itself (its runs), Run all
    again in the same folder, as a student re-running the lesson does. What it writes goes under
    runs/, which git ignores. Cells are bounded by steps, not seconds; the timeout only catches a hang."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if path.stem == "09_real_data" and not BESIDE_CHECKOUT.is_dir() and not os.environ.get("SCRATCHGPT_REAL_DATA"):
        pytest.skip(f"lesson 09 reads the real data sets, which are not at {BESIDE_CHECKOUT}")
    folder = tmp_path / "notebooks"  # beside the test's own cache, which is not the lesson's
    folder.mkdir()
    execute(path, folder)  # raises CellExecutionError, with the failing cell, if an assert fails
    written = {p.name for p in folder.iterdir()}
    assert written <= {"runs"}, f"{path.name} wrote {written - {'runs'}} outside runs/"
    if written:
        execute(path, folder)


def execute(path, folder):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
