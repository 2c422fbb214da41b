"""paper_figs.ipynb: committed without outputs, in step with the registry, and it executes
top to bottom in fast mode (a few minutes)."""
import os

import nbformat
import pytest

from experiments.notebook.build import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB = os.path.join(ROOT, "paper_figs.ipynb")


def test_notebook_committed_without_outputs_and_current(tmp_path):
    nb = nbformat.read(NB, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    fresh = nbformat.read(build(str(tmp_path / "nb.ipynb")), as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in nb.cells], \
        "paper_figs.ipynb is stale: run `python -m experiments.notebook`"


def test_notebook_executes_in_fast_mode(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from nbclient import NotebookClient
    monkeypatch.setenv("DIFFRATES_FAST", "1")
    monkeypatch.setenv("DIFFRATES_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DIFFRATES_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": ROOT}}).execute()
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/markdown", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Error" not in "".join(o.get("ename", "") for c in nb.cells if c.cell_type == "code"
                                  for o in c.outputs)
    assert "What the numbers say" in text
    assert (tmp_path / "figures" / "rate_vs_T.png").exists()
