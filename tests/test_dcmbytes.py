"""One byte walker: io's structure check and rawheader's parser read DICOM bytes through `pseudicom._dcmbytes`.

The two walkers are checked against each other and against pydicom on every real file of the corpus, and
the modules that use the byte module are checked to carry no struct formats or byte constants of their own."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

import pseudicom
from pseudicom import _dcmbytes, io, rawheader
from pseudicom.errors import DicomReadError
from pseudicom.rawheader import Decline, RawDataset, RawElement, read_raw

SRC = Path(pseudicom.__file__).parent


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")


def test_walkers_agree_with_each_other_and_pydicom(realdata):
    "Where the fast path parses a file, its top-level tags are check_structure's and pydicom's; and it parses most files."
    parsed = 0
    for path in _files(realdata) + [Path(get_testdata_file(n)) for n in ("CT_small.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm")]:
        raw = path.read_bytes()
        try:
            layout = io.check_structure(raw)
        except DicomReadError:
            with pytest.raises(Decline):   # what io refuses as damaged, the fast path never parses
                read_raw(path)
            continue
        try:
            ds, raw_layout = read_raw(path)
        except Decline:
            continue
        parsed += 1
        tags = sorted([int(t) for t in ds.keys()] + ([_dcmbytes.PIXEL_DATA] if raw_layout.pixel_start is not None else []))
        assert tags == sorted(layout.top_tags), path
        assert (raw_layout.pixel_start, raw_layout.pixel_end) == (layout.pixel_start, layout.pixel_end), path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pydicom.dcmread(path)
        assert tags == sorted(int(t) for t in ref.keys()), path
    assert parsed >= 100, parsed


def test_element_header_matches_pydicom_offsets():
    "element_header steps from element to element exactly as pydicom's reader does (explicit and implicit VR)."
    for name in ("CT_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm"):
        path = get_testdata_file(name)
        raw = Path(path).read_bytes()
        ds = pydicom.dcmread(path, defer_size=None)
        implicit = ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        pos = io.check_structure(raw).dataset_start
        seen = []
        while pos < len(raw):
            tag, vr, length, vstart = _dcmbytes.element_header(raw, pos, len(raw), implicit)
            seen.append(tag)
            if length == _dcmbytes.UNDEFINED:   # a sequence of undefined length: skip it with the structure walk
                pos = _dcmbytes.walk(raw, vstart, len(raw), implicit, True, _dcmbytes.SEQ_END, depth=1)
            else:
                pos = vstart + length
        assert seen == [int(t) for t in ds.keys()], name


def test_rawdataset_add_resorts():
    "RawDataset.add puts elements read elsewhere into a dataset; iteration is in tag order again (what the series memo needs)."
    ds, _ = read_raw(get_testdata_file("CT_small.dcm"))
    mini = RawDataset(ds.codec)
    mini.add(ds[0x00200013], ds[0x00080018])   # out of order on purpose
    mini.add(RawElement(0x00080016, "UI", value="1.2.840.10008.5.1.4.1.1.2"))
    assert [int(e.tag) for e in mini] == [0x00080016, 0x00080018, 0x00200013]
    assert mini.SOPInstanceUID == ds.SOPInstanceUID


def test_public_surface():
    "rawheader and io export what other modules use, nothing generic."
    assert {"decode", "encode", "canonical", "parse"}.isdisjoint(rawheader.__all__)
    assert {"Decline", "RawDataset", "RawElement", "read_raw", "header_parts", "STRING_VRS"} <= set(rawheader.__all__)
    assert {"check_complete", "describes_image"} <= set(io.__all__)


@pytest.mark.parametrize("module", ["io.py", "rawheader.py", "_dcmvalues.py"])
def test_no_byte_constants_of_their_own(module):
    "The modules that walk DICOM bytes take formats and tags from _dcmbytes (one definition of each)."
    text = (SRC / module).read_text()
    assert not re.search(r"struct\.Struct\(|0x7FE00010|0xFFFEE0DD|0xFFFFFFFF|\"<HH", text), module
