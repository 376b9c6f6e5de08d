"""The streaming fast path writes exactly the bytes of the full path: synthetic CT, MR, SR, US and SC files,
and CT slices with elements after PixelData (trailing padding, a private group, a kept attribute)."""

import blake3
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from conftest import recipe_covering_burned_in
from pseudicom.deid import Deidentifier
from pseudicom.pipeline import process_file, run
from pseudicom.recipe import load_recipe


def both_paths(path, source, recipe, key, tmp_path):
    "process_file with the fast path on and off; (status, path taken, digest, bytes) for each."
    out = []
    for fast in (True, False):
        staging = tmp_path / f"staging-{fast}"
        staging.mkdir(exist_ok=True)
        r = process_file(0, str(path), source, str(staging), Deidentifier(recipe, key), fast=fast)
        data = (staging / "00000000.dcm").read_bytes() if r.status == "written" else None
        out.append((r.status, r.path, r.digest, data, r.audit, r.reason))
    return out


@pytest.mark.parametrize("name", ["basic", "pseudonymize"])
def test_fast_path_bytes_equal_full_path_on_synth(synth_set, test_key, tmp_path, name):
    src, truth = synth_set
    recipe = recipe_covering_burned_in(name, src, truth)
    taken = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        (s1, p1, h1, d1, a1, r1), (s2, p2, h2, d2, a2, r2) = both_paths(path, rel, recipe, test_key, tmp_path)
        assert (s1, h1) == (s2, h2), rel
        assert d1 == d2 and a1 == a2, rel
        if d1 is not None:
            assert blake3.blake3(d1).hexdigest() == h1
        taken[rel] = (s1, p1)
    modality = {rel: str(pydicom.dcmread(src / rel, stop_before_pixels=True).Modality) for rel in taken}
    streamed = {modality[rel] for rel, (s, p) in taken.items() if p in ("raw", "stream")}
    assert {"CT", "MR", "SR"} <= streamed, taken          # header-only files take the fast path
    assert all(p == "full" for rel, (s, p) in taken.items() if modality[rel] == "US" and s == "written")  # redacted: full path


def _with_trailing(src: Path, dst: Path) -> Path:
    "A CT slice with elements after PixelData: a private block, DataSetTrailingPadding."
    raw = src.read_bytes()
    tail = Dataset()
    tail.add_new(0x7FE10010, "LO", "ACME 1.0")
    tail.add_new(0x7FE11001, "LO", "MUSTERMANN^MAX")
    tail.add_new(0xFFFCFFFC, "OB", b"\0" * 64)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, tail)
    dst.write_bytes(raw + fp.getvalue())
    return dst


def test_elements_after_pixel_data_are_deidentified_identically(synth_set, test_key, tmp_path):
    src, _ = synth_set
    ct = _with_trailing(next(src.rglob("CT_chest/IM0001.dcm")), tmp_path / "ct_tail.dcm")
    assert 0xFFFCFFFC in pydicom.dcmread(ct)
    for recipe in (load_recipe("basic"), _keeping_padding()):
        (s1, p1, h1, d1, a1, _), (s2, p2, h2, d2, a2, _) = both_paths(ct, "ct_tail.dcm", recipe, test_key, tmp_path)
        assert (s1, p1, s2, p2) == ("written", "raw", "written", "full")
        assert d1 == d2 and a1 == a2
        out = pydicom.dcmread(pydicom.filebase.DicomBytesIO(d1))
        assert 0x7FE11001 not in out and b"MUSTERMANN" not in d1
        assert (0xFFFCFFFC in out) == (recipe.name == "keep-padding")   # removed by X, or kept on request
        paths = {r["path"] for r in a1}
        assert "(7FE1,1001)" in paths or any("7FE1" in p for p in paths)


def _keeping_padding():
    r = load_recipe("basic")
    r.name = "keep-padding"
    r.attributes["DataSetTrailingPadding"] = "keep"
    return r


def test_run_fast_and_full_give_the_same_tree(synth_set, test_key, tmp_path):
    src, truth = synth_set
    recipe = recipe_covering_burned_in("pseudonymize", src, truth)
    a = run(recipe, src, tmp_path / "fast", key=test_key, workers=1)
    b = run(recipe, src, tmp_path / "full", key=test_key, workers=1, fast=False)
    assert [(f.status, f.output, f.digest) for f in a.files] == [(f.status, f.output, f.digest) for f in b.files]
    assert Path(a.audit_path).read_bytes() == Path(b.audit_path).read_bytes()
    assert sum(f.path in ("raw", "stream") for f in a.files) >= 8 and all(f.path == "full" for f in b.files if f.status == "written")
