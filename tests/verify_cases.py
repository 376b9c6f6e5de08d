"""Inputs and plantings shared by tests/test_verify.py and tests/test_verify_mutation.py (issue 15).

Patients whose identifiers have the spellings that issue 15 lists (umlauts, kanji, a short
family-first name, a numeric ID), written as small CT files from pydicom's CT_small.dcm; and a
`plant` helper that writes a string into one element of an output file (any text VR, a nested
sequence item, a private element, the file meta).
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

# name, ID, birth date, and the spellings of them that issue 15 asks verify to find in kept text
PATIENTS = [
    ("Müllerwäsch^Zoë", "3607600", "19380819",
     ["August 19, 1938", "19 Aug 1938", "19/08/38", "08/19/1938", "PID 360 7600", "360-7600", "Muellerwaesch",
      "Zoe Mullerwasch", "Zoe"]),
    ("Sato^Hanako=佐藤^花子", "JP-4711-0815", "19500102", ["佐藤花子", "佐藤 花子", "Hanako Sato", "JP 4711 0815"]),
    ("鈴木^一郎", "JP0042007", "19620315", ["鈴木 一郎", "鈴木一郎", "March 15, 1962", "15.03.1962"]),
    ("Ng^Bo", "NG-123456", "19700704", ["Ng Bo", "NG, BO", "Bo Ng", "4 Jul 1970", "NG 123456"]),
]
REAL = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm"]  # pydicom's own test files


def uid(*parts) -> str:
    "A deterministic UID from `parts`."
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def write_ct_patients(src: Path, people: list[dict], prefix: str = "") -> list[Path]:
    "One CT file per patient (a dict of keyword: value) under `src/pN/`, UTF-8, with its own study, series and SOP UIDs."
    out = []
    for k, values in enumerate(people):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SpecificCharacterSet = "ISO_IR 192"
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(f"{prefix}study", k), uid(f"{prefix}series", k)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(f"{prefix}sop", k)
        ds.ImageComments = "Kontrolle"
        path = src / f"p{k}" / "ct.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def write_patients(src: Path) -> list[Path]:
    "One CT file per patient of PATIENTS under `src/pN/`."
    return write_ct_patients(src, [{"PatientName": name, "PatientID": pid, "PatientBirthDate": birth}
                                   for name, pid, birth, _ in PATIENTS])


def write_real(src: Path) -> list[Path]:
    "pydicom's own test files REAL, one per folder under `src/realN/`."
    out = []
    for k, name in enumerate(REAL):
        path = src / f"real{k}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(get_testdata_file(name), path)
        out.append(path)
    return out


# where a planted string goes: (label, function(dataset, text))
def _private(ds: Dataset, text: str) -> None:
    ds.private_block(0x0029, "MUTATION 1.0", create=True).add_new(0x10, "LO", text)


def _private_bytes(ds: Dataset, text: str) -> None:
    ds.private_block(0x0029, "MUTATION 1.0", create=True).add_new(0x11, "OB", f"protocol: {text};".encode("utf-8") + b"\0")


def _nested(ds: Dataset, text: str) -> None:
    item = Dataset()
    item.RequestedProcedureDescription = text
    ds.RequestAttributesSequence = Sequence([item])


def _meta(ds: Dataset, text: str) -> None:
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ds.file_meta.PrivateInformation = f"note {text} ".encode("utf-8")


PLACES = {
    "LO StudyDescription": lambda ds, t: setattr(ds, "StudyDescription", f"Kontrolle {t}"),
    "SH StationName": lambda ds, t: setattr(ds, "StationName", t),
    "ST InstitutionAddress": lambda ds, t: setattr(ds, "InstitutionAddress", f"z. Hd. {t}"),
    "LT ImageComments": lambda ds, t: setattr(ds, "ImageComments", f"Befund {t} besprochen"),
    "UT StrainAdditionalInformation": lambda ds, t: ds.add_new(0x00100218, "UT", f"Zusatz {t}"),
    "UC StrainDescription": lambda ds, t: ds.add_new(0x00100212, "UC", f"see {t}"),
    "PN ReferringPhysicianName": lambda ds, t: setattr(ds, "ReferringPhysicianName", t),
    "nested RequestAttributesSequence": _nested,
    "private LO": _private,
    "private OB": _private_bytes,
    "file meta PrivateInformation": _meta,
}


def plant(src: Path, dst: Path, place: str, text: str, tag: str) -> None:
    "Copy the output `src` to `dst` with `text` written at `place` and a new SOP Instance UID (from `tag`)."
    ds = pydicom.dcmread(src)
    ds.SpecificCharacterSet = "ISO_IR 192"
    PLACES[place](ds, text)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("planted", tag)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)


def copy_clean(src: Path, dst: Path, tag: str) -> None:
    "Copy the output `src` to `dst` unchanged but for a new SOP Instance UID."
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("clean", tag)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)


def leak_files(report) -> set[int]:
    "Indexes of output files with a leak finding (a value, raw bytes, path or OCR; not structure)."
    return {f.index for f in report.findings if f.check in ("value", "raw", "path", "ocr")}


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
