"""Boxes filled a frame at a time as the file is written (issue 16 item 8: a large multi-frame file is never held whole).

On the full path, native pixel data of whole bytes whose only change is boxes to fill go to pydicom's writer as a
stream (`pixel_codecs.FrameStream` over a window on the source) instead of bytes in memory. Here every such file of
pydicom's test data and of the real-world set is de-identified with a rule both ways, frame by frame and read whole
(the way every file went before), and must give the same bytes; the pixels outside the boxes equal the input's, the
pixels inside are filled.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import pseudicom.pipeline.worker as worker
from conftest import realdata_root
from pseudicom.deid import Deidentifier
from pseudicom.io import read_header
from pseudicom.keys import Key
from pseudicom.pipeline import process_file
from pseudicom.pipeline.burned_in import frame_by_frame
from pseudicom.recipe import load_recipe

KEY = Key(b"f" * 32)
BOXES = [[0, 0, 7, 5], [3, 2, 12, 9]]   # two overlapping boxes near the corner: odd edges, odd widths
PYDICOM = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm", "SC_rgb_small_odd.dcm",
           "SC_ybr_full_422_uncompressed.dcm", "examples_palette.dcm", "examples_rgb_color.dcm", "rtdose.dcm",
           "examples_overlay.dcm"]


def _recipe(detect: bool = False):
    "basic with a rule that fills BOXES in every image; or, `detect`, basic screening every image instead."
    recipe = load_recipe("basic")
    if detect:
        recipe.pixels["burned_in"] = "detect"
        return recipe
    recipe.name = "basic-with-boxes"
    recipe.pixels["rules"] = [{"name": "corner", "boxes": BOXES, "when": {}}]
    return recipe


def _real_native() -> list[str]:
    "The real set's native (uncompressed) little-endian images: multi-frame first."
    root = realdata_root()
    manifest = root / "manifest.json"
    out = []
    for entry in json.loads(manifest.read_text())["files"]:
        path = root / entry["path"]
        try:
            ds, layout = read_header(path)
        except Exception:
            continue
        if "PixelData" in ds or layout.pixel_start is None:
            continue   # not streamable, or no pixels
        if frame_by_frame(ds, layout, Deidentifier(_recipe(), KEY)):
            out.append(str(path))
    return out


def _frames(ds) -> int:
    "NumberOfFrames, 1 when absent or not a number (a real file says '1A')."
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except ValueError:
        return 1


def _both_ways(path: str, tmp_path: Path, monkeypatch, detect: bool = False) -> tuple:
    runs = []
    for stream in (True, False):
        staging = tmp_path / f"s{stream}"
        staging.mkdir(exist_ok=True)
        with monkeypatch.context() as m:
            if not stream:
                m.setattr(worker, "frame_by_frame", lambda *a: False)   # read whole, as every file was before
            r = process_file(0, path, Path(path).name, str(staging), Deidentifier(_recipe(detect), KEY), fast=False)
        data = Path(r.staged).read_bytes() if r.status == "written" else None
        runs.append((r.status, r.reason, r.digest, r.pixel_boxes, r.path, data))
    return runs


def _check_pixels(src: str, out: bytes) -> None:
    "Pixels outside the boxes are the input's; inside, one fill value in every frame."
    ds = pydicom.dcmread(src)
    nf, spp, rows, cols = _frames(ds), int(ds.SamplesPerPixel), int(ds.Rows), int(ds.Columns)
    shape = (nf, rows, cols) + ((spp,) if spp > 1 else ())
    a = ds.pixel_array.reshape(shape)
    b = pydicom.dcmread(pydicom.filebase.DicomBytesIO(out)).pixel_array.reshape(shape)
    pairs = str(ds.PhotometricInterpretation) == "YBR_FULL_422"   # two pixels share their chroma: boxes widen to pairs
    inside = np.zeros((rows, cols), bool)
    for x0, y0, x1, y1 in BOXES:
        inside[y0:y1, (x0 - x0 % 2 if pairs else x0):(x1 + x1 % 2 if pairs else x1)] = True
    assert np.array_equal(a[:, ~inside], b[:, ~inside]), src
    filled = b[:, inside]
    assert (filled == filled[:1, :1]).all(), src


@pytest.mark.parametrize("name", PYDICOM)
def test_frame_by_frame_equals_whole_on_pydicom_files(name, tmp_path, monkeypatch):
    path = get_testdata_file(name)
    ds, layout = read_header(path)
    assert "PixelData" not in ds and frame_by_frame(ds, layout, Deidentifier(_recipe(), KEY)), name
    (s1, r1, h1, b1, p1, d1), (s2, r2, h2, b2, p2, d2) = _both_ways(path, tmp_path, monkeypatch)
    assert (s1, r1, h1, b1, p1) == (s2, r2, h2, b2, p2), name
    assert s1 == "written" and d1 == d2, r1
    _check_pixels(path, d1)


def test_frame_by_frame_equals_whole_on_real_files(tmp_path, monkeypatch):
    paths = _real_native()
    multi = [p for p in paths if _frames(pydicom.dcmread(p, stop_before_pixels=True)) > 1]
    print(f"{len(paths)} real native images ({len(multi)} multi-frame) de-identified with boxes both ways")
    assert len(paths) >= 40 and len(multi) >= 3, (len(paths), len(multi))
    differ, written = [], 0
    for path in paths:
        (s1, r1, h1, b1, p1, d1), (s2, r2, h2, b2, p2, d2) = _both_ways(path, tmp_path, monkeypatch)
        if (s1, r1, h1, b1, d1) != (s2, r2, h2, b2, d2):
            differ.append(path)
        elif s1 == "written":
            written += 1
            _check_pixels(path, d1)
    assert not differ, differ[:10]
    assert written >= 40, written


def test_screening_from_the_file_equals_screening_in_memory_on_real_files(tmp_path, monkeypatch):
    """--burned-in detect reads native frames from the file too (the screen decodes the frames it looks at, the boxes it
    finds are filled as the file is written): the same outcomes, boxes and bytes as with the pixel data in memory."""
    paths = _real_native()
    differ, boxed = [], 0
    for path in paths:
        (s1, r1, h1, b1, p1, d1), (s2, r2, h2, b2, p2, d2) = _both_ways(path, tmp_path, monkeypatch, detect=True)
        if (s1, r1, h1, b1, d1) != (s2, r2, h2, b2, d2):
            differ.append(path)
        boxed += bool(b1)
    print(f"{len(paths)} real native images screened both ways; {boxed} with text found and filled")
    assert not differ, differ[:10]
    assert boxed >= 3, boxed


@pytest.mark.parametrize("recipe", ["rule", "untouched"])
def test_a_file_cut_while_it_is_written_fails_and_leaves_nothing(recipe, tmp_path, monkeypatch):
    """The pixel data are read from the file as the output is written: a file cut short after it was checked fails with
    a reason (never an output whose pixel data are shorter than their length says), and staging keeps no half file."""
    import shutil
    src = tmp_path / "rtdose.dcm"
    shutil.copy(get_testdata_file("rtdose.dcm"), src)
    real = worker.clean_pixels

    def cut_then_clean(ds, deid):
        with open(src, "r+b") as f:
            f.truncate(src.stat().st_size - 1000)
        return real(ds, deid)

    monkeypatch.setattr(worker, "clean_pixels", cut_then_clean)
    staging = tmp_path / "staging"
    staging.mkdir()
    deid = Deidentifier(_recipe() if recipe == "rule" else load_recipe("basic"), KEY)
    r = process_file(0, str(src), "rtdose.dcm", str(staging), deid, fast=False)
    assert (r.status, r.output) == ("failed", None) and "changed while being read" in r.reason, r.reason
    assert list(staging.iterdir()) == []
