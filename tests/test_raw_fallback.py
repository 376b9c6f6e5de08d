"""The raw header path falls back to pydicom only on a `rawheader.Decline`, and says so (issue 17).

Before, `process_file` caught every exception of the raw path and retried with pydicom, so a bug
there was invisible: the file was written anyway. Now a Decline (the documented "not modelled here")
hands the file to pydicom and is counted by reason in the result and the report; anything else fails
the file with its message.
"""
import json
import shutil

import pydicom
import pytest
from pydicom.data import get_testdata_file

from pseudicom.deid import Deidentifier
from pseudicom.keys import Key
from pseudicom.pipeline import process_file, run
from pseudicom.pipeline import worker
from pseudicom.rawheader import Decline

KEY = Key(b"r" * 32)


def _src(tmp_path, n=2):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(src / f"ct{i}.dcm", enforce_file_format=True)
    return src


def _broken(*args, **kwargs):
    raise RuntimeError("a bug in the raw header path")


@pytest.mark.parametrize("where", ["read_raw", "element_chunks", "assemble"])
def test_an_error_on_the_raw_path_fails_the_file(tmp_path, monkeypatch, where):
    "A RuntimeError anywhere on the raw path fails the file, naming it; nothing is written by pydicom instead."
    monkeypatch.setattr(worker, where, _broken)
    staging = tmp_path / "staging"
    staging.mkdir()
    r = process_file(0, get_testdata_file("CT_small.dcm"), "ct.dcm", str(staging), Deidentifier("basic", KEY))
    assert r.status == "failed", (r.status, r.path)
    assert "RuntimeError" in r.reason and "raw header path" in r.reason and "a bug in the raw header path" in r.reason, r.reason
    assert r.path == "" and r.output is None and not list(staging.iterdir())


def test_an_error_on_the_raw_path_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "read_raw", _broken)
    result = run("basic", _src(tmp_path), tmp_path / "out", key=KEY, workers=1, progress=False)
    assert [f.status for f in result.files] == ["failed", "failed"] and not result.ok
    assert not list((tmp_path / "out").rglob("*.dcm"))
    assert result.declines == {}


def test_a_decline_falls_back_is_counted_and_gives_the_same_bytes(tmp_path, monkeypatch):
    src = _src(tmp_path, 3)
    full = run("basic", src, tmp_path / "pydicom", key=KEY, workers=1, progress=False, raw_headers=False)
    raw = run("basic", src, tmp_path / "raw", key=KEY, workers=1, progress=False)
    assert [f.path for f in raw.files] == ["raw"] * 3 and raw.declines == {}

    def declining(path):
        raise Decline("nesting")
    monkeypatch.setattr(worker, "read_raw", declining)
    declined = run("basic", src, tmp_path / "declined", key=KEY, workers=1, progress=False,
                   series_memo=False)   # (the memo would process slices 2 and 3 from the templates of the run before)
    assert [f.path for f in declined.files] == ["stream"] * 3
    assert [f.declined for f in declined.files] == ["nesting"] * 3
    assert declined.declines == {"nesting": 3}
    assert "raw header path declined 3 files (read by pydicom instead): 3 nesting" in declined.summary()
    report = json.loads((tmp_path / "declined.report.json").read_text())
    assert report["raw_declined"] == {"nesting": 3} and report["files"][0]["raw_declined"] == "nesting"
    for a, b, c in zip(full.files, raw.files, declined.files):   # the same bytes and audit by every way
        assert a.digest == b.digest == c.digest
        assert (tmp_path / "pydicom" / a.output).read_bytes() == (tmp_path / "declined" / c.output).read_bytes()
    assert (tmp_path / "pydicom.audit.jsonl").read_bytes() == (tmp_path / "declined.audit.jsonl").read_bytes()
    assert (tmp_path / "raw.audit.jsonl").read_bytes() == (tmp_path / "declined.audit.jsonl").read_bytes()


def test_real_declines_are_counted_by_kind_without_values(tmp_path):
    "A big endian file and a character set the raw path does not model: declined, written by pydicom, counted."
    src = tmp_path / "in"
    src.mkdir()
    mr = get_testdata_file("MR_small_bigendian.dcm")
    data = open(mr, "rb").read().replace(b"DERIVED\\SECONDARY\\OTHER", b"DERIVED\\PRIMARY\\OTHER\\M")
    (src / "big.dcm").write_bytes(data)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SpecificCharacterSet = "ISO 2022 IR 100"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID + ".2"   # another instance
    ds.save_as(src / "jis.dcm", enforce_file_format=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "plain.dcm")
    result = run("basic", src, tmp_path / "out", key=KEY, workers=1, progress=False)
    by = {f.source: f for f in result.files}
    assert all(f.status == "written" for f in result.files), [(f.source, f.reason) for f in result.files]
    assert by["plain.dcm"].declined == "" and by["plain.dcm"].path == "raw"
    assert by["big.dcm"].declined and by["jis.dcm"].declined
    assert "IR 100" not in by["jis.dcm"].declined   # the kind, not the value
    assert sum(result.declines.values()) == 2
