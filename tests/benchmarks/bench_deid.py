"""Issue-2 benchmark: header de-identification of 1000 synthetic CT slices with the `basic` recipe (prints numbers).

    python tests/benchmarks/bench_deid.py [--n 1000] [--workers N] [--work DIR]

Prints files/s and MB/s of `pseudicom deid --recipe basic` (all cores unless --workers) and of `cp -r`
on the same corpus, and their ratio. The corpus is written once and read from the page cache by both.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--work", default="/tmp/pseudicom-bench-deid")
    args = ap.parse_args()
    from pseudicom.synth import synthesize_ct_series
    work = Path(args.work)
    corpus = work / f"ct{args.n}"
    if not (work / f".done-{corpus.name}").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        synthesize_ct_series(corpus / "series", args.n)
        (work / f".done-{corpus.name}").write_text("ok")
    files = sorted((corpus / "series").iterdir())
    mb = sum(p.stat().st_size for p in files) / 1e6
    for p in files:
        p.read_bytes()   # warm the page cache
    out = work / "out"
    rows = []
    for label, cmd in [("cp -r", ["cp", "-r", str(corpus), str(out)]),
                       ("pseudicom deid --recipe basic", [sys.executable, "-m", "pseudicom.cli", "deid", str(corpus), str(out),
                                                          "--recipe", "basic", "--quiet"] + (["--workers", str(args.workers)] if args.workers else []))]:
        shutil.rmtree(out, ignore_errors=True)
        for side in ("out.report.json", "out.audit.jsonl", "out.journal.jsonl"):
            (work / side).unlink(missing_ok=True)
        s = timed(cmd)
        rows.append((label, s))
        print(f"{label:32s} {len(files)} files {s:7.2f} s {len(files) / s:8.1f} files/s {mb / s:7.1f} MB/s", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    print(f"ratio pseudicom / cp -r (throughput): {rows[0][1] / rows[1][1]:.2f}")


if __name__ == "__main__":
    main()
