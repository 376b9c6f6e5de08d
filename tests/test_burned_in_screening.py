"""Burned-in screening outside ultrasound (issue 14, section 6).

A CT whose corner shows the patient's name while BurnedInAnnotation is absent or NO: with
`--burned-in detect` it is found and redacted (tesseract then reads no planted token) in native,
RLE, JPEG Baseline and JPEG 2000; without detect it is written unchanged (the header-only mode keeps
its behaviour for CT that no header flags). A SECONDARY CT or a dose screen without a pixel rule is
quarantined by default with a reason that says what to do. Real CT/MR images are not flagged."""
from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit,
                         RLELossless, generate_uid)

from pseudicom import detect
from pseudicom.fonts import dejavu_sans
from pseudicom.cli import main

NAME, PID = "KOWALSKI^JAN", "PX-4711-0815"      # planted in the header and drawn in the pixels
TOKENS = ("KOWALSKI", "4711")                   # what OCR must not read in the output
TEXT_BOX = (0, 0, 150, 44)                      # where the text is drawn (a generous box around it)


def _phantom(bits: int) -> np.ndarray:
    "A 256x256 CT-like slice: air, a noisy body, two lungs, a spine ring and vessels; text in the top-left corner."
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:256, :256]
    img = np.full((256, 256), 24.0)
    body = ((xx - 128) / 100) ** 2 + ((yy - 140) / 80) ** 2 < 1
    img[body] = 1064
    img[(((xx - 90) / 30) ** 2 + ((yy - 130) / 42) ** 2 < 1) | (((xx - 166) / 30) ** 2 + ((yy - 130) / 42) ** 2 < 1)] = 250
    img[np.abs(np.hypot((xx - 128) / 16, (yy - 195) / 12) - 1) < 0.3] = 1900               # vertebra
    for cx, cy, r in ((128, 150, 7), (112, 165, 4), (150, 100, 3)):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 1350  # vessels
    img += rng.normal(0, 20, img.shape) * body
    top = (1 << bits) - 1
    if bits == 8:
        img = img * 255 / 4095
    layer = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(layer)
    draw.text((4, 3), NAME.replace("^", " "), fill=255, font=dejavu_sans(14))
    draw.text((4, 22), f"ID {PID}", fill=255, font=dejavu_sans(13))
    a = np.asarray(layer, np.float32) / 255
    img = img * (1 - a) + top * a
    return np.clip(np.rint(img), 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def _ct(path: Path, syntax: str, bia: str | None, image_type=("ORIGINAL", "PRIMARY", "AXIAL"), **extra) -> Path:
    "Write a CT Image Storage file with the phantom in `syntax` ('native', 'rle', 'jpeg', 'j2k', 'j2k-lossy')."
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid(entropy_srcs=[str(path), syntax])
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.Modality, ds.ImageType = "CT", list(image_type)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PID, "19380819"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(entropy_srcs=["st"]), generate_uid(entropy_srcs=["se", syntax])
    ds.StudyDate, ds.InstanceNumber = "20240305", 1
    if bia is not None:
        ds.BurnedInAnnotation = bia
    for k, v in extra.items():
        setattr(ds, k, v)
    bits = 8 if syntax == "jpeg" else 12
    arr = _phantom(bits)
    ds.set_pixel_data(arr, "MONOCHROME2", bits, generate_instance_uid=False)
    if bits == 12:
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    if syntax == "rle":
        ds.compress(RLELossless, generate_instance_uid=False)
    elif syntax == "j2k":
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    elif syntax == "j2k-lossy":
        ds.compress(JPEG2000, j2k_cr=[4], generate_instance_uid=False)
    elif syntax == "jpeg":
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(arr, "L").save(buf, format="JPEG", quality=92)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _ocr_tokens(arr: np.ndarray) -> list[str]:
    "Planted tokens tesseract reads in the text corner (the project's OCR helper on the corner's lines)."
    g = detect._grey_u8(arr[None], False)[0].astype(np.float32)
    x0, y0, x1, y1 = TEXT_BOX
    text = " ".join(detect._ocr_text(g, (x0, y, x1, y + 22)) for y in (y0, y0 + 20)).upper()
    return [t for t in TOKENS if t in re.sub(r"[^A-Z0-9 ]", "", text)]


def _deid(src: Path, out: Path, *extra: str) -> dict:
    code = main(["deid", str(src), str(out), "--recipe", "basic", "--quiet", *extra])
    report = json.loads(Path(str(out) + ".report.json").read_text())
    assert code == 0, report
    return {f["source"]: f for f in report["files"]}


SYNTAXES = ["native", "rle", "jpeg", "j2k", "j2k-lossy"]


@pytest.fixture(scope="module")
def corner_text(tmp_path_factory):
    "CT slices with a name and ID in the corner, BurnedInAnnotation absent or NO, in every transfer syntax."
    src = tmp_path_factory.mktemp("corner") / "in"
    for syntax in SYNTAXES:
        for bia in (None, "NO"):
            _ct(src / f"{syntax}_{bia or 'absent'}.dcm", syntax, bia)
    return src


def test_the_planted_text_is_readable_in_the_input(corner_text):
    "The test is honest: tesseract reads the planted name in every input."
    for p in sorted(corner_text.iterdir()):
        assert "KOWALSKI" in _ocr_tokens(pydicom.dcmread(p).pixel_array), p.name


def test_detect_finds_and_redacts_corner_text_in_every_syntax(corner_text, tmp_path):
    files = _deid(corner_text, tmp_path / "out", "--burned-in", "detect")
    assert len(files) == 2 * len(SYNTAXES)
    for name, f in sorted(files.items()):
        if f["status"] == "quarantined":   # allowed when it cannot be redacted, with the reason
            assert "burned-in" in f["reason"], f
            continue
        assert f["status"] == "written", f
        boxes = [b["box"] for b in f["pixel_boxes"]]
        assert boxes and all(b["rule"] == "detected (text screen)" for b in f["pixel_boxes"]), (name, f["pixel_boxes"])
        assert all(x1 <= 160 and y1 <= 50 for x0, y0, x1, y1 in boxes), (name, boxes)   # only the corner: no anatomy
        out = pydicom.dcmread(tmp_path / "out" / f["output"])
        assert out.BurnedInAnnotation == "NO", name
        assert _ocr_tokens(out.pixel_array) == [], name
        before = pydicom.dcmread(corner_text / name).pixel_array
        keep = np.ones(before.shape, bool)
        for x0, y0, x1, y1 in boxes:
            keep[y0:y1, x0:x1] = False
        if not name.startswith(("jpeg", "j2k-lossy")):   # lossless: every pixel outside the boxes is the input's
            assert (out.pixel_array[keep] == before[keep]).all(), name
    assert sum(f["status"] == "written" for f in files.values()) == len(files)   # in practice every syntax is redacted


def test_without_detect_a_ct_no_header_flags_is_written_unchanged(corner_text, tmp_path):
    files = _deid(corner_text, tmp_path / "out")
    for name, f in sorted(files.items()):
        assert f["status"] == "written" and f["pixel_boxes"] == [], f
        out, before = pydicom.dcmread(tmp_path / "out" / f["output"]), pydicom.dcmread(corner_text / name)
        assert out.PixelData == before.PixelData, name          # the header-only mode: pixel bytes copied


@pytest.mark.parametrize("image_type, extra", [
    (("DERIVED", "SECONDARY", "AXIAL"), {}),                                  # a workstation's secondary CT
    (("DERIVED", "SECONDARY", "SCREEN SAVE"), {}),                            # a dose screen saved as CT
    (("DERIVED", "SECONDARY", "SCREEN SAVE"), {"BurnedInAnnotation": "NO"}),  # ... that says NO (copied from the scanner)
    (("ORIGINAL", "PRIMARY", "DOSE_INFO"), {}),
    (("ORIGINAL", "PRIMARY", "AXIAL"), {"BurnedInAnnotation": "YES"}),
    (("ORIGINAL", "PRIMARY", "AXIAL"), {"ConversionType": "WSD"}),
])
def test_secondary_and_screen_ct_quarantined_by_default_with_an_actionable_reason(tmp_path, image_type, extra):
    bia = extra.pop("BurnedInAnnotation", None)
    _ct(tmp_path / "in" / "screen.dcm", "native", bia, image_type, **extra)
    f = _deid(tmp_path / "in", tmp_path / "out")["screen.dcm"]
    assert f["status"] == "quarantined", f
    reason = f["reason"]
    assert "--burned-in detect" in reason and "pixel rule" in reason and "filters: [{action: exclude, when: {" in reason, reason
    assert "(0008,0008)" in reason or "(0028,0301)" in reason or "(0008,0064)" in reason, reason   # names the header that decided
    assert not list((tmp_path / "out").rglob("*.dcm"))
    files = _deid(tmp_path / "in", tmp_path / "out2", "--burned-in", "detect")   # detect: found and redacted
    f = files["screen.dcm"]
    assert f["status"] == "written" and f["pixel_boxes"], f
    assert _ocr_tokens(pydicom.dcmread(tmp_path / "out2" / f["output"]).pixel_array) == []


def test_the_suggested_filter_excludes_the_file(tmp_path):
    "The filter the reason suggests, pasted into a recipe, excludes the file instead."
    _ct(tmp_path / "in" / "screen.dcm", "native", None, ("DERIVED", "SECONDARY", "SCREEN SAVE"))
    reason = _deid(tmp_path / "in", tmp_path / "out")["screen.dcm"]["reason"]
    snippet = re.search(r"`(filters: .*)`", reason).group(1)
    from pseudicom.pipeline import run
    from pseudicom.recipe import load_recipe
    import yaml
    recipe = load_recipe("basic")
    recipe.filters = [{**f, "reason": "dose screens are not needed"} for f in yaml.safe_load(snippet)["filters"]]
    result = run(recipe, tmp_path / "in", tmp_path / "out3")
    assert [f.status for f in result.files] == ["excluded"], [(f.status, f.reason) for f in result.files]


PYDICOM_ANATOMY = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_implicit.dcm",
                   "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm", "examples_overlay.dcm"]


@pytest.mark.parametrize("name", PYDICOM_ANATOMY)
def test_real_ct_and_mr_from_pydicom_are_not_flagged_under_detect(tmp_path, name):
    "One run per file: the MR_small variants are one instance in several transfer syntaxes (duplicates in one run)."
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(get_testdata_file(name), src / name)
    f = _deid(src, tmp_path / "out", "--burned-in", "detect")[name]
    assert f["status"] == "written" and f["pixel_boxes"] == [], f
    before, after = pydicom.dcmread(src / name), pydicom.dcmread(tmp_path / "out" / f["output"])
    assert np.array_equal(before.pixel_array, after.pixel_array), name


def test_no_real_ct_or_mr_image_is_screened_as_text(realdata):
    """Every CT and MR image of the real corpus: the screen finds no line of letters (a detector that redacts anatomy is a
    defect). Captures are left out: octave-dicom's CT-MONO2-16-ankle.dcm is a Secondary Capture of a 3D render whose
    corners really carry text (a date, a site name), which the capture detector finds and redacts."""
    from pseudicom.pixels import pixel_kind
    manifest = realdata / "manifest.json"
    seen, flagged = 0, []
    for item in json.loads(manifest.read_text())["files"]:
        try:
            ds = pydicom.dcmread(realdata / item["path"])
            if str(ds.get("Modality", "")) not in ("CT", "MR") or "PixelData" not in ds or pixel_kind(ds) == "capture":
                continue
            ds.pixel_array
        except Exception:
            continue   # not an image, or not decodable here: the pipeline's business (quarantine), not the screen's
        seen += 1
        if detect.screen_text(ds):
            flagged.append(item["path"])
    assert seen >= 80, seen
    assert flagged == [], flagged


def test_pixels_that_cannot_be_decoded_are_quarantined_under_detect_and_written_without(tmp_path):
    "An image that cannot be screened is not written under detect (with the reason); the header-only mode streams it."
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 62])   # a JPEG 2000 codestream that ends after its header
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "broken.dcm", enforce_file_format=True)
    f = _deid(tmp_path / "in", tmp_path / "out")["broken.dcm"]
    assert f["status"] == "written", f
    f = _deid(tmp_path / "in", tmp_path / "out2", "--burned-in", "detect")["broken.dcm"]
    assert f["status"] == "quarantined" and "could not decode the pixels" in f["reason"], f
    assert "run without --burned-in detect" in f["reason"], f
