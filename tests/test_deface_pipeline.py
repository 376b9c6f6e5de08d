"The face step inside a batch run (issue 8): head series defaced as volumes, other series left alone and said so."
from pathlib import Path
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.pipeline import run
from pseudicom.recipe import load_recipe
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
    Path(series["masks"]).rename(tmp_path / "masks.npz"); series["masks"] = tmp_path / "masks.npz"
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "chest.dcm")
    recipe = load_recipe("basic"); recipe.deface = {"enabled": True, "margin_mm": 5.0}
    result = run(recipe, src, tmp_path / "out", key=Key(b"d" * 32), workers=2)
    assert result.ok, result.summary()
    face, brain = _score(series, src, tmp_path / "out", result, kind)
    assert face >= 0.95 and brain >= 0.99, (face, brain)
    chest = next(f for f in result.files if f.source == "chest.dcm")
    assert chest.deface.startswith("not defaced")
    out = pydicom.dcmread(tmp_path / "out" / chest.output)
    assert "113102" not in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert (out.pixel_array == pydicom.dcmread(src / "chest.dcm").pixel_array).all()


def test_deface_same_bytes_one_or_two_workers_and_cli(tmp_path):
    src = tmp_path / "in"
    series = head_series(src / "head", kind="CT", orientation="sagittal", matrix=64, pixel_spacing=4.0, slice_thickness=5.0)
    Path(series["masks"]).unlink()
    recipe = load_recipe("basic"); recipe.deface = {"enabled": True, "margin_mm": 5.0}
    key = Key(b"e" * 32)
    r1 = run(recipe, src, tmp_path / "a", key=key, workers=1)
    r2 = run(recipe, src, tmp_path / "b", key=key, workers=2)
    assert [f.digest for f in r1.files] == [f.digest for f in r2.files]
    keyfile = tmp_path / "k.key"; key.save(keyfile)
    assert main(["deid", str(src), str(tmp_path / "c"), "--recipe", "basic", "--key-file", str(keyfile), "--deface", "--quiet"]) == 0
    out = next((tmp_path / "c").rglob("*.dcm"))
    assert pydicom.dcmread(out).RecognizableVisualFeatures == "NO"
