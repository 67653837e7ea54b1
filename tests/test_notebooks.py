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
    again in the same folder, as a student re-running the lesson does, as far as the cell that first
    writes: it must run on the first run's files, and leave none of them behind (so every later
    cell writes afresh, as the first time). What it writes goes under runs/, which git ignores.
    Cells are bounded by steps, not seconds; the timeout only catches a hang."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if path.stem == "09_real_data" and not BESIDE_CHECKOUT.is_dir() and not os.environ.get("SCRATCHGPT_REAL_DATA"):
        pytest.skip(f"lesson 09 reads the real data sets, which are not at {BESIDE_CHECKOUT}")
    folder = tmp_path / "notebooks"  # beside the test's own cache, which is not the lesson's
    folder.mkdir()
    first_writer = execute(path, folder)  # raises CellExecutionError, with the failing cell, if an assert fails
    written = {p.name for p in folder.iterdir()}
    assert written <= {"runs"}, f"{path.name} wrote {written - {'runs'}} outside runs/"
    if first_writer is None:
        return  # wrote nothing: a rerun is the first run again
    before = _files(folder)
    assert before, f"{path.name} wrote only empty folders"
    execute(path, folder, until=first_writer)
    left = {p for p, mtime in _files(folder).items() if before.get(p) == mtime}
    assert not left, f"{path.name}, Run all again: cell {first_writer} left the first run's {sorted(left)[:3]}"


def execute(path, folder, until=None):
    """Run the notebook's cells in `folder` (up to cell `until` included); the index of the first
    cell after which `folder` holds something, or None."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    first_writer = None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            if first_writer is None and any(folder.iterdir()):
                first_writer = index
            if index == until:
                break
    return first_writer


def _files(folder):
    """{path: modification time in ns} of every file under `folder`."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
