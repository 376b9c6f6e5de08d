"""Burned-in annotations end to end (issue 3): `--burned-in detect` on synth data writes every file,
quarantines none, leaves no header leak, and every planted text box is constant fill in every frame
while lossless pixels outside the redacted boxes are unchanged bit for bit."""
import json

import numpy as np
import pydicom

from pseudicom.cli import main
from pseudicom.pipeline import run
from pseudicom.recipe import load_recipe
from pseudicom.verify import verify


def test_detect_mode_cleans_every_burned_in_file(synth_set, tmp_path):
    src, truth = synth_set
    assert main(["keygen", str(tmp_path / "k.key")]) == 0
    code = main(["deid", str(src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(tmp_path / "k.key"),
                 "--burned-in", "detect", "--quiet"])
    assert code == 0
    report = json.loads((tmp_path / "out.report.json").read_text())
    by_source = {f["source"]: f for f in report["files"]}
    assert all(f["status"] == "written" for f in report["files"]), [f for f in report["files"] if f["status"] != "written"]
    boxes_by_file = {}
    for item in truth["burned_in"]:
        boxes_by_file.setdefault(item["file"], []).append(item["box"])
    assert len(boxes_by_file) >= 6
    for rel, boxes in boxes_by_file.items():
        f = by_source[rel]
        assert f["pixel_boxes"], rel
        before = pydicom.dcmread(src / rel)
        after = pydicom.dcmread(tmp_path / "out" / f["output"])
        a, b = before.pixel_array, after.pixel_array
        if int(before.get("NumberOfFrames", 1)) == 1:
            a, b = a[None], b[None]
        for x0, y0, x1, y1 in boxes:
            region = b[:, y0:y1, x0:x1]
            assert (region == region.reshape(-1, *region.shape[3:])[0]).all(), f"{rel}: box {x0, y0, x1, y1} not constant"
        lossless = "1.2.840.10008.1.2.4.50" not in str(before.file_meta.TransferSyntaxUID)
        if lossless:
            redacted = np.zeros(a.shape[1:3], bool)
            for x0, y0, x1, y1 in (p["box"] for p in f["pixel_boxes"]):
                redacted[y0:y1, x0:x1] = True
            assert (a[:, ~redacted] == b[:, ~redacted]).all(), f"{rel}: pixels outside the boxes changed"
        assert after.BurnedInAnnotation == "NO"
    recipe = load_recipe("pseudonymize")
    recipe.pixels["burned_in"] = "detect"
    from pseudicom.keys import Key
    check = verify(src, tmp_path / "out", recipe=recipe, key=Key.from_file(tmp_path / "k.key"), ocr=True)
    assert check.ok, check.summary()


def test_uncovered_ultrasound_is_quarantined(synth_set, tmp_path):
    src, truth = synth_set
    result = run("basic", src, tmp_path / "out")
    us = [f for f in result.files if "US_" in f.source]
    assert us and all(f.status == "quarantined" and "burned-in" in f.reason for f in us)
    assert not any("US" == pydicom.dcmread(p, stop_before_pixels=True).Modality for p in (tmp_path / "out").rglob("*.dcm"))


def test_a_matching_rule_that_covers_nothing_does_not_clear_the_file(synth_set, tmp_path):
    "keep_only: ultrasound_regions on a file without SequenceOfUltrasoundRegions blanks nothing: still quarantined."
    src, truth = synth_set
    rel = next(f for f in truth["files"] if f.endswith("US_native.dcm"))
    ds = pydicom.dcmread(src / rel)
    del ds.SequenceOfUltrasoundRegions
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "us.dcm", enforce_file_format=True)
    recipe = load_recipe("basic")
    recipe.pixels["rules"] = [{"name": "US regions only", "keep_only": "ultrasound_regions", "when": {"Modality": "US"}}]
    result = run(recipe, tmp_path / "in", tmp_path / "out")
    assert result.files[0].status == "quarantined" and "burned-in" in result.files[0].reason
    assert not list((tmp_path / "out").rglob("*.dcm"))
