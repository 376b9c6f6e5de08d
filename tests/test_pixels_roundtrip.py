"""Round trips of `pseudicom.pixels.redact` through every transfer syntax the installed codecs decode.

Each case writes a dataset to bytes, reads it back (as from disk), redacts one box, writes and reads
again, and checks: constant fill inside the box in every frame, pixels outside unchanged (bit for bit
when lossless; equal to the decoded original when a lossy input is written uncompressed), the output
decodes with valid geometry and photometric interpretation, and dciodvfy reports no new Error line.
"""
from __future__ import annotations

import copy
import io
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragmented_frames, generate_frames
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000,
    JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, JPEGLSNearLossless,
    RLELossless,
)

from pseudicom import pixel_codecs
from pseudicom.pixels import PixelRule, mark_clean, redact

BOX = (4, 6, 30, 18)   # x0, y0, x1, y1 (exclusive)
DCIODVFY = "/usr/bin/dciodvfy"


# ---------------------------------------------------------------- synthetic data
def _image(frames: int, rows: int, cols: int, spp: int, lo: int, hi: int, seed: int) -> np.ndarray:
    "Smooth gradients + noise + bright 'text' blocks, so lossy codecs behave like on real images."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    out = np.empty((frames, rows, cols, spp), dtype=np.float64)
    for f in range(frames):
        for s in range(spp):
            base = (xx * (s + 1) + yy * 2 + f * 7) / (rows + cols * (s + 1) + 16)
            out[f, :, :, s] = lo + (hi - lo) * (0.2 + 0.6 * base) + rng.normal(0, (hi - lo) * 0.02, (rows, cols))
        out[f, 8:14, 6:28, :] = hi          # "text" in the box to be redacted
    out = np.clip(np.round(out), lo, hi)
    return out[..., 0] if spp == 1 else out


def synthetic(pi: str = "MONOCHROME2", frames: int = 3, rows: int = 40, cols: int = 48, bits_stored: int = 8,
              signed: int = 0, seed: int = 1) -> Dataset:
    "A small multi-frame Secondary Capture image with a valid header, uncompressed."
    spp = 3 if pi in ("RGB", "YBR_FULL") else 1
    ba = 8 if bits_stored <= 8 else 16
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.4" if spp == 3 else (
        "1.2.840.10008.5.1.4.1.1.7.2" if ba == 8 else "1.2.840.10008.5.1.4.1.1.7.3")
    ds.SOPInstanceUID = pydicom.uid.generate_uid(prefix="2.25.", entropy_srcs=[pi, str(bits_stored), str(seed)])
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = pydicom.uid.generate_uid(prefix="2.25.", entropy_srcs=["study", str(seed)])
    ds.SeriesInstanceUID = pydicom.uid.generate_uid(prefix="2.25.", entropy_srcs=["series", str(seed)])
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Test", "SYN001", "", ""
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "20200101", "120000", "", "1", ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.PatientOrientation = "OT", "1", "1", ""
    ds.ConversionType, ds.Manufacturer = "WSD", "ACME"
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, spp, pi
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = ba, bits_stored, bits_stored - 1, signed
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = "33.3"
    if spp == 3:
        ds.PlanarConfiguration = 0
    lo, hi = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    if spp == 1 and ba == 16 and not signed:
        ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    if spp == 1 and ba == 16:
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    dt = np.dtype(("i" if signed else "u") + str(ba // 8))
    ds.PixelData = _image(frames, rows, cols, spp, lo, hi, seed).astype(dt).tobytes()
    return ds


def jpeg_baseline(frames: int = 3, rows: int = 40, cols: int = 48) -> Dataset:
    "A YBR_FULL_422 JPEG Baseline multi-frame image encoded with Pillow (pydicom has no JPEG encoder)."
    ds = synthetic("RGB", frames, rows, cols)
    arr = ds.pixel_array
    fragments = []
    for f in arr:
        bio = io.BytesIO()
        Image.fromarray(f, "RGB").save(bio, "JPEG", quality=90, subsampling=1)   # 4:2:2
        fragments.append(bio.getvalue())
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = f"{arr.nbytes / sum(len(x) for x in fragments):.2f}"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    return ds


def compressed(ts, pi="MONOCHROME2", bits_stored=8, signed=0, frames=3, **kw) -> Dataset:
    ds = synthetic(pi, frames=frames, bits_stored=bits_stored, signed=signed)
    ds.compress(ts, generate_instance_uid=False, **kw)
    if ts in (JPEGLSNearLossless, JPEG2000):
        ds.LossyImageCompression = "01"
    return ds


def _testfile(name: str) -> Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def deflated() -> Dataset:
    ds = synthetic("MONOCHROME2", frames=2)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return ds


# name -> (factory, lossy mode, lossless?, expected transfer syntax out)
CASES = {
    "ExplicitVRLittleEndian-MONO2-u8": (lambda: synthetic(), "uncompressed", True, ExplicitVRLittleEndian),
    "ExplicitVRLittleEndian-MONO1-u12": (lambda: synthetic("MONOCHROME1", bits_stored=12), "uncompressed", True, ExplicitVRLittleEndian),
    "ExplicitVRLittleEndian-RGB": (lambda: synthetic("RGB"), "uncompressed", True, ExplicitVRLittleEndian),
    "ImplicitVRLittleEndian-s16": (lambda: _with_ts(synthetic(bits_stored=16, signed=1), ImplicitVRLittleEndian), "uncompressed", True, ImplicitVRLittleEndian),
    "ExplicitVRBigEndian-RGB": (lambda: _testfile("ExplVR_BigEnd.dcm"), "uncompressed", True, ExplicitVRBigEndian),
    "DeflatedExplicitVRLittleEndian": (deflated, "uncompressed", True, DeflatedExplicitVRLittleEndian),
    "RLELossless-MONO1-u12": (lambda: compressed(RLELossless, "MONOCHROME1", 12), "uncompressed", True, RLELossless),
    "RLELossless-RGB": (lambda: compressed(RLELossless, "RGB"), "uncompressed", True, RLELossless),
    "RLELossless-YBR_FULL": (lambda: compressed(RLELossless, "YBR_FULL"), "uncompressed", True, RLELossless),
    "JPEGLSLossless-s12": (lambda: compressed(JPEGLSLossless, bits_stored=12, signed=1), "uncompressed", True, JPEGLSLossless),
    "JPEGLSLossless-RGB": (lambda: compressed(JPEGLSLossless, "RGB"), "uncompressed", True, JPEGLSLossless),
    "JPEG2000Lossless-s16": (lambda: compressed(JPEG2000Lossless, bits_stored=16, signed=1), "uncompressed", True, JPEG2000Lossless),
    "JPEG2000Lossless-YBR_RCT": (lambda: _testfile("GDCMJ2K_TextGBR.dcm"), "uncompressed", True, JPEG2000Lossless),
    "JPEGLosslessSV1-RGB": (lambda: _testfile("SC_rgb_jpeg_gdcm.dcm"), "uncompressed", True, ExplicitVRLittleEndian),
    "JPEGBaseline8Bit-YBR_FULL_422": (jpeg_baseline, "uncompressed", False, JPEGBaseline8Bit),   # block by block (issue 20)
    "JPEGBaseline8Bit-reencode": (jpeg_baseline, "reencode", False, JPEGBaseline8Bit),
    "JPEGExtended12Bit": (lambda: _testfile("JPGExtended.dcm"), "uncompressed", False, ExplicitVRLittleEndian),
    "JPEGLSNearLossless-uncompressed": (lambda: compressed(JPEGLSNearLossless, jls_error=2), "uncompressed", False, ExplicitVRLittleEndian),
    "JPEGLSNearLossless-reencode": (lambda: compressed(JPEGLSNearLossless, jls_error=2), "reencode", False, JPEGLSNearLossless),
    "JPEG2000-uncompressed": (lambda: compressed(JPEG2000, "RGB", j2k_cr=[8]), "uncompressed", False, ExplicitVRLittleEndian),
    "JPEG2000-reencode": (lambda: compressed(JPEG2000, "RGB", j2k_cr=[8]), "reencode", False, JPEG2000),
}


def _with_ts(ds: Dataset, ts) -> Dataset:
    ds.file_meta.TransferSyntaxUID = ts
    return ds


def _roundtrip(ds: Dataset) -> Dataset:
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(bio.getvalue()))


def _save_for_dciodvfy(ds: Dataset, path: Path) -> None:
    "dciodvfy cannot read Deflated files: verify the same dataset inflated (Explicit VR Little Endian)."
    ds = copy.deepcopy(ds)
    if ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


def _frames(ds: Dataset) -> np.ndarray:
    a = ds.pixel_array
    return a[None] if int(ds.get("NumberOfFrames", 1) or 1) == 1 else a


def _box_mask(shape, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def _black(ds: Dataset) -> np.ndarray:
    "Black as pydicom's pixel_array shows it (RGB for colour data)."
    pi, bs = str(ds.PhotometricInterpretation), int(ds.BitsStored)
    if pi == "MONOCHROME1":
        return np.array((1 << bs) - 1)
    if pi == "MONOCHROME2":
        return np.array(-(1 << (bs - 1)) if int(ds.PixelRepresentation) else 0)
    return np.zeros(3, dtype=int)


@pytest.mark.parametrize("case", list(CASES))
def test_redact_roundtrip(case: str, tmp_path: Path) -> None:
    factory, lossy, lossless, ts_out = CASES[case]
    ds = _roundtrip(factory())
    ts_in = ds.file_meta.TransferSyntaxUID
    before = _frames(ds).astype(np.int64)
    nf, rows, cols = int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns)
    header_before = {e.tag: e.value for e in ds if e.tag != 0x7FE00010}
    _save_for_dciodvfy(ds, tmp_path / "before.dcm")

    rule = PixelRule("box", [BOX], {"Rows": rows, "Columns": cols})
    report = redact(ds, [rule], lossy=lossy)
    out = _roundtrip(ds)
    _save_for_dciodvfy(out, tmp_path / "after.dcm")
    after = _frames(out).astype(np.int64)

    # report and transfer syntax
    assert report.rules_applied == ["box"] and report.covered and report.changed
    assert report.frames_touched == nf == report.number_of_frames
    assert report.transfer_syntax_in == ts_in and report.transfer_syntax_out == out.file_meta.TransferSyntaxUID == ts_out
    assert report.boxes == [BOX]
    # geometry and photometric interpretation
    assert (int(out.Rows), int(out.Columns), int(out.get("NumberOfFrames", 1) or 1)) == (rows, cols, nf)
    assert after.shape == before.shape
    if ts_out == ExplicitVRLittleEndian and ts_in.is_encapsulated:
        assert report.decompressed
        assert out.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2", "RGB")
        assert len(out.PixelData) >= nf * rows * cols * int(out.SamplesPerPixel) * int(out.BitsAllocated) // 8
    if not ts_in.is_encapsulated:   # native: header untouched, same pixel data length
        assert {e.tag: e.value for e in out if e.tag != 0x7FE00010} == header_before
    if not lossless:
        assert out.LossyImageCompression == "01"
    mask = _box_mask((rows, cols), BOX)
    inside, outside = after[:, mask], after[:, ~mask]
    exact = lossless or (ts_out == ExplicitVRLittleEndian)
    if report.method == "blocks":
        # JPEG redacted in the DCT domain: the box is black; outside the MCU-grown box (and the one pixel of
        # chroma interpolation beyond it) every pixel decodes exactly as before; no new lossy step recorded
        (x0, y0, x1, y1), = report.filled_boxes
        assert x0 <= BOX[0] and y0 <= BOX[1] and x1 >= BOX[2] and y1 >= BOX[3]
        assert (inside == _black(out)).all(), np.unique(inside)
        ring = _box_mask((rows, cols), (max(0, x0 - 1), max(0, y0 - 1), x1 + 1, y1 + 1))
        assert np.array_equal(after[:, ~ring], before[:, ~ring])
        assert out.PhotometricInterpretation == "YBR_FULL_422" and not report.decompressed
        assert out.LossyImageCompressionMethod == "ISO_10918_1"
    elif exact:
        # constant black inside the box in every frame; outside equal to the (decoded) original
        assert (inside == _black(out)).all(), np.unique(inside)
        assert np.array_equal(outside, before[:, ~mask])
    else:
        # lossy re-encode: the text block is gone, the rest is close to the original
        if ts_out == JPEGLSNearLossless:   # re-encoded with the original NEAR (2): every error is <= 2
            assert np.abs(inside - _black(out)).max() <= 2
            assert np.abs(outside - before[:, ~mask]).max() <= 2
        else:                              # JPEG 2000 at the original ratio: close, not exact
            assert np.abs(inside - _black(out)).mean() <= 4
            assert np.abs(outside - before[:, ~mask]).mean() <= 4
        assert str(out.LossyImageCompressionMethod).count("ISO_") >= 1
    # the box held something other than black in every frame before
    assert (before[:, mask] != _black(out)).reshape(nf, -1).any(axis=1).all()

    # dciodvfy: no new Error lines
    errors = []
    for name in ("before.dcm", "after.dcm"):
        res = subprocess.run([DCIODVFY, str(tmp_path / name)], capture_output=True, text=True, timeout=60)
        errors.append({ln.strip() for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("Error")})
    assert errors[1] <= errors[0], errors[1] - errors[0]


def test_lossy_history_appended_on_reencode() -> None:
    ds = _roundtrip(compressed(JPEG2000, "RGB", j2k_cr=[8]))
    ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod = "8", "ISO_15444_1"
    redact(ds, [PixelRule("b", [BOX], {})], lossy="reencode")
    assert list(ds.LossyImageCompressionMethod) == ["ISO_15444_1", "ISO_15444_1"]
    assert len(ds.LossyImageCompressionRatio) == 2 and float(ds.LossyImageCompressionRatio[1]) > 1


def test_lossy_uncompressed_keeps_history(monkeypatch) -> None:
    # issue 20: JPEG Baseline is now redacted block by block; the decode path is what runs without libjpeg-turbo
    monkeypatch.setattr(pixel_codecs, "_turbojpeg", lambda: None)
    ds = _roundtrip(jpeg_baseline())
    ratio, method = ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod
    report = redact(ds, [PixelRule("b", [BOX], {})])
    assert (ds.LossyImageCompression, ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod) == ("01", ratio, method)
    assert ds.PhotometricInterpretation == "RGB" and any("YBR_FULL_422 -> RGB" in n for n in report.notes)
    assert any("libturbojpeg0" in n for n in report.notes) and report.method == "uncompressed"


def test_jpeg_baseline_blocks_keep_history() -> None:
    "Block redaction adds no lossy step: syntax, photometric interpretation and lossy history stay as they were."
    ds = _roundtrip(jpeg_baseline())
    ratio, method = ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod
    report = redact(ds, [PixelRule("b", [BOX], {})])
    assert report.method == "blocks" and ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert (ds.LossyImageCompression, ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod) == ("01", ratio, method)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"


def test_jpeg_baseline_reencode_falls_back_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(pixel_codecs, "_turbojpeg", lambda: None)   # issue 20: the fallback runs without libjpeg-turbo
    ds = _roundtrip(jpeg_baseline())
    report = redact(ds, [PixelRule("b", [BOX], {})], lossy="reencode")
    assert not report.reencoded and report.decompressed
    assert any("re-encode unavailable" in n for n in report.notes)


@pytest.mark.parametrize("ts,kw", [(RLELossless, {}), (JPEGLSLossless, {}), (JPEG2000Lossless, {}),
                                   (JPEGLSNearLossless, {"jls_error": 1}), (JPEG2000, {"j2k_cr": [5]})])
def test_untouched_frames_keep_fragments(ts, kw) -> None:
    ds = _roundtrip(compressed(ts, "RGB", frames=5, **kw))
    orig = list(generate_fragmented_frames(ds.PixelData, number_of_frames=5))
    report = redact(ds, [PixelRule("b", [BOX], {})], lossy="reencode", frames=[1, 3])
    new = list(generate_fragmented_frames(_roundtrip(ds).PixelData, number_of_frames=5))
    assert [o == n for o, n in zip(orig, new)] == [True, False, True, False, True]
    assert report.frames_touched == 2 and report.reencoded and not report.covered


def test_boxes_outside_image_reencode_nothing() -> None:
    ds = _roundtrip(_testfile("examples_ybr_color.dcm"))           # 30-frame JPEG Baseline
    pixel_data = ds.PixelData
    report = redact(ds, [PixelRule("b", [(400, 300, 500, 400)], {})])
    assert ds.PixelData is pixel_data and ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert not report.changed and not report.reencoded and report.frames_touched == 0


def test_extended_offset_table_rebuilt() -> None:
    ds = synthetic("MONOCHROME2", frames=4)
    ds.compress(RLELossless, encapsulate_ext=True, generate_instance_uid=False)
    ds = _roundtrip(ds)
    redact(ds, [PixelRule("b", [BOX], {})], frames=[2])
    out = _roundtrip(ds)
    assert "ExtendedOffsetTable" in out
    assert (_frames(out)[2][_box_mask((40, 48), BOX)] == 0).all()
    assert len(list(generate_frames(out.PixelData, number_of_frames=4))) == 4


def test_mark_clean_only_when_covered() -> None:
    ds = _roundtrip(synthetic())
    report = redact(ds, [PixelRule("b", [BOX], {"Manufacturer": "ACME"})])
    if report.covered:
        mark_clean(ds)
    assert ds.BurnedInAnnotation == "NO"
    ds2 = _roundtrip(synthetic())
    report2 = redact(ds2, [PixelRule("b", [BOX], {"Manufacturer": "OTHER"})])
    assert not report2.covered and ds2.BurnedInAnnotation == "YES"
    assert np.array_equal(ds2.pixel_array, _roundtrip(synthetic()).pixel_array)


def test_keep_only_ultrasound_regions() -> None:
    ds = synthetic("RGB", frames=2)
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0, region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 10, 5, 39, 34
    ds.SequenceOfUltrasoundRegions = [region]
    ds.compress(JPEGLSLossless, generate_instance_uid=False)
    ds = _roundtrip(ds)
    before = _frames(ds)
    report = redact(ds, [PixelRule("us", (), {}, keep_only="ultrasound_regions")])
    after = _frames(_roundtrip(ds))
    keep = _box_mask((40, 48), (10, 5, 40, 35))
    assert (after[:, ~keep] == 0).all() and np.array_equal(after[:, keep], before[:, keep])
    assert report.kept_regions == [(10, 5, 40, 35)] and report.covered


# ---------------------------------------------------------------- property: any boxes, any layout
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LAYOUTS = [("MONOCHROME2", 8, 0), ("MONOCHROME2", 12, 1), ("MONOCHROME1", 16, 0), ("RGB", 8, 0), ("MONOCHROME2", 16, 1)]


@st.composite
def _boxes(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        x0, y0 = draw(st.integers(0, 60)), draw(st.integers(0, 50))
        out.append((x0, y0, x0 + draw(st.integers(1, 30)), y0 + draw(st.integers(1, 30))))
    return out


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=st.sampled_from(LAYOUTS), boxes=_boxes(), ts=st.sampled_from([None, RLELossless, JPEGLSLossless]),
       seed=st.integers(0, 1000))
def test_any_boxes_fill_exactly_the_boxes(layout, boxes, ts, seed) -> None:
    pi, bs, signed = layout
    ds = synthetic(pi, frames=2, bits_stored=bs, signed=signed, seed=seed)
    if ts is not None:
        ds.compress(ts, generate_instance_uid=False)
    ds = _roundtrip(ds)
    before = _frames(ds).astype(np.int64)
    report = redact(ds, [PixelRule("p", boxes, {})])
    after = _frames(_roundtrip(ds)).astype(np.int64)
    mask = np.zeros((40, 48), bool)
    for (x0, y0, x1, y1) in boxes:
        mask[y0:y1, x0:x1] = True
    assert (after[:, mask] == _black(ds)).all()
    assert np.array_equal(after[:, ~mask], before[:, ~mask])
    assert report.changed == bool(mask.any())
    assert all(0 <= b[0] < b[2] <= 48 and 0 <= b[1] < b[3] <= 40 for b in report.boxes)
