"""Widget logic without a browser: set traits as the views do, assert traits, the recipe and the pipeline output.

The recipe a notebook builds with the widgets must give the same output as the headless CLI run
with the saved YAML file."""
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pseudicom.cli import main as cli_main
from pseudicom.pipeline import run
from pseudicom.errors import RecipeError
from pseudicom.recipe import load_recipe
from pseudicom.widgets.browser import StudyBrowser
from pseudicom.widgets.compare import Compare
from pseudicom.widgets.image import ImageViewer
from pseudicom.widgets.marker import RegionMarker
from pseudicom.widgets.tags import TagBrowser, preview_actions, show_value


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.dcm"))}


def _series_row(browser, modality):
    return next(r for r in browser.rows if r["level"] == "series" and r["modality"] == modality)


def test_core_never_imports_widgets():
    code = ("import sys, pseudicom.cli, pseudicom.pipeline, pseudicom.inventory, pseudicom.deid, pseudicom.pixels;"
            "bad = [m for m in ('ipywidgets', 'anywidget', 'pseudicom.widgets') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_browse_mark_save_run_equals_cli(synth_set, test_key, tmp_path):
    "browse -> select US -> drag boxes -> edit a tag -> save YAML: in-memory run == run from YAML == CLI."
    src, truth = synth_set
    recipe = load_recipe("pseudonymize")
    browser = StudyBrowser(src)
    tags, viewer = TagBrowser(copy.deepcopy(pydicom.dcmread(browser.inventory.files()[0])), recipe, test_key), ImageViewer(recipe=recipe)
    us_row = _series_row(browser, "US")
    marker = RegionMarker(browser.inventory.files(us_row["series_uid"])[0], recipe=recipe, scope="device")
    browser.link(tags, viewer, marker)
    browser.selected_series = us_row["series_uid"]           # a click on the US series row
    assert marker.dataset.SeriesInstanceUID == us_row["series_uid"]
    assert viewer.dataset.Modality == "US" and tags.dataset.Modality == "US"
    # the planted banner boxes of this file, as one drag each would send them
    file = browser.selected_instance
    planted = [b["box"] for b in truth["burned_in"] if b["file"] == file]
    assert planted
    for box in planted:
        marker.boxes = marker.boxes + [box]
    rule = next(r for r in recipe.pixels["rules"] if r["name"] == marker.rule_name)
    assert rule["boxes"] == planted
    assert rule["when"]["Rows"] == int(marker.dataset.Rows)
    # the viewer outlines the new rule; the tag browser edits the recipe
    viewer.refresh()
    assert [o["box"] for o in viewer.outlines if o["kind"] == "rule"] == planted
    tags._edit = {"index": next(r["index"] for r in tags.rows if r["keyword"] == "StationName"), "action": "keep", "n": 1}
    assert recipe.attributes["StationName"] == "keep"
    # the other burned-in series (SC, another geometry) still needs a rule: accept detect's suggestions
    sc_row = _series_row(browser, "OT")
    browser.selected_series = sc_row["series_uid"]
    marker.accept_suggestions()
    assert len(recipe.pixels["rules"]) == 2
    with pytest.raises(RecipeError, match="name of a built-in recipe"):   # a changed built-in needs a name of its own
        recipe.save(tmp_path / "study.yaml")
    recipe.name = "study"
    yaml_path = recipe.save(tmp_path / "study.yaml")

    memory = run(recipe, src, tmp_path / "memory", key=test_key)
    from_yaml = run(str(yaml_path), src, tmp_path / "yaml", key=test_key)
    key_file = tmp_path / "project.key"
    key_file.write_text(test_key._secret.hex())
    key_file.chmod(0o600)
    code = cli_main(["deid", str(src), str(tmp_path / "cli"), "--recipe", str(yaml_path), "--key-file", str(key_file)])
    assert memory.recipe_hash == from_yaml.recipe_hash
    assert memory.counts == from_yaml.counts and memory.counts["failed"] == 0
    assert _tree_bytes(tmp_path / "memory") == _tree_bytes(tmp_path / "yaml") == _tree_bytes(tmp_path / "cli")
    assert code == 0
    # the marked boxes are black in every frame of every US output, the station name kept
    for f in memory.files:
        if f.status != "written":
            continue
        out = pydicom.dcmread(tmp_path / "memory" / f.output)
        if out.Modality == "US":
            arr = out.pixel_array
            for x0, y0, x1, y1 in planted:
                assert arr[:, y0:y1, x0:x1].max() == 0, (f.source, (x0, y0, x1, y1))
            assert out.BurnedInAnnotation == "NO"
    written = {f.source: f for f in memory.files}
    assert all(written[p].status == "written" for p in truth["files"] if "/US_cine/" in p or "/SC/" in p)


def test_tag_preview_matches_pipeline_output(synth_set, test_key, tmp_path):
    "What the tag browser says a file will become is what the pipeline writes."
    src, truth = synth_set
    ct_file = next(f for f in truth["files"] if "CT_chest" in f)
    result = run("pseudonymize", src / ct_file, tmp_path / "out", key=test_key)
    out = pydicom.dcmread(tmp_path / "out" / result.files[0].output)
    rows = preview_actions(pydicom.dcmread(src / ct_file), load_recipe("pseudonymize"), test_key)
    checked = 0
    for r in rows:
        if r["depth"] or r["tag"].startswith("(0002"):
            continue
        tag = int(r["tag"][1:5] + r["tag"][6:10], 16)
        if r["after"] is None:
            assert tag not in out, r["path"]
        else:
            assert show_value(out[tag]) == r["after"], (r["path"], r["after"], show_value(out[tag]))
            checked += 1
    assert checked > 20


def test_compare_shows_the_changes(synth_set, test_key, tmp_path):
    src, truth = synth_set
    recipe = load_recipe("pseudonymize")
    recipe.pixels["burned_in"] = "detect"
    result = run(recipe, src, tmp_path / "out", key=test_key)
    f = next(f for f in result.files if f.source.endswith("US_native.dcm"))
    cmp = Compare(src / f.source, tmp_path / "out" / f.output)
    changed = {r["keyword"] for r in cmp.rows if r["change"] != "same"}
    assert {"PatientName", "PatientID", "StudyInstanceUID"} <= changed
    assert "PatientName" in cmp._table.value
    before_png, after_png = (i.value for i in cmp._images)
    assert before_png and after_png and before_png != after_png      # the banner is gone after


def test_region_marker_rejects_bad_boxes_and_previews(synth_set):
    src, truth = synth_set
    us_file = next(f for f in truth["files"] if f.endswith("US_native.dcm"))
    recipe = load_recipe("basic")
    marker = RegionMarker(src / us_file, recipe=recipe, scope="file")
    marker.boxes = [[50, 60, 10, 20], [-5, -5, 3, 3], [0, 0, 0, 0]]   # reversed, partly outside, empty
    assert marker.boxes == [[10, 20, 50, 60], [0, 0, 3, 3]]
    from pseudicom.pixels import INSTANCE_DIGEST, instance_digest
    assert recipe.pixels["rules"][0]["when"] == {INSTANCE_DIGEST: instance_digest(marker.dataset.SOPInstanceUID)}
    assert str(marker.dataset.SOPInstanceUID) not in recipe.to_yaml()
    marker.preview = True
    from PIL import Image
    import io
    img = np.asarray(Image.open(io.BytesIO(marker._png)))
    assert img[20:60, 10:50].max() == 0 and img.max() > 0
    marker.boxes = []
    assert recipe.pixels["rules"] == []


def test_every_widget_has_a_static_fallback(synth_set, test_key, tmp_path):
    "Where widgets do not render (GitHub, HTML export), the text/html fallback in the same output shows something."
    from IPython.core.interactiveshell import InteractiveShell
    src, truth = synth_set
    us_file = src / next(f for f in truth["files"] if f.endswith("US_native.dcm"))
    us = pydicom.dcmread(us_file)
    recipe = load_recipe("pseudonymize")
    recipe.pixels["burned_in"] = "detect"
    result = run(recipe, us_file, tmp_path / "out", key=test_key)
    widgets = [StudyBrowser(src), TagBrowser(us, recipe, test_key), ImageViewer(us), RegionMarker(us, recipe=recipe),
               Compare(us_file, tmp_path / "out" / result.files[0].output)]
    formatter = InteractiveShell.instance().display_formatter
    for w in widgets:
        data, _ = formatter.format(w)
        assert "application/vnd.jupyter.widget-view+json" in data, type(w).__name__
        assert len(data.get("text/html", "")) > 200 and "<script" not in data["text/html"], type(w).__name__
