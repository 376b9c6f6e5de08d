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
from pseudicom.synth import PATIENTS, synthesize_ct_series
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
    if where in WHERE: return WHERE[where]
    return where.replace("file_meta:", "file_meta.").removeprefix("SR:")


def no_values_in(report, truth) -> None:
    "Nothing the report prints, returns or writes holds a planted value."
    texts = [json.dumps(report.to_dict()), report.summary(10**6), report._repr_html_(10**6)]
    for row in truth["planted"]:
        v = row["value"]
        if len(v) >= 6 and not re.fullmatch(r"\d{6}(\.\d+)?", v):
            for t in texts: assert v not in t, (row["category"], row["where"])


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
    ds = pydicom.dcmread(ct[3]); ds.ContentDate = "20240315"; ds.save_as(ct[3])        # CT study A, 20240315
    ds = pydicom.dcmread(us[0]); ds.ContentDate = "20240315"; ds.save_as(us[0])        # US study C, another date
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
    b.SOPInstanceUID = a.SOPInstanceUID; b.save_as(files[ct[1]])                 # two outputs, one SOP instance
    c.StudyInstanceUID = a.StudyInstanceUID; c.save_as(files[mr[0]])             # an MR series inside the CT study
    del a.PatientIdentityRemoved; a.save_as(files[ct[0]])
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
    before = tmp_path / "before"; before.mkdir()
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
