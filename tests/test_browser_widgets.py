"""The widgets in a real browser: JupyterLab 4 (started here) + Debian chromium via Playwright.

One notebook uses every widget. The test runs all cells, checks that no widget shows an error,
drags a rectangle on the RegionMarker with the mouse and checks that Python received it in image
pixel coordinates and that the recipe holds it, changes an action in the TagBrowser, clicks a
series in the StudyBrowser, and saves a screenshot of each widget under tests/artifacts/.
Needs /usr/bin/chromium (CI: `apt-get install -y chromium`); never runs `playwright install`."""
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from pseudicom.synth import synthesize

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
ZOOM = 3
DRAG_BOX = [12, 30, 70, 52]      # image pixels [x0, y0, x1, y1] dragged on the US image

CELLS = [
    # 0: setup
    """import json, pydicom
from pathlib import Path
from pseudicom.keys import Key
from pseudicom.recipe import load_recipe
from pseudicom.pipeline import run
from pseudicom.widgets.browser import StudyBrowser
from pseudicom.widgets.tags import TagBrowser
from pseudicom.widgets.image import ImageViewer
from pseudicom.widgets.marker import RegionMarker
from pseudicom.widgets.compare import Compare
SRC, STATE = Path("dicom"), Path("state.json")
recipe = load_recipe("pseudonymize")
key = Key(b"pseudicom-browser-test-key-0123456789")
us_path = next(SRC.rglob("US_native.dcm"))
us = pydicom.dcmread(us_path)
ct = pydicom.dcmread(sorted(SRC.rglob("IM0001.dcm"))[0])
def dump(*_):
    STATE.write_text(json.dumps({"boxes": marker.boxes, "rules": recipe.pixels["rules"],
                                 "attributes": recipe.attributes, "series": browser.selected_series}))""",
    "browser = StudyBrowser(SRC)\nbrowser",
    "tags = TagBrowser(ct, recipe, key)\ntags",
    "viewer = ImageViewer(us, recipe=recipe, zoom=2)\nviewer",
    f"marker = RegionMarker(us, recipe=recipe, zoom={ZOOM}, rule_name='drawn in browser')\nmarker",
    """rec2 = load_recipe("pseudonymize"); rec2.pixels["burned_in"] = "detect"
result = run(rec2, SRC, "out", key=key)
f = next(f for f in result.files if f.source.endswith("US_native.dcm"))
cmp = Compare(SRC / f.source, Path("out") / f.output, zoom=1)
cmp""",
    """for w, name in ((marker, "boxes"), (tags, "rows"), (browser, "selected_series")): w.observe(dump, names=[name])
dump()
print("ready")""",
]
WIDGET_CELLS = {"study_browser": 1, "tag_browser": 2, "image_viewer": 3, "region_marker": 4, "compare": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, logs: Path, theme: str = "JupyterLab Light"):
    "A JupyterLab server on a free port serving `root`, its log in `logs`; stopped at the end."
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    set_theme(root, theme)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "PYTHONUNBUFFERED": "1"}
    log = open(logs / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                               f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"]
                              + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
                              cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(logs / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"base": base, "token": token, "root": root}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def set_theme(root: Path, theme: str) -> None:
    "Choose JupyterLab's theme for the next page load ('JupyterLab Light' or 'JupyterLab Dark')."
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    "A JupyterLab server on a free port with a notebook using every widget; stopped at the end."
    started = time.perf_counter()
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    root = tmp_path_factory.mktemp("lab")
    synthesize(root / "dicom", seed=0, small=True, truth_path=root / "truth.json")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "widgets.ipynb")
    logs = tmp_path_factory.mktemp("lab-logs")
    try:
        with jupyterlab(root, logs) as server:
            yield server
    finally:
        seconds = time.perf_counter() - started
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "duration.txt").write_text(f"{seconds:.1f}\n")
        shutil.copy(logs / "server.log", ARTIFACTS / "server.log")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        line = f"\nbrowser widget suite: {seconds:.1f} s (JupyterLab + chromium, budget 180 s)"
        if capture:
            with capture.global_and_fixture_disabled():
                print(line)
        else:
            print(line)
        assert seconds < 180, line


def _wait_state(path: Path, check, timeout: float = 30.0) -> dict:
    "Poll the state file the notebook writes until `check(state)` holds."
    deadline, state = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            state = json.loads(path.read_text())
            if check(state):
                return state
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the notebook state did not reach the expected value in {timeout} s; last: {state}")


LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def _open_and_run_all(page, lab, notebook: str) -> None:
    "Open `notebook` in JupyterLab and start Run All Cells (retrying while the kernel connects)."
    page.goto(f"{lab['base']}/lab/tree/{notebook}?reset&token={lab['token']}", timeout=60_000)   # reset: only this notebook open
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.wait_for_timeout(2_000)   # let the kernel connection settle
    first_prompt = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputPrompt").first
    for attempt in range(6):   # the kernel may still be connecting: Run All is then a no-op; try again
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()   # "Select Kernel": accept the default python3
        page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function("p => /\\[\\d+\\]/.test(p.textContent)", arg=first_prompt.element_handle(), timeout=15_000)
            return
        except Exception:
            assert attempt < 5, "Run All Cells never started the kernel"


def _assert_no_errors(page) -> None:
    "No widget shows an error and no cell printed a traceback or anything on stderr."
    text = page.inner_text(".jp-NotebookPanel:visible .jp-Notebook")
    assert "Error displaying widget" not in text, text[:2000]
    assert "Traceback" not in text, text[:4000]
    stderr = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert stderr.count() == 0, stderr.all_inner_texts()


def test_widgets_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    state_file = lab["root"] / "state.json"
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            _open_and_run_all(page, lab, "widgets.ipynb")
            _wait_state(state_file, lambda s: "boxes" in s, timeout=90)
            cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
            page.wait_for_selector("canvas.prm-canvas", timeout=30_000)
            page.wait_for_selector(".pseudicom-study-browser tr[data-level='series']", timeout=30_000)
            page.wait_for_selector(".pseudicom-tag-browser tbody tr", timeout=30_000)

            _assert_no_errors(page)
            assert "ready" in cells.nth(len(CELLS) - 1).inner_text()

            # every widget drew something
            for sel in ("[class*='widget-image'] >> nth=0", "canvas.prm-canvas"):
                box = page.locator(sel).bounding_box()
                assert box and box["width"] > 50 and box["height"] > 50, sel
            imgs = page.locator(".jp-NotebookPanel:visible img")
            page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea img')].every(i => i.complete && i.naturalWidth > 0)")
            assert imgs.count() >= 2   # compare before/after (the viewer draws on a canvas since it became a stack viewer)
            page.wait_for_selector(".piv-canvas[data-shown='0,0']", timeout=30_000)   # the viewer drew its first frame
            canvas = page.locator("canvas.prm-canvas")
            page.wait_for_function("""() => { const c = document.querySelector('canvas.prm-canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 0; i < d.length; i += 4) if (d[i] || d[i + 1] || d[i + 2]) return true; return false; }""")

            # drag a rectangle on the RegionMarker: one update reaches Python, in image pixels
            width_css = canvas.evaluate("c => c.clientWidth")
            image_w = canvas.evaluate("c => c.width")
            assert width_css == image_w * ZOOM, (width_css, image_w)
            x0, y0, x1, y1 = DRAG_BOX
            # hover(position=...) is relative to the canvas padding box and scrolls it into view first,
            # so the points stay right even while the notebook scrolls
            def at(x, y):
                return {"x": x * ZOOM, "y": y * ZOOM}
            # (pixel centres: the browser may round mouse positions to whole CSS pixels)
            canvas.hover(position=at(x0 + 0.5, y0 + 0.5))
            page.mouse.down()
            for t in (0.3, 0.6, 1.0):
                canvas.hover(position=at(x0 + 0.5 + (x1 - x0 - 1) * t, y0 + 0.5 + (y1 - y0 - 1) * t))
            page.mouse.up()
            state = _wait_state(state_file, lambda s: s["boxes"] != [])
            assert state["boxes"] == [DRAG_BOX], state["boxes"]
            rule = next(r for r in state["rules"] if r["name"] == "drawn in browser")
            assert rule["boxes"] == [DRAG_BOX]
            assert rule["when"]["Rows"] == 144 and rule["when"]["Columns"] == 192 and rule["when"]["Modality"] == "US"

            # change an action in the TagBrowser: the recipe changes
            row = page.locator(".pseudicom-tag-browser tr[data-path='StationName']")
            row.locator("select").select_option("keep")
            state = _wait_state(state_file, lambda s: s["attributes"].get("StationName") == "keep")
            page.wait_for_function("""() => { const r = document.querySelector(".pseudicom-tag-browser tr[data-path='StationName']");
                return r && r.children[4].textContent !== '' && r.querySelector('select').value === 'keep'; }""")

            # click a series in the StudyBrowser: the selection reaches Python
            page.locator(".pseudicom-study-browser tr[data-level='series']", has_text="MR").first.click()
            state = _wait_state(state_file, lambda s: s["series"] != "")

            # screenshots of each widget (after the interactions)
            ARTIFACTS.mkdir(exist_ok=True)
            for name, index in WIDGET_CELLS.items():
                out = cells.nth(index).locator(".jp-OutputArea")
                out.scroll_into_view_if_needed()
                out.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            page.screenshot(path=str(ARTIFACTS / "notebook.png"))
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            (ARTIFACTS / "console.log").write_text("\n".join(console) + "\n") if ARTIFACTS.exists() else None
            browser.close()
    ours = [m for m in console if re.search(r"region_marker|tag_browser|study_browser|anywidget|pseudicom", m, re.I)
            and m.startswith(("error", "pageerror"))]
    assert not ours, ours


def test_widgets_tour_runs_in_jupyterlab(lab):
    "tutorials/07_widgets_tour.ipynb runs top to bottom in JupyterLab with every widget rendered."
    from playwright.sync_api import sync_playwright
    shutil.copy(Path(__file__).parent.parent / "tutorials" / "07_widgets_tour.ipynb", lab["root"] / "tour.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _open_and_run_all(page, lab, "tour.ipynb")
            page.wait_for_function("""() => { const ps = [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
                return ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent)); }""", timeout=120_000)
            assert page.locator(".jp-NotebookPanel").count() == 1
            panel = page.locator(".jp-NotebookPanel:visible")
            for sel in (".pseudicom-study-browser tr", ".pseudicom-tag-browser tbody tr", "canvas.prm-canvas", ".widget-image"):
                panel.locator(sel).first.wait_for(state="attached", timeout=30_000)
            _assert_no_errors(page)
            ARTIFACTS.mkdir(exist_ok=True)
            panel.locator("canvas.prm-canvas").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "tour.png"))
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "tour_failure.png"))
            raise
        finally:
            browser.close()
