"""A run in a Jupyter kernel shows a progress bar by default (a real kernel, through nbclient); a run in a
plain process does not."""
import shutil

import nbformat
from nbclient import NotebookClient
from pydicom.data import get_testdata_file


def test_notebook_run_shows_a_progress_bar(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), src / name)
    code = (f"from pseudicom.pipeline import run\n"
            f"r = run('basic', {str(src)!r}, {str(tmp_path / 'out')!r}, workers=1)\n"
            f"print(r.counts)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    kinds = [o.get("data", {}).keys() for o in outputs if o.output_type == "display_data"]
    assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds), outputs   # tqdm's notebook bar
    # MR_small.dcm is DERIVED\\SECONDARY: held back as a possible screen (issue 14), so 1 written and 1 quarantined
    assert any("'written': 1, 'excluded': 0, 'quarantined': 1, 'failed': 0" in o.get("text", "") for o in outputs if o.output_type == "stream"), outputs


def test_plain_run_shows_no_bar(tmp_path, capsys):
    from pseudicom.pipeline import run
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "ct.dcm")
    run("basic", src, tmp_path / "out", workers=1)
    assert "de-identifying" not in capsys.readouterr().err
