"Shared fixtures: one synthetic study set per test session, never modified by tests; where the corpus of real files is."

import os
from pathlib import Path

import pytest

from pseudicom.keys import Key
from pseudicom.synth import synthesize


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory):
    "A synthetic PHI-laden study set: (dicom folder, truth dict)."
    root = tmp_path_factory.mktemp("synth")
    truth = synthesize(root / "dicom", seed=0, small=True, truth_path=root / "truth.json")
    return root / "dicom", truth


def realdata_root() -> Path:
    """The corpus of real files that public packages ship, built by `python tools/realdata.py` (.ci/run does):
    $PSEUDICOM_REALDATA, else ~/.cache/pseudicom/realdata. Fails the test (never skips it) when it is not there."""
    root = Path(os.environ.get("PSEUDICOM_REALDATA") or Path.home() / ".cache" / "pseudicom" / "realdata")
    if not (root / "manifest.json").is_file():
        pytest.fail(f"the corpus of real files is missing at {root}: run `python tools/realdata.py` (.ci/run does) "
                    "or set PSEUDICOM_REALDATA to where it is")
    return root


def real_path(rel: str) -> Path:
    "A file or folder of the real corpus, by its path in it; fails the test when the corpus or it is missing."
    path = realdata_root() / rel
    if not path.exists():
        pytest.fail(f"{path} is missing from the corpus of real files: run `python tools/realdata.py` again")
    return path


@pytest.fixture(scope="session")
def realdata() -> Path:
    "The corpus of real files (`realdata_root`)."
    return realdata_root()


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
