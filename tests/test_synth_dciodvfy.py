"""Every file that `pseudicom.synth` writes passes dciodvfy (dicom3tools) without an error.

The de-identifier's acceptance test is "dciodvfy reports no error on an output that it does not report on
its input", so the synthetic inputs must be clean. Warnings are allowed (the orphan private element, a
site-local coding scheme, attributes outside the IOD are planted on purpose).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from pseudicom.synth import synthesize, synthesize_ct_series

DCIODVFY = shutil.which("dciodvfy") or "/usr/bin/dciodvfy"


def dciodvfy_errors(path: Path) -> list[str]:
    "The 'Error' lines dciodvfy prints for one file."
    res = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error") or " - Error - " in line]


@pytest.fixture(scope="module", params=[True, False], ids=["small", "realistic"])
def study_set(request, tmp_path_factory) -> tuple[Path, dict]:
    dst = tmp_path_factory.mktemp("small" if request.param else "realistic")
    return dst, synthesize(dst, seed=7, small=request.param)


def test_every_synth_file_passes_dciodvfy(study_set):
    dst, truth = study_set
    assert len(truth["files"]) >= 14
    errors = {f: dciodvfy_errors(dst / f) for f in truth["files"]}
    assert not any(errors.values()), {f: e for f, e in errors.items() if e}


def test_every_kind_of_file_is_checked(study_set):
    "The set covers CT, MR, SR, US multi-frame and SC in every transfer syntax we promise."
    dst, truth = study_set
    kinds = set()
    for f in truth["files"]:
        ds = pydicom.dcmread(dst / f, stop_before_pixels=True)
        kinds.add((ds.SOPClassUID.name, ds.file_meta.TransferSyntaxUID.name))
    sops = {s for s, _ in kinds}
    assert {"CT Image Storage", "MR Image Storage", "Basic Text SR Storage",
            "Ultrasound Multi-frame Image Storage", "Secondary Capture Image Storage"} <= sops
    assert {("Ultrasound Multi-frame Image Storage", "RLE Lossless"),
            ("Ultrasound Multi-frame Image Storage", "JPEG Baseline (Process 1)"),
            ("Secondary Capture Image Storage", "JPEG-LS Lossless Image Compression"),
            ("Secondary Capture Image Storage", "JPEG 2000 Image Compression (Lossless Only)")} <= kinds


def test_benchmark_series_passes_dciodvfy(tmp_path):
    paths = synthesize_ct_series(tmp_path, 3, rows=128, columns=128, seed=2)
    for p in paths:
        assert dciodvfy_errors(p) == [], p


def test_the_check_can_fail(tmp_path):
    "dciodvfy_errors does see an error: a CT slice without its mandatory Image Type."
    p = synthesize_ct_series(tmp_path, 1, rows=32, columns=32)[0]
    ds = pydicom.dcmread(p)
    del ds.ImageType
    ds.save_as(tmp_path / "broken.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "broken.dcm")
