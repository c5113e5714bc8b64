"""Every notebook under notebooks/ runs on a finished project, started in notebooks/ as Jupyter starts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook_that_loads_the_project():
    assert NOTEBOOKS and all("%load_ext kedro.ipython" in p.read_text() for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_a_finished_run(trained, notebook, monkeypatch):
    project, _ = trained
    folder = project.path / "notebooks"
    folder.mkdir(exist_ok=True)
    shutil.copy(notebook, folder)
    # The kernel finds the project from its folder and uses the project's own mlflow.db.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nb = nbformat.read(folder / notebook.name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert [o for o in outputs if "image/png" in o.get("data", {})], "no figure drawn"
    assert not list(Path(folder).glob("*.db")), "the notebook opened databases in notebooks/"
    text = "".join(o.get("text", "") for o in outputs)
    assert "agreement with the labels" in text
