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


def _png_with_text(text: str) -> bytes:
    "A PNG that shows `text` in large black letters on white, as a screenshot of a header would."
    import io
    from PIL import Image, ImageDraw, ImageFont
    font = next((ImageFont.truetype(p, 36) for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf") if Path(p).is_file()), None)
    assert font is not None, "fonts-dejavu-core is needed (.ci/run installs it)"
    image = Image.new("L", (720, 80), 255)
    ImageDraw.Draw(image).text((10, 18), text, fill=0, font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_images_hidden_in_html_svg_attachments_and_widget_buffers_are_flagged(tmp_path):
    "The README says nbcheck checks images: wherever a notebook can hold them, not only as image/png outputs."
    import base64
    png = _png_with_text("Name: MUSTERMANN^MAX")
    b64 = base64.b64encode(png).decode()
    path = _notebook(tmp_path / "hidden.ipynb", "viewer", "plot", "2 + 2")
    nb = json.loads(path.read_text())
    nb["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {},   # a widget's static fallback
                                  "data": {"text/html": f'<img alt="US" src="data:image/png;base64,{b64}">', "text/plain": "ImageViewer"}}]
    nb["cells"][1]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                  "data": {"text/html": '<svg width="9" height="9"><rect width="9" height="9"/></svg>'}}]
    nb["cells"].append({"cell_type": "markdown", "id": "md1", "metadata": {}, "source": "![scan](attachment:scan.png)",
                        "attachments": {"scan.png": {"image/png": b64}}})
    nb["cells"].append({"cell_type": "markdown", "id": "md2", "metadata": {}, "source": f"![](data:image/png;base64,{b64})"})
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "m1": {"model_name": "ImageModel", "state": {"format": "png"}, "buffers": [{"encoding": "base64", "path": ["value"], "data": b64}]}}}}
    path.write_text(json.dumps(nb))
    findings = check_notebook(path)
    images = {(f.cell, f.where.split(" (")[0]) for f in findings if f.category == "image"}
    assert (0, "output 0 text/html, embedded") in images and (1, "output 0 text/html, embedded") in images
    assert (3, "attachment scan.png") in images and (4, "markdown, embedded") in images
    assert any(f.cell is None and "buffer of m1" in f.where for f in findings if f.category == "image")
    # Tesseract reads the name in the picture: the finding says what kind of text, never the text
    assert any(f.cell == 0 and f.category == "image showing text: person name" for f in findings), findings
    assert "MUSTERMANN" not in " ".join(map(str, findings))
    strip_notebook(path)
    left = check_notebook(path)
    assert [(f.cell, f.where) for f in left] == [(4, "markdown, embedded (image/png)"),
                                                 (4, "markdown, embedded (image/png)")]   # written into the text: by hand


def test_widgets_shown_in_a_real_kernel_are_flagged(synth_set, tmp_path):
    "ImageViewer and RegionMarker on the synthetic ultrasound (a name in its pixels), Run All, save: nbcheck must object."
    src, truth = synth_set
    us = next(f for f in truth["files"] if "US" in f)
    us_path = shutil.copy(src / us, tmp_path / "us.dcm")
    nb = _execute(_notebook(tmp_path / "viewer.ipynb",
                            "import pydicom\nfrom pseudicom.widgets.image import ImageViewer\n"
                            "from pseudicom.widgets.marker import RegionMarker",
                            f"ImageViewer(pydicom.dcmread({str(us_path)!r}))",
                            f"RegionMarker({str(us_path)!r})"), tmp_path)
    findings = check_notebook(nb)
    assert {f.cell for f in findings if f.category == "image"} >= {1, 2}, findings
    strip_notebook(nb)
    assert check_notebook(nb) == []
