"""notebooks/explore_study.ipynb, executed top to bottom against a real tiny study."""

from __future__ import annotations


import nbformat
import pytest
import yaml
from nbclient import NotebookClient

import nasface
from nasface.search.results import open_study, study_frame
from tests.factories import REPO

NOTEBOOK = REPO / "notebooks" / "explore_study.ipynb"


@pytest.mark.slow
def test_explore_study_notebook_runs(tiny_study, tmp_path, monkeypatch):
    export_dir = tmp_path / "export"
    # the kernel is a child process: it inherits these
    monkeypatch.setenv("NASFACE_STUDY", "r")
    monkeypatch.setenv("NASFACE_STUDIES_DIR", str(tiny_study))
    monkeypatch.setenv("NASFACE_EXPORT_DIR", str(export_dir))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    plots = [out for out in outputs if "application/vnd.plotly.v1+json" in out.get("data", {})]
    assert len(plots) >= 2  # the Pareto front and the notebook's own scatter were drawn

    # the export cell wrote the most accurate in-budget trial's spec and a recipe naming it
    frame = study_frame(open_study("r", tiny_study))
    usable = frame[frame.kind.isin(["candidate", "baseline"]) & frame.feasible & frame.accuracy.notna()]
    best = int(usable.sort_values(["accuracy", "flops"], ascending=[False, True]).iloc[0]["number"])
    recipe = yaml.safe_load((export_dir / "recipe.yaml").read_text())
    assert recipe["spec"] == f"r-trial{best}.yaml"
    spec = nasface.load_spec(export_dir / recipe["spec"])
    assert nasface.count(spec)["flops"] == recipe["costs"]["flops"]
