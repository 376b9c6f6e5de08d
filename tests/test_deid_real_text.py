"""Real files through the `pseudicom deid` command: nothing that is not identifying is scrubbed (issue 14, sections 1 and 2).

Each file below came out with coded values turned into `***` when identifying strings were matched
as substrings in every VR (Modality ECG, SCPECG, CONTAINER, PNAME, HAS OBS CONTEXT, FrameType,
BodyPartExamined, ScanOptions, rtplan.dcm's PREDECESSOR...). Every output is compared with its
input: no `*` in a CS, UI, AE or AS value or in a code's value, scheme or meaning where the input had none;
every audit record says what happened to the element it names; a file without PatientID and
PatientName gets its dates moved under `pseudonymize`.

The real files come from `python tools/realdata.py` (the `realdata` fixture of conftest.py); pydicom's
rtplan.dcm is always there.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.tag import Tag

from pseudicom.cli import main

CORRUPTED_BEFORE = [   # each had coded values scrubbed, with the basic recipe
    "pydicom/waveform_ecg.dcm",                        # Modality ECG, CodingSchemeDesignator SCPECG
    "pydicom/reportsi.dcm",                            # ValueType CONTAINER and PNAME, RelationshipType HAS OBS CONTEXT
    "pydicom/test-SR.dcm",                             # a coding scheme designator
    "deid-data/humans/ctbrain1.dcm",                   # SIEMENS_... coding scheme, a code value
    "nibabel/philips_mprage.dcm",                      # 21 code strings of an enhanced MR
    "pydicom-data/eCT_Supplemental.dcm",               # FrameType PERFUSION
    "pydicom-data/JPEG-LL.dcm",                        # BodyPartExamined, ImageType
    "pydicom/dicomdirtests/98892001/CT2N/6293",        # ScanOptions
    "deid-data/ultrasounds/RGB_IMAGE.dcm",             # ImageType PRIMARY
]
CODED_VRS = ("CS", "UI", "AE", "AS")
CODE_KEYWORDS = ("CodeValue", "LongCodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "SpecificCharacterSet",
                 "CodeMeaning")   # meanings: only a whole name, phrase or ID is scrubbed there (none in these files)


def _deid(src_file: Path, tmp: Path, recipe: str, *extra: str) -> tuple[Path, list[dict]]:
    "Run `pseudicom deid` on a copy of one file; the output file and the audit records."
    src, dst = tmp / "src", tmp / "dst"
    src.mkdir(parents=True)
    shutil.copy(src_file, src / "in.dcm")
    code = main(["deid", str(src), str(dst), "--recipe", recipe, "--workers", "1", "--quiet",
                 "--audit", str(tmp / "audit.jsonl"), "--report", str(tmp / "report.json"), *extra])
    outputs = [p for p in dst.rglob("*") if p.is_file() and p.suffix == ".dcm"]
    assert code == 0 and len(outputs) == 1, (code, (tmp / "report.json").read_text()[:2000])
    audit = [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines() if line.strip()]
    return outputs[0], audit


def _coded(ds: pydicom.Dataset) -> dict[str, list[str]]:
    "Values that are codes, by keyword: CS, UI, AE, AS, and code values, schemes and meanings."
    out: dict[str, list[str]] = {}
    for elem in ds.iterall():
        if elem.VR in CODED_VRS or elem.keyword in CODE_KEYWORDS:
            values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
            out.setdefault(elem.keyword or str(elem.tag), []).extend(str(v) for v in values)
    return out


def _new_stars(before: pydicom.Dataset, after: pydicom.Dataset) -> list[tuple[str, str]]:
    "Coded values of `after` holding a '*' where no value of that keyword in `before` did."
    had = {k for k, vs in _coded(before).items() if any("*" in v for v in vs)}
    return [(k, v) for k, vs in _coded(after).items() if k not in had for v in vs if "*" in v]


def _at(ds: pydicom.Dataset, path: str):
    "The element at an audit path ('A[0].B', '(0009,0010)'), or None when absent."
    node = ds
    for part in path.split("."):
        name, _, index = part.partition("[")
        tag = Tag(int(name[1:5], 16), int(name[6:10], 16)) if name.startswith("(") else Tag(name)
        if node is None or tag not in node:
            return None
        node = node[tag]
        if index:
            i = int(index.rstrip("]"))
            node = node.value[i] if i < len(node.value) else None
    return node


def _untrue(before: pydicom.Dataset, after: pydicom.Dataset, audit: list[dict]) -> list[tuple[str, str]]:
    "Audit records that claim what did not happen to their element (remove: absent; empty: empty; others: changed)."
    wrong = []
    for rec in audit:
        if rec["path"] == "preamble" or rec["path"].startswith("file_meta."):
            continue
        old, new = _at(before, rec["path"]), _at(after, rec["path"])
        if rec["action"] == "remove":
            ok = new is None
        elif rec["action"] == "empty":
            ok = new is not None and (new.value is None or len(new.value) == 0)
        elif rec["action"] in ("dummy", "clean", "pseudonym", "replace_uid", "shift", "year", "subject"):
            ok = new is not None and (old is None or str(old.value) != str(new.value))
        else:
            ok = True
        if not ok:
            wrong.append((rec["path"], rec["action"]))
    return wrong


def test_rtplan_keeps_its_plan_relationship(tmp_path):
    "The repro of the issue: pydicom's rtplan.dcm with --recipe basic; (300A,0055) must read PREDECESSOR, not ***DECESSOR."
    src = Path(get_testdata_file("rtplan.dcm"))
    out, audit = _deid(src, tmp_path, "basic")
    before, after = pydicom.dcmread(src), pydicom.dcmread(out)
    assert after.ReferencedRTPlanSequence[0].RTPlanRelationship == "PREDECESSOR"
    assert _new_stars(before, after) == []
    assert _untrue(before, after, audit) == []


@pytest.mark.parametrize("name", CORRUPTED_BEFORE)
def test_real_file_codes_kept(realdata, tmp_path, name):
    src = realdata / name
    assert src.is_file(), f"{src} is missing from the real-file set: run `python tools/realdata.py`"
    for recipe in ("basic", "pseudonymize"):
        tmp = tmp_path / recipe
        extra = ["--burned-in", "detect"]   # several are captures or ultrasound: screened, not quarantined
        if recipe == "pseudonymize":
            tmp.mkdir()
            assert main(["keygen", str(tmp / "k.key")]) == 0
            extra += ["--key-file", str(tmp / "k.key")]
        out, audit = _deid(src, tmp, recipe, *extra)
        before, after = pydicom.dcmread(src, force=True), pydicom.dcmread(out)
        assert _new_stars(before, after) == [], (name, recipe)
        assert _untrue(before, after, audit) == [], (name, recipe)
        for kw in ("Modality", "BodyPartExamined", "SpecificCharacterSet"):
            assert after.get(kw) == before.get(kw), (name, recipe, kw)


def test_nameless_file_gets_its_dates_moved(realdata, tmp_path):
    "pydicom-data's emri_small.dcm has PatientID and PatientName empty: pseudonymize must still move its dates, and say on what it keyed."
    src = realdata / "pydicom-data" / "emri_small.dcm"
    assert src.is_file(), f"{src} is missing from the real-file set: run `python tools/realdata.py`"
    assert main(["keygen", str(tmp_path / "k.key")]) == 0
    out, audit = _deid(src, tmp_path / "run", "pseudonymize", "--key-file", str(tmp_path / "k.key"))
    before, after = pydicom.dcmread(src), pydicom.dcmread(out)
    assert not str(before.get("PatientID", "")).strip() and not str(before.get("PatientName", "")).strip()
    assert before.StudyDate == "20000101" and after.StudyDate not in ("", "20000101"), after.StudyDate
    shifts = [r for r in audit if r["action"] == "shift"]
    assert shifts and all(r["rule"].endswith("(offset keyed on StudyInstanceUID)") for r in shifts), shifts[:2]
    assert _untrue(before, after, audit) == []
