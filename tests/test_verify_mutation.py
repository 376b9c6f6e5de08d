"""Mutation test of the verifier (issue 15): plant one identifier of the file's own patient into a clean output.

Clean outputs: pseudicom's `pseudonymize` output (with a key) of patients whose identifiers have the
spellings issue 15 lists, and of pydicom's own test files. Into a copy of one output per mutation,
one identifier of that output's patient is planted, in one spelling and one place (each text VR, a
nested sequence item, a private element as text and as bytes, the file meta). verify must flag every
mutated file (recall 100%, printed) and none of the unmutated copies.
"""
import datetime as dt

import pydicom
import pytest

from verify_cases import PATIENTS, PLACES, copy_clean, leak_files, plant, write_patients, write_real

from pseudicom.io import walk_files
from pseudicom.keys import Key, remap_uid
from pseudicom.pipeline import run
from pseudicom.recipe import load_recipe
from pseudicom.verify import verify

KEY = Key(b"m" * 32)


def real_spellings(ds) -> list[str]:
    "Spellings of a real file's own identifiers, written by hand here (not by pseudicom.spellings)."
    out = []
    name = str(ds.get("PatientName", "") or "")
    parts = [p for p in name.split("^") if p]
    if len(parts) >= 2:
        out += [f"{parts[1]} {parts[0]}", f"{parts[0].upper()}, {parts[1].upper()}"]
    elif parts:
        out.append(parts[0])
    pid = str(ds.get("PatientID", "") or "")
    if pid:
        out.append(pid if len(pid) < 6 else f"{pid[:3]} {pid[3:]}")
    birth = str(ds.get("PatientBirthDate", "") or "")
    if len(birth) == 8:
        d = dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
        out += [d.strftime("%B %d, %Y"), d.strftime("%d/%m/%y")]
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    "Inputs, pseudicom's clean output of them, and output path -> the input it came from."
    tmp = tmp_path_factory.mktemp("mutation")
    src = tmp / "src"
    inputs = write_patients(src) + write_real(src)
    recipe = load_recipe("pseudonymize")
    recipe.pixels["burned_in"] = "detect"   # the real captures and SECONDARY images are screened, not held back
    result = run(recipe, src, tmp / "out", key=KEY, workers=1)
    assert result.counts["written"] >= len(PATIENTS) + 3, result.summary()
    by_sop = {remap_uid(KEY, str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)): p for p in inputs}
    outputs = {p: by_sop[str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)]
               for p in walk_files(tmp / "out").files if p.suffix == ".dcm"}
    base = verify(src, tmp / "out", recipe, key=KEY)
    assert base.ok, base.summary(20)
    return tmp, src, outputs


def test_every_planted_identifier_is_found(clean):
    tmp, src, outputs = clean
    dst = tmp / "mutated"
    planted: dict[str, tuple] = {}
    spellings = {p[0]: p[3] for p in PATIENTS}
    k = 0
    for out, inp in sorted(outputs.items()):
        ds = pydicom.dcmread(inp, stop_before_pixels=True)
        texts = spellings.get(str(ds.PatientName)) or real_spellings(ds)
        for text in texts:
            for place in PLACES:
                if place.startswith("SH") and len(text) > 16:
                    continue  # SH holds 16 characters: a cut name is no name
                name = f"m{k:04d}.dcm"
                plant(out, dst / name, place, text, name)
                planted[name] = (inp.parent.name, place, text)
                k += 1
        for j in range(3):
            copy_clean(out, dst / f"c{k:04d}.dcm", f"clean{k}")
            k += 1
    report = verify(src, dst, "pseudonymize", key=KEY)
    files = walk_files(dst).files
    flagged = leak_files(report)
    mutated = [i for i, p in enumerate(files) if p.name in planted]
    missed = [planted[files[i].name] for i in mutated if i not in flagged]
    false = [files[i].name for i in flagged if files[i].name not in planted]
    recall = 1 - len(missed) / len(mutated)
    print(f"\nmutation test: {len(mutated)} planted identifiers in {len(PLACES)} places, recall {recall:.1%}, "
          f"{len(false)} false alarms in {len(files) - len(mutated)} unmutated copies; verify {report.seconds:.2f} s")
    assert missed == [] and false == [], (missed, false)
    assert recall == 1.0
    assert report.verdict == "NOT CLEAN" and report.exit_code == 1
