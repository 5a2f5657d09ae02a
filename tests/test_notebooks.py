"""Every notebook in notebooks/ runs top to bottom on its tiny settings."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: What each notebook prints on its tiny settings.
EXPECTED = {
    "tpgan_quickstart.ipynb": ["optimizer steps: 4"],       # 2 batches x (1 D + 1 G step)
    "psp_inversion.ipynb": ["W+ codes: (2, 8, 16)",         # 32 px decoder: 8 styles of 16
                            "endpoints are the inversions: True", "mixed styles: coarse [0, 1, 2] fine [7]"],
    "maskgan_editing.ipynb": ["lips +2 px:", "hair of face 2:", "pixels kept from the source:"],
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no image"
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED[path.name]:
        assert expected in text


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} == set(EXPECTED)   # scripts/make_notebooks.py writes them all
