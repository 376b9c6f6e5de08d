"""The run record and the demo report as a data steward opens them, in Debian's chromium (Playwright).

- at a 1024 px window nothing scrolls sideways (document.scrollingElement.scrollWidth <= 1024);
- a summary is on top, in the first screen: the verifier's verdict in words (never a Python dict),
  what was run, the counts;
- the files held back come before the details, quarantined first, then failed, each group with
  what to do;
- pictures are labelled by series (modality, number, description), never by UIDs or paths;
- text tables are left-aligned;
- printed (print media, A4's printable width of 180 mm = 680 px) nothing is wider than the paper
  and every collapsed section is open; `page.pdf()` writes a PDF.
Needs /usr/bin/chromium; never runs `playwright install`."""
import io
import re
import shutil
from pathlib import Path

import pytest

from pseudicom.demo import demo
from pseudicom.keys import Key
from pseudicom.pipeline import run
from pseudicom.recipe import load_recipe
from pseudicom.record import RunRecord
from pseudicom.synth import synthesize
from pseudicom.verify import verify

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
PRINT_WIDTH = 680          # A4 (210 mm) less 15 mm margins each side, at 96 px per inch
UID_OR_PATH = re.compile(r"\d+(\.\d+){3,}|/")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    "The run record of a run that held files back (6 quarantined, 1 failed), the demo's report, and a record the verifier rejects."
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    tmp = tmp_path_factory.mktemp("reports")
    synthesize(tmp / "in", seed=0, small=True, truth_path=tmp / "truth.json")
    (tmp / "in" / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x00garbage")   # fails: truncated
    key = Key(b"reports browser test key, 32 bytes")
    result = run("pseudonymize", tmp / "in", tmp / "out", key=key, progress=False)   # no pixel rules: burned-in files wait
    assert result.counts["quarantined"] == 6 and result.counts["failed"] == 1, result.summary()
    report = verify(tmp / "in", tmp / "out", recipe="pseudonymize", key=key, run_report=result)
    _, record_html = RunRecord(result, report).write()
    leaky = load_recipe("pseudonymize")                   # a recipe that keeps the patient's name: the verifier must object
    leaky.name, leaky.attributes["PatientName"], leaky.pixels["burned_in"] = "leaky", "keep", "detect"
    leaky_result = run(leaky, tmp / "in", tmp / "leaky", key=key, progress=False)
    leaky_report = verify(tmp / "in", tmp / "leaky", recipe=leaky, key=key, run_report=leaky_result)
    assert leaky_report.verdict == "NOT CLEAN", leaky_report.verdict
    _, leaky_html = RunRecord(leaky_result, leaky_report, recipe=leaky).write()
    assert demo(tmp / "demo", out=io.StringIO()) == 0
    yield {"record": record_html, "demo": tmp / "demo" / "report.html", "not clean": leaky_html}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


def _open(browser, path, width=1024, height=800):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(Path(path).as_uri())
    return page


@pytest.mark.parametrize("which", ["record", "demo", "not clean"])
def test_fits_1024_px_with_the_summary_on_top(pages, browser, which):
    page = _open(browser, pages[which])
    width = page.evaluate("document.scrollingElement.scrollWidth")
    print(f"\n{which}: scrollWidth {width} px at a 1024 px window")
    assert width <= 1024, f"{which}: {width} px wide, scrolls sideways at 1024 px"
    h2 = page.locator("h2").all_inner_texts()
    assert h2[0] == "Summary", h2
    box = page.locator(".summary").bounding_box()
    assert box["y"] + box["height"] <= 800, f"the summary does not fit the first screen: {box}"
    summary = page.locator(".summary").inner_text()
    assert "Verifier:" in summary and "{" not in summary and "'" not in summary, summary
    assert re.search(r"\d+ written", summary) and re.search(r"\d+ quarantined", summary), summary
    assert re.search(r"Verifier: (clean|not clean|incomplete)\. ", summary), summary
    assert "verifier took" in summary and "output file" in summary, summary
    aligns = page.eval_on_selector_all("td, th", "els => [...new Set(els.map(e => getComputedStyle(e).textAlign))]")
    assert aligns == ["left"], aligns
    page.close()


def test_record_puts_quarantined_and_failed_first_with_what_to_do(pages, browser):
    page = _open(browser, pages["record"])
    h2 = page.locator("h2").all_inner_texts()
    assert h2.index("Files held back") == 1 and h2.index("Files held back") < h2.index("Details"), h2
    groups = page.locator("#held-back .group")
    heads = groups.locator("h3").all_inner_texts()
    assert heads == ["6 quarantined: pixels may carry burned-in text", "1 failed: the file is incomplete"], heads
    for text in groups.all_inner_texts():
        assert "What to do:" in text and "#" in text, text
    # the counts that need a decision stand out
    marked = page.locator(".summary .counts .attention").all_inner_texts()
    assert marked == ["6 quarantined", "1 failed"], marked
    page.close()


def test_demo_pictures_labelled_by_series(pages, browser):
    page = _open(browser, pages["demo"])
    captions = page.locator("figure figcaption").all_inner_texts()
    assert len(captions) == 6, captions
    for caption in captions:
        assert not UID_OR_PATH.search(caption), caption
        assert re.match(r"(US|OT|SC) · series \d+", caption), caption
    assert "2.25." not in page.content()          # no UID anywhere on the page
    page.close()


@pytest.mark.parametrize("which", ["record", "demo", "not clean"])
def test_prints_without_clipping(pages, browser, which, tmp_path):
    page = _open(browser, pages[which], width=PRINT_WIDTH)
    page.emulate_media(media="print")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PRINT_WIDTH, f"{which}: {width} px wide in print, paper is {PRINT_WIDTH}"
    wider = page.evaluate(f"""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > {PRINT_WIDTH} + 0.5).map(e => e.tagName)""")
    assert not wider, f"{which}: cut off at the paper's edge: {wider[:10]}"
    hidden = page.evaluate("""[...document.querySelectorAll('details table')]
        .filter(t => !t.checkVisibility()).length""")
    assert hidden == 0, f"{which}: {hidden} collapsed tables would not print"
    pdf = page.pdf(format="A4", margin={"top": "15mm", "bottom": "15mm", "left": "15mm", "right": "15mm"})
    pages_in_pdf = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    print(f"\n{which}: {pages_in_pdf} A4 pages, {len(pdf)} bytes")
    assert pdf.startswith(b"%PDF") and pages_in_pdf >= 1
    page.close()


def test_findings_by_series_after_the_summary(pages, browser):
    "A rejected output: the verdict says not clean and what to do; the findings name series and places, not UID paths."
    page = _open(browser, pages["not clean"])
    summary = page.locator(".summary").inner_text()
    assert "Verifier: not clean." in summary and "Do not release the output" in summary, summary
    assert "keeps identifying attributes unchanged: PatientName (0010,0010)." in summary, summary
    findings = page.locator("details", has_text="Verifier findings")
    assert findings.get_attribute("open") is not None                  # open, not folded away
    rows = findings.locator("tr").all_inner_texts()[1:]
    assert rows and all("PatientName" in r for r in rows), rows
    assert not any(UID_OR_PATH.search(r.split("\t")[0]) for r in rows), rows
    n_findings = int(re.search(r"(\d+) findings", summary).group(1))
    assert len(rows) < n_findings and sum(int(r.split("\t")[-1]) for r in rows) == n_findings, (rows, n_findings)   # grouped
    page.close()
