"""Issue-15 benchmark: `verify` of 200 de-identified CT slices of 512x512 (prints seconds).

    python tests/benchmarks/bench_verify.py [--n 200] [--rounds 3] [--work DIR]

Writes the series once (synth), de-identifies it once with `pseudonymize` and a fixed key, then times
`verify(src, out, "pseudonymize", key=...)` `--rounds` times and prints each time and the best.
The reference before issue 15 was 3.3 s; the issue asks to stay within 2x of it. Measured on the
same (shared, 2-core) machine, best of 3: before 2.77 s wall / about 3.2 s CPU, after about 3.5-3.8 s CPU.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/pseudicom-bench-verify")
    args = ap.parse_args()
    from pseudicom.keys import Key
    from pseudicom.pipeline import run
    from pseudicom.synth import synthesize_ct_series
    from pseudicom.verify import verify
    key = Key(b"b" * 32)
    work = Path(args.work)
    src, out = work / f"ct{args.n}", work / f"out{args.n}"
    if not (work / f".done-{args.n}").exists():
        shutil.rmtree(work, ignore_errors=True)
        synthesize_ct_series(src, args.n)
        run("pseudonymize", src, out, key=key)
        (work / f".done-{args.n}").write_text("ok")
    for p in list(src.rglob("*")) + list(out.rglob("*")):
        if p.is_file():
            p.read_bytes()  # warm the page cache
    times, cpus = [], []
    for r in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        report = verify(src, out, "pseudonymize", key=key)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        print(f"round {r + 1}: {times[-1]:.2f} s ({cpus[-1]:.2f} s CPU), {report.verdict}, {report.counts['outputs']} outputs, "
              f"{report.counts['bytes_searched'] / 1e6:.1f} MB, {report.counts['needles']} needles", flush=True)
    print(f"verify {args.n} files of 512x512: best {min(times):.2f} s wall, {min(cpus):.2f} s CPU "
          "(on a shared machine, CPU time is the steadier number)")


if __name__ == "__main__":
    main()
