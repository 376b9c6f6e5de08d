"""The benchmark scripts run end to end (at a tiny scale: their numbers mean nothing here, only that every
tool ran and every line the closing notes quote is printed)."""
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent / "benchmarks"


def test_bench_pipeline_runs_every_tool(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "bench_pipeline.py"), "--ct", "24", "--small", "8", "--cines", "1",
                           "--repeat", "1", "--peer-corpus", "small", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for tool in ("cp -r", "pseudicom basic, 2 workers", "gdcmanon --dumb", "pseudicom basic, 1 process", "no fast path",
                 "dicognito", "deid (pydicom-deid)", "dicom-anonymizer", "pseudicom basic+US rule"):
        assert tool in out, f"no row for {tool}:\n{out}"
    assert "skipped" not in out, out   # every tool is installed in CI
    for line in ("pseudicom / cp -r throughput", "pseudicom / gdcmanon --dumb", "after start-up", "pseudicom / gdcmanon after start-up",
                 "fastest Python peer", "peak tree memory"):
        assert line in out, f"no '{line}' line:\n{out}"
    rows = [ln for ln in out.splitlines() if ln.startswith(("pseudicom basic", "gdcmanon", "dicognito", "deid", "dicom-anonymizer"))]
    for row in rows:   # tool, corpus, in, out, ..., rc: every tool wrote every input (ours redacts the US cines by the rule)
        cols = row[34:].split()
        assert cols[1] == cols[2] and cols[-1] == "0", row


def test_bench_detect_prints_both_modes_on_both_corpora(tmp_path):
    "Needs the real corpus (python tools/realdata.py); a tiny part of it and 12 CT slices are enough to run every line."
    proc = subprocess.run([sys.executable, str(BENCH / "bench_detect.py"), "--ct", "12", "--real-limit", "12", "--repeat", "1",
                           "--workers", "1", "--work", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for corpus in ("real12", "ct12"):
        for mode in ("header-only", "detect"):
            assert any(ln.startswith(corpus) and ln.split()[1] == mode for ln in out.splitlines()), f"no {corpus} {mode} row:\n{out}"
    for line in ("real files (real12, 12 files): header-only", "CT slices (ct12, 12 files): header-only", "detect / header-only",
                 "detect on CT slices: 12 written, 0 quarantined, 0 failed, 0 written with detected boxes"):
        assert line in out, f"no '{line}' line:\n{out}"


def test_bench_jpeg_blocks_prints_block_path_and_decode():
    proc = subprocess.run([sys.executable, str(BENCH / "bench_jpeg_blocks.py"), "--frames", "3", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in ("redact, block path", "decode only, pydicom pixel_array", "decode only, libjpeg-turbo", "method blocks",
                 "transfer syntax JPEG Baseline"):
        assert line in proc.stdout, f"no '{line}' line:\n{proc.stdout}"
