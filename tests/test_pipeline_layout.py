"""Output layouts: mirror keeps the input tree but never a folder or file name that carries the file's own
identifiers (those files are quarantined with a reason); flat names files by the new SOPInstanceUID."""
import re

import pydicom

from conftest import recipe_covering_burned_in
from pseudicom.pipeline import run


def norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def test_mirror_quarantines_identifying_paths_and_keeps_the_rest(synth_set, test_key, tmp_path):
    src, truth = synth_set
    r = run(recipe_covering_burned_in("pseudonymize", src, truth), src, tmp_path / "out", key=test_key, workers=1, layout="mirror")
    assert r.ok
    for f in r.files:
        top = f.source.split("/")[0]
        if top in ("MUSTERMANN^MAX_19380819", "PID-0001") or top.startswith("MUSTERFRAU"):
            assert f.status == "quarantined" and "layout 'mirror'" in f.reason and f.output is None, f
        if f.status == "written":
            assert f.output == f.source and (tmp_path / "out" / f.output).is_file()
    assert any(f.status == "written" for f in r.files), "numbered folders (studies/S0004/...) should be mirrored"
    planted = {norm(p["value"]) for p in truth["planted"] if len(norm(p["value"])) >= 4 and p["category"] in ("name", "id", "date")}
    for p in (tmp_path / "out").rglob("*"):
        rel = norm(p.relative_to(tmp_path / "out").as_posix())
        assert not [v for v in planted if v in rel], p


def test_flat_layout_names_files_by_new_uid(synth_set, test_key, tmp_path):
    src, truth = synth_set
    r = run(recipe_covering_burned_in("pseudonymize", src, truth), src, tmp_path / "out", key=test_key, workers=1, layout="flat")
    written = [f for f in r.files if f.status == "written"]
    assert written and all("/" not in f.output for f in written)
    for f in written:
        assert f.output == str(pydicom.dcmread(tmp_path / "out" / f.output, stop_before_pixels=True).SOPInstanceUID) + ".dcm"
