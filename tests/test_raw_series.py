"""The raw header path and its series memo give exactly what the pydicom path gives, file by file.

A series is processed in one process, in order, so the memo (`pipeline.memo._SeriesMemo`) processes most
files by difference from a template. Variants are planted in some slices to make that difference
matter: an identifying value of this slice inside a text of the same slice, the template's value in
a text of a later slice, another patient, a changed decision attribute, private and sequence
changes, value lengths that change, a trailing element after the pixel data, a preamble, a file meta
element present in some files only. Every output, audit record and crosswalk entry must equal the
pydicom path's.
"""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from pseudicom.deid import Deidentifier
from pseudicom.keys import Key
from pseudicom.pipeline import process_file
from pseudicom.pipeline.results import pack_result
from pseudicom.pipeline.state import Worker
from pseudicom.synth import synthesize_ct_series


def _run(files: list[Path], recipe: str, raw: bool, staging: Path, memo: bool = True) -> list[tuple]:
    deid = Deidentifier(recipe, Key(b"s" * 32))
    out = []
    for i, f in enumerate(files):
        r = pack_result(process_file(i, str(f), f.name, str(staging), deid, raw_headers=raw, series_memo=memo))   # what a worker sends back
        data = (staging / f"{i:08d}.dcm").read_bytes() if r.status == "written" else None
        out.append((r.status, r.reason[:60], r.path, r.output, r.digest, (r.audit_lines, r.actions, r.changes),
                    sorted(r.crosswalk.items()), data))
    import threading
    hits = Worker.memos.get((id(deid), threading.get_ident()), (None, None))[1]
    return out, (hits.hits if hits is not None else 0)


def _edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for k, v in changes.items():
        if v is None:
            del ds[k]
        else:
            setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("series")
    files = synthesize_ct_series(d / "s", 120, rows=32, columns=32)
    first = pydicom.dcmread(files[3])
    # in every slice, an unlisted text attribute (cleaned by the safety net) holding the first slice's date-time:
    # the same bytes in every file, cleaned differently in the file whose identifier it is
    for f in files:
        _edit(f, InterventionDescription=f"contrast at {pydicom.dcmread(files[0]).AcquisitionDateTime}")
    # a slice whose comments hold its own acquisition date-time (an identifier of that file)
    _edit(files[5], ImageComments=f"acquired {pydicom.dcmread(files[5]).AcquisitionDateTime}")
    # a later slice whose comments hold the first slice's value (an identifier of another file, not of this one)
    _edit(files[9], ImageComments=f"see {first.AcquisitionDateTime}")
    _edit(files[12], PatientID="PID-OTHER", PatientName="Andere^Anna")          # another patient in the folder
    _edit(files[15], BurnedInAnnotation="YES")                                  # a decision attribute (quarantined)
    _edit(files[18], SeriesDescription="Thorax nativ PID-0001 Mustermann")     # a cleaned text that differs
    ds = pydicom.dcmread(files[21])
    ds.add_new(0x00111001, "LO", "Mustermann^Max 2")
    ds.save_as(files[21], enforce_file_format=True)
    ds = pydicom.dcmread(files[24])
    ds.RequestAttributesSequence[0].RequestedProcedureID = "RP-OTHER"
    ds.save_as(files[24], enforce_file_format=True)
    _edit(files[27], InstanceNumber="123456", SliceLocation="-1.25")            # value lengths change
    ds = pydicom.dcmread(files[30])
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 8)
    ds.save_as(files[30], enforce_file_format=True)
    raw = bytearray(files[33].read_bytes())
    raw[:8] = b"MUSTERMA"
    files[33].write_bytes(bytes(raw))   # a preamble
    ds = pydicom.dcmread(files[36])
    ds.file_meta.SourceApplicationEntityTitle = "OTHERSTATION"
    ds.save_as(files[36], enforce_file_format=True)
    _edit(files[39], ContentTime="101501", AcquisitionDateTime="20240315101501.5")   # a differing identifier of the file itself
    _edit(files[42], StationName="CTSTATION02")                                 # a different station (D in basic)
    _edit(files[45], ImageComments="", PatientAge="084Y")
    return files


def _copies(series: list[Path], folder: Path, change) -> list[Path]:
    "The series rewritten into `folder`, each file changed by `change(i, ds)`."
    out = []
    for i, f in enumerate(series):
        ds = pydicom.dcmread(f)
        change(i, ds)
        ds.save_as(folder / f.name, enforce_file_format=True)
        out.append(folder / f.name)
    return out


@pytest.fixture(scope="module")
def implicit_series(series, tmp_path_factory) -> list[Path]:
    "The same series in Implicit VR Little Endian."
    from pydicom.uid import ImplicitVRLittleEndian
    def change(i, ds):
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return _copies(series, tmp_path_factory.mktemp("implicit"), change)


@pytest.fixture(scope="module")
def rle_series(series, tmp_path_factory) -> list[Path]:
    "The same series compressed (RLE Lossless: encapsulated pixel data, fragment sizes that differ from slice to slice)."
    from pydicom.uid import RLELossless
    def change(i, ds):
        arr = ds.pixel_array.copy()
        arr[: i % 7 + 1, : (5 * i) % 29 + 2] = (37 * i) % 1000   # so the compressed sizes differ
        ds.compress(RLELossless, arr, encoding_plugin="pydicom")
    out = _copies(series, tmp_path_factory.mktemp("rle"), change)
    sizes = {(p.stat().st_size, len(pydicom.dcmread(p).PixelData)) for p in out}
    assert len(sizes) > 10, sizes   # the compressed pixel data differs in length from slice to slice
    return out


@pytest.fixture(scope="module")
def cyrillic_series(series, tmp_path_factory) -> list[Path]:
    "The same series in ISO_IR 144 (Cyrillic): the patient's name in Cyrillic, and in some slices' comments too."
    def change(i, ds):
        ds.SpecificCharacterSet = "ISO_IR 144"
        if i != 12:
            ds.PatientName = "Мустерман^Макс"
        if i % 10 == 7:
            ds.ImageComments = f"Мустерман, срез {i}"   # the name in a text the safety net cleans
        if i == 50:
            ds.ImageComments = "контроль"                     # a text without it
    return _copies(series, tmp_path_factory.mktemp("cyrillic"), change)


@pytest.fixture(scope="module")
def un_series(series, tmp_path_factory) -> list[Path]:
    """The same series with public attributes stored as explicit UN (as an archive that did not know them sends them),
    among them attributes that differ from slice to slice (the memo reads those alone)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element
    def change(i, ds):
        for kw in ("InstanceNumber", "SliceLocation", "ImagePositionPatient", "ImageType", "SliceThickness", "StudyDescription"):
            if kw not in ds:
                continue
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            write_data_element(fp, ds[kw])
            value = fp.getvalue()[8:]   # the value bytes, after a short explicit header
            ds[kw] = RawDataElement(ds[kw].tag, "UN", len(value), value, 0, False, True)
    out = _copies(series, tmp_path_factory.mktemp("un"), change)
    assert b"UN" in out[1].read_bytes()[:4096] and pydicom.dcmread(out[1])["InstanceNumber"].VR == "IS"
    return out


@pytest.mark.parametrize("recipe,encoding", [("basic", "explicit"), ("pseudonymize", "explicit"), ("pseudonymize", "implicit"),
                                             ("pseudonymize", "rle"), ("pseudonymize", "cyrillic"), ("pseudonymize", "un")])
def test_series_memo_matches_pydicom(series, implicit_series, rle_series, cyrillic_series, un_series, recipe, encoding, tmp_path):
    series = {"explicit": series, "implicit": implicit_series, "rle": rle_series, "cyrillic": cyrillic_series,
              "un": un_series}[encoding]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    raw, hits = _run(series, recipe, True, tmp_path / "a")
    ref, _ = _run(series, recipe, False, tmp_path / "b")
    nomemo, no_hits = _run(series, recipe, True, tmp_path / "c", memo=False)
    assert hits > 60 and no_hits == 0, (hits, no_hits)               # most files went by difference
    paths = {r[2] for r in raw}
    assert paths <= {"raw", ""} and {r[2] for r in ref} <= {"stream", ""}, paths
    for i, (a, b, c) in enumerate(zip(raw, ref, nomemo)):
        assert a[:2] == b[:2], (i, a[:2], b[:2])
        assert a[3:] == b[3:], f"file {i}: raw path (series memo) differs from the pydicom path"
        assert c[3:] == b[3:], f"file {i}: raw path (no memo) differs from the pydicom path"
    assert raw[15][0] == "quarantined"
    texts = {i: pydicom.dcmread(__import__("io").BytesIO(raw[i][7])).get("ImageComments") for i in (5, 9) if raw[i][7]}
    assert all("2024" not in str(t) for t in texts.values()), texts
    if encoding == "cyrillic":   # the Cyrillic name is nowhere in the outputs (the memo's path included)
        assert not [i for i, r in enumerate(raw) if r[7] and "Мустерман".encode("iso8859_5") in r[7]]
        assert sum(1 for r in raw if r[7] and b"ISO_IR 144" in r[7]) > 100
