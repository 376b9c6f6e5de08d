"""The run-level dictionary (issue 15): a patient of the batch named in another patient's kept text is scrubbed.

`pipeline.run` reads every input's header first and scrubs each file's text with its own identifying
strings and those of every other file of the run (`pipeline.dictionary`, `identifying.run_strings`).
These tests plant patient A's name and ID in patient B's kept and cleaned text and check, on the raw,
streaming and full paths and with the series memo, that it is scrubbed, that `verify` finds nothing,
that the output does not depend on the number of workers, that the dictionary reaches no output,
report, audit log or journal, and that a resumed run whose inputs give another dictionary redoes
every file. Real files: the heudiconv physician and OFFIS's name in other files' descriptions.
"""
from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import real_path, realdata_root
from pseudicom.deid import Deidentifier
from pseudicom.keys import Key
from pseudicom.pipeline import run
from pseudicom.synth import synthesize_ct_series
from pseudicom.verify import verify

KEY = Key(b"r" * 32)
A_NAME, A_ID, B_NAME = "Mustermann^Maximilian", "PID-0001", "Sample^Erika"


def _ct(path: Path, name: str, pid: str, uid: str, **values) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName, ds.PatientID, ds.StudyInstanceUID = name, pid, uid
    ds.SeriesInstanceUID, ds.SOPInstanceUID = uid + ".0", uid + ".1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for k, v in values.items():
        setattr(ds, k, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture()
def batch(tmp_path) -> Path:
    "Patient A, and patient B whose study description (cleaned under pseudonymize) and model name (kept, safety net) name A."
    src = tmp_path / "in"
    _ct(src / "a.dcm", A_NAME, A_ID, "1.2.826.0.1.3680043.2.1125.77.1")
    _ct(src / "b.dcm", B_NAME, "PID-0002", "1.2.826.0.1.3680043.2.1125.77.2",
        StudyDescription=f"CT chest, compare Mustermann {A_ID}",
        ManufacturerModelName="model of maximilian mustermann")
    return src


def _outputs(dst: Path) -> dict[str, bytes]:
    return {p.relative_to(dst).as_posix(): p.read_bytes() for p in sorted(dst.rglob("*.dcm"))}


def _b_output(dst: Path) -> pydicom.Dataset:
    for p in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        if ds.get("ManufacturerModelName", "") and "model" in str(ds.ManufacturerModelName):
            return ds
    raise AssertionError("patient B's output not found")


@pytest.mark.parametrize("recipe", ["basic", "pseudonymize"])
@pytest.mark.parametrize("path", ["raw", "stream", "full"])
def test_other_patient_scrubbed(batch, tmp_path, recipe, path):
    options = {"raw": {}, "stream": {"raw_headers": False}, "full": {"raw_headers": False, "fast": False}}[path]
    dst = tmp_path / f"out-{recipe}-{path}"
    result = run(recipe, batch, dst, key=KEY, workers=1, progress=False, **options)
    assert [f.status for f in result.files] == ["written", "written"], [f.reason for f in result.files]
    assert {f.path for f in result.files} == {path}
    b = _b_output(dst)
    assert str(b.ManufacturerModelName) == "model of ***"   # kept text (unlisted: the safety net); the whole name at once
    if recipe == "pseudonymize":
        assert str(b.StudyDescription) == "CT chest, compare *** ***"   # cleaned descriptor
    else:
        assert "StudyDescription" not in b
    for data in _outputs(dst).values():
        assert b"ustermann" not in data.lower() and b"PID-0001" not in data and b"aximilian" not in data.lower()
    report = verify(batch, dst, recipe=recipe, key=KEY)
    assert report.verdict == "CLEAN", report.summary()


def test_same_bytes_with_one_or_two_workers(batch, tmp_path):
    for i in range(6):   # more files, so that two workers share them
        _ct(batch / f"c{i}.dcm", f"Other{i}^Olga", f"PID-10{i}", f"1.2.826.0.1.3680043.2.1125.78.{i}",
            StudyDescription=f"after Other{(i + 1) % 6} and Mustermann")
    one = run("pseudonymize", batch, tmp_path / "one", key=KEY, workers=1, progress=False)
    two = run("pseudonymize", batch, tmp_path / "two", key=KEY, workers=2, progress=False, chunk_size=1)
    assert one.workers == "1 process" and two.workers == "2 processes"
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")
    texts = {str(pydicom.dcmread(p).get("StudyDescription", "")) for p in (tmp_path / "one").rglob("*.dcm")}
    assert "after *** and ***" in texts, texts


def test_dictionary_reaches_no_output_or_record(batch, tmp_path):
    dst = tmp_path / "out"
    run("pseudonymize", batch, dst, key=KEY, workers=1, progress=False, crosswalk=tmp_path / "crosswalk.csv")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "crosswalk.csv" and not p.is_relative_to(batch)]
    assert any(p.name == "out.journal.jsonl" for p in written) and any(p.name == "out.report.json" for p in written)
    for p in written:
        data = p.read_bytes().lower()
        for s in (b"mustermann", b"maximilian", b"erika", b"pid-0001", b"pid-0002"):
            assert s not in data, (p.name, s)
    header = json.loads((tmp_path / "out.journal.jsonl").read_text().splitlines()[0])
    assert set(header["run_dictionary"]) == {"size", "hmac"} and header["run_dictionary"]["size"] > 4


def test_resume_with_other_inputs_redoes(batch, tmp_path):
    "A file added with a new patient, named in an earlier file's text: the resumed run redoes every file."
    dst = tmp_path / "out"
    _ct(batch / "d.dcm", "Kowalczyk^Dora", "PID-0004", "1.2.826.0.1.3680043.2.1125.77.4")
    first = run("pseudonymize", batch, dst, key=KEY, workers=1, progress=False)
    assert first.resumed == 0
    again = run("pseudonymize", batch, dst, key=KEY, workers=1, progress=False)
    assert again.resumed == 3   # the same inputs: nothing redone
    _ct(batch / "e.dcm", "Nowakowski^Emil", "PID-0005", "1.2.826.0.1.3680043.2.1125.77.5")
    ds = pydicom.dcmread(batch / "d.dcm")
    mtime = (batch / "d.dcm").stat().st_mtime_ns
    assert "Nowakowski" not in str(ds.get("StudyDescription", ""))
    # d.dcm itself is unchanged (same size and mtime), but a new patient joined the run
    later = run("pseudonymize", batch, dst, key=KEY, workers=1, progress=False)
    assert (batch / "d.dcm").stat().st_mtime_ns == mtime
    assert later.resumed == 0 and [f.status for f in later.files] == ["written"] * 4


def test_new_patient_named_in_unchanged_file_is_scrubbed_on_resume(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    _ct(src / "a.dcm", B_NAME, "PID-0002", "1.2.826.0.1.3680043.2.1125.79.1", StudyDescription="compare Nowakowski")
    run("pseudonymize", src, dst, key=KEY, workers=1, progress=False)
    assert "Nowakowski" in str(_only(dst).StudyDescription)   # no patient of that name in the run yet: kept
    _ct(src / "b.dcm", "Nowakowski^Emil", "PID-0005", "1.2.826.0.1.3680043.2.1125.79.2")
    later = run("pseudonymize", src, dst, key=KEY, workers=1, progress=False)
    assert later.resumed == 0
    descriptions = {str(pydicom.dcmread(p).get("StudyDescription", "")) for p in dst.rglob("*.dcm")}
    assert "compare ***" in descriptions and not any("Nowakowski" in d for d in descriptions), descriptions


def _only(dst: Path) -> pydicom.Dataset:
    (path,) = list(dst.rglob("*.dcm"))
    return pydicom.dcmread(path)


def test_series_memo_same_bytes(tmp_path):
    "A series whose slices name another patient of the run (some slices only): the memo gives the bytes full processing gives."
    src = tmp_path / "in"
    files = synthesize_ct_series(src / "s", 40, rows=16, columns=16)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        if i % 7 == 3:
            ds.ImageComments = "see Mustermann PID-0001"
        if i % 11 == 5:
            ds.InterventionDescription = "as for Maximilian"
        ds.save_as(f, enforce_file_format=True)
    _ct(src / "other" / "a.dcm", A_NAME, A_ID, "1.2.826.0.1.3680043.2.1125.80.1")
    outs = {}
    for memo in (True, False):
        dst = tmp_path / f"memo-{memo}"
        result = run("pseudonymize", src, dst, key=KEY, workers=1, progress=False, series_memo=memo)
        assert all(f.status == "written" for f in result.files)
        outs[memo] = _outputs(dst)
    assert outs[True] == outs[False]
    for data in outs[True].values():
        assert b"Mustermann" not in data and b"Maximilian" not in data


def _realfile(*parts: str) -> Path:
    return real_path("/".join(parts)) if parts else realdata_root()


def test_real_heudiconv_physician_scrubbed(tmp_path):
    "The performing physician of heudiconv's phantom.dcm, in study and procedure-step descriptions of two other heudiconv files."
    folder = _realfile("heudiconv")
    assert folder.exists(), folder
    dst = tmp_path / "out"
    run("pseudonymize", folder, dst, key=KEY, workers=1, progress=False)
    physicians = set()
    for p in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        for kw in ("PerformingPhysicianName", "OperatorsName", "ReferringPhysicianName"):
            for v in (ds.get(kw) if isinstance(ds.get(kw), pydicom.multival.MultiValue) else [ds.get(kw)]):
                if v and str(v).strip():
                    physicians.update(w for w in str(v).replace("^", " ").split() if len(w) >= 4)
    assert physicians, "no physician names in the heudiconv files"
    for p in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        for kw in ("StudyDescription", "PerformedProcedureStepDescription", "RequestedProcedureDescription"):
            text = str(ds.get(kw, "")).lower()
            assert not any(w.lower() in text for w in physicians), (p.name, kw)
    report = verify(folder, dst, recipe="pseudonymize", key=KEY)
    assert not [f for f in report.findings if f.category == "name"], report.summary()


def test_real_offis_scrubbed(tmp_path):
    "OFFIS (the institution of pydicom-data's mlut_18/vlut_04) in the kept study descriptions of OFFIS's SR reports."
    _realfile()
    root = realdata_root()
    files = sorted(root.rglob("*mlut_18*")) + sorted(root.rglob("*vlut_04*"))
    reports = [p for p in sorted((root / "dicomscope").rglob("*")) + sorted((root / "pydicom").rglob("*"))
               if p.is_file() and "offis" in p.read_bytes()[:1 << 16].decode("latin-1").lower()
               and b"1.2.840.10008.5.1.4.1.1.88" in p.read_bytes()[:1 << 16]]
    assert files and reports, (files, reports)
    src = tmp_path / "in"
    src.mkdir()
    for p in files + reports:
        (src / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    dst = tmp_path / "out"
    run("pseudonymize", src, dst, key=KEY, workers=1, progress=False)
    for p in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        for kw in ("StudyDescription", "SeriesDescription"):
            assert "offis" not in str(ds.get(kw, "")).lower(), (p.name, kw)
    report = verify(src, dst, recipe="pseudonymize", key=KEY)
    assert not [f for f in report.findings if f.category == "institution"], report.summary()


def test_vendor_name_as_institution_not_scrubbed_from_manufacturer(tmp_path):
    "A phantom whose institution is its vendor's name: the other files keep their Manufacturer; their descriptions are scrubbed."
    src = tmp_path / "in"
    _ct(src / "a.dcm", A_NAME, A_ID, "1.2.826.0.1.3680043.2.1125.81.1", InstitutionName="GE MEDICAL SYSTEMS")
    _ct(src / "b.dcm", B_NAME, "PID-0002", "1.2.826.0.1.3680043.2.1125.81.2", InstitutionName="Klinikum Nord",
        StudyDescription="phantom by GE MEDICAL SYSTEMS")
    run("pseudonymize", src, tmp_path / "out", key=KEY, workers=1, progress=False)
    b = _b_by_patient(tmp_path / "out")
    assert (str(b.Manufacturer), str(b.StudyDescription)) == ("GE MEDICAL SYSTEMS", "phantom by ***")


def _b_by_patient(dst: Path) -> pydicom.Dataset:
    for p in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        if "phantom" in str(ds.get("StudyDescription", "")):
            return ds
    raise AssertionError("patient B's output not found")


def test_three_paths_same_bytes(batch, tmp_path):
    "With the run's dictionary, the raw header, streaming and full paths write the same bytes."
    outs = {}
    for path, options in {"raw": {}, "stream": {"raw_headers": False}, "full": {"raw_headers": False, "fast": False}}.items():
        result = run("pseudonymize", batch, tmp_path / path, key=KEY, workers=1, progress=False, **options)
        assert {f.path for f in result.files} == {path}
        outs[path] = _outputs(tmp_path / path)
    assert outs["raw"] == outs["stream"] == outs["full"]


def _by_difference_against_whole(paths: list[Path]) -> tuple[int, list[str]]:
    "(files read by difference, files whose values by difference are not those of the whole parse)."
    from collections import Counter
    from pseudicom.pipeline.dictionary import _Difference, _header
    deid = Deidentifier("pseudonymize", KEY)
    scan, hits, wrong = _Difference(deid), 0, []
    for p in map(str, paths):
        header = _header(p)
        whole = None if header is None else Counter(deid.identifying_values(header))
        found = scan.values(p)
        if found is None:
            if header is not None:
                scan.remember(header)
            continue
        hits += 1
        if Counter(found) != whole:
            wrong.append(p)
    return hits, wrong


def test_first_pass_by_difference_gives_the_values_of_the_whole_parse(synth_set, tmp_path):
    """Each file read by difference from the one before gives exactly the identifying values of its whole parse, over the
    real corpus (in path order: series after series, and every kind of file next to another), the synthetic set and a
    CT series whose slices differ in names, dates, a sequence and a private element; and the run's dictionary is the one
    the whole parse gives."""
    from pseudicom.pipeline.dictionary import _headers, run_dictionary
    series = synthesize_ct_series(tmp_path / "ct", 6, rows=16, columns=16)
    for k, p in enumerate(series):   # slices that differ in what identifies, not only in position
        ds = pydicom.dcmread(p)
        ds.OperatorsName = f"Operator^{'ABCDEF'[k]}nne"
        ds.ContentDate = f"2024031{k}"
        if k % 2:
            ds.add_new(0x00091010, "LO", f"private note {k}")
            ds.private_block(0x0009, "PSEUDICOM TEST", create=True)
        if k == 3:
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.InstitutionName = "Klinikum Süd"
        ds.save_as(p)
    real = sorted(p for p in realdata_root().rglob("*") if p.is_file() and p.name != "manifest.json")
    groups = {"real": real, "synthetic": sorted(p for p in synth_set[0].rglob("*") if p.is_file()), "series": series}
    for name, paths in groups.items():
        hits, wrong = _by_difference_against_whole(paths)
        assert not wrong, (name, wrong[:5])
        assert hits >= {"real": 100, "synthetic": 3, "series": 4}[name], (name, hits)   # the difference path really ran
        deid = Deidentifier("pseudonymize", KEY)
        assert run_dictionary(paths, deid) == deid.dictionary_of(_headers(map(str, paths))), name
