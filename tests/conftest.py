"Shared fixtures: one synthetic study set per test session, never modified by tests."

import pytest

from pseudicom.keys import Key
from pseudicom.synth import synthesize


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory):
    "A synthetic PHI-laden study set: (dicom folder, truth dict)."
    root = tmp_path_factory.mktemp("synth")
    truth = synthesize(root / "dicom", seed=0, small=True, truth_path=root / "truth.json")
    return root / "dicom", truth


@pytest.fixture(scope="session")
def test_key():
    return Key(b"pseudicom-test-key-0123456789abcdef")


def recipe_covering_burned_in(name, src, truth):
    "A built-in recipe plus pixel rules that cover every planted burned-in box (grouped by device geometry)."
    import pydicom
    from pseudicom.recipe import load_recipe
    recipe = load_recipe(name)
    recipe.name = f"{name}-with-rules"   # a changed built-in gets a name of its own
    groups = {}
    for item in truth["burned_in"]:
        ds = pydicom.dcmread(src / item["file"], stop_before_pixels=True)
        key = (str(ds.SOPClassUID), int(ds.Rows), int(ds.Columns))
        groups.setdefault(key, set()).add(tuple(item["box"]))
    recipe.pixels["rules"] = [{"name": f"synth {i}", "boxes": [list(b) for b in sorted(boxes)],
                               "when": {"SOPClassUID": sop, "Rows": rows, "Columns": cols}}
                              for i, ((sop, rows, cols), boxes) in enumerate(sorted(groups.items()))]
    return recipe
