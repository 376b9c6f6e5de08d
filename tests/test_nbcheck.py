"nbcheck on real, executed notebooks: outputs that show a (synthetic) dataset are flagged, stripping fixes them, clean ones pass."
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pseudicom.nbcheck import check_notebook, strip_notebook

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def _notebook(path: Path, *sources: str) -> Path:
    "Write a notebook of code cells `sources` to `path`."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def _execute(path: Path, cwd: Path) -> Path:
    "Execute a notebook in place with a real kernel, as JupyterLab would before saving."
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    nbformat.write(nb, path)
    return path


def _planted(truth: dict, min_len: int = 6) -> set[str]:
    return {r["value"] for r in truth["planted"] if len(r["value"]) >= min_len}


def test_notebook_showing_a_dataset_is_flagged_and_strip_fixes_it(synth_set, tmp_path):
    src, truth = synth_set
    ct = shutil.copy(src / truth["files"][0], tmp_path / "ct.dcm")   # its folder name is PHI too: keep it out of the code
    nb = _execute(_notebook(tmp_path / "analysis.ipynb",
                            "import pydicom",
                            f"ds = pydicom.dcmread({str(ct)!r}, stop_before_pixels=True)\nprint(ds)",
                            "ds.PatientName, ds.PatientBirthDate"), tmp_path)
    saved = nb.read_text()
    assert "Mustermann^Max" in saved                      # the leak really is in the saved file
    findings = check_notebook(nb)
    assert {"person name", "dicom element", "date near a name"} <= {f.category for f in findings}
    assert {f.cell for f in findings} == {1, 2}           # the import cell showed nothing
    text = " ".join(map(str, findings))
    assert not [v for v in _planted(truth) if v in text]  # findings say where and what kind, never the value
    removed = strip_notebook(nb)
    assert removed >= 2
    assert check_notebook(nb) == []
    stripped = json.loads(nb.read_text())
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in stripped["cells"] if c["cell_type"] == "code")
    assert not [v for v in _planted(truth) if v in nb.read_text()]
    assert "".join(stripped["cells"][0]["source"]) == "import pydicom"   # the code is kept


def test_uuid_derived_uids_in_outputs_are_flagged(synth_set, tmp_path):
    "UIDs under the 2.25 root (UUID-derived: '2.25.' and one long decimal) identify studies as much as dotted ones."
    src, truth = synth_set
    ds_path = shutil.copy(src / truth["files"][0], tmp_path / "ct.dcm")
    nb = _execute(_notebook(tmp_path / "uids.ipynb",
                            f"import pydicom\nds = pydicom.dcmread({str(ds_path)!r}, stop_before_pixels=True)\n"
                            "print(ds.StudyInstanceUID, ds.SeriesInstanceUID)"), tmp_path)
    assert "2.25." in nb.read_text()
    assert "uid" in {f.category for f in check_notebook(nb)}


def test_clean_executed_notebook_passes(tmp_path):
    nb = _execute(_notebook(tmp_path / "clean.ipynb",
                            "import numpy as np\nnp.arange(5).sum()",
                            "print('loss 0.31 at epoch 12; run 20240101 finished')"), tmp_path)
    assert json.loads(nb.read_text())["cells"][0]["outputs"]   # it did produce outputs
    assert check_notebook(nb) == []


def test_widget_state_is_flagged_and_stripped(tmp_path):
    path = _notebook(tmp_path / "widgets.ipynb", "1 + 1")
    nb = json.loads(path.read_text())
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"m": {"model_name": "HTMLModel", "state": {"value": "(0010,0010) Patient's Name PN: Musterfrau^Erika"}}}}}
    path.write_text(json.dumps(nb))
    assert {f.category for f in check_notebook(path)} == {"widget state", "person name", "dicom element"}
    assert all(f.cell is None and f.where == "metadata.widgets" for f in check_notebook(path))
    strip_notebook(path)
    assert check_notebook(path) == [] and "widgets" not in json.loads(path.read_text())["metadata"]


def test_committed_tutorials_pass_nbcheck():
    assert TUTORIALS, "no tutorials found"
    for nb in TUTORIALS:
        assert check_notebook(nb) == [], nb.name


@pytest.mark.slow
def test_executed_tutorial_shows_synthetic_phi_and_strip_removes_it(tmp_path):
    "Run the quick start in a temporary copy: its outputs show the (synthetic) inventory; nbcheck notices, strip cleans."
    quick_start = ROOT / "tutorials" / "01_quick_start.ipynb"
    copy = tmp_path / quick_start.name
    shutil.copy(quick_start, copy)
    _execute(copy, tmp_path)
    findings = check_notebook(copy)
    assert "person name" in {f.category for f in findings}       # the inventory table names the fake patients
    strip_notebook(copy)
    assert check_notebook(copy) == []
    assert "Mustermann" not in copy.read_text()
