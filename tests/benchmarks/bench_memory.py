"""Peak memory of `pseudicom deid` against the number of input files (the faults issue, item 8).

Tiny files (a 16x16 CT slice, about 2 KB each) so that only what the run keeps per file counts. Each
run is a fresh process; its peak resident set (VmHWM) is printed with the per-file cost above the
smallest run. Target: the largest run within 1.2 times the smallest.

With --multiframe MB, one multi-frame MR of about MB megabytes instead, run in one process by the
default path, by --no-fast-path (pydicom writes every element; pixels the recipe leaves alone are
streamed from the file, never loaded), with a pixel rule that redacts a box in every frame (filled
a frame at a time as the file is written) and with --burned-in detect (the screen decodes 16 frames
from the file). Printed: each run's peak next to the file's size.

    python tests/benchmarks/bench_memory.py [--counts 2000 20000 100000] [--workers 2] [--work DIR]
    python tests/benchmarks/bench_memory.py --multiframe 300
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import sys
from pseudicom.cli import main
rc = main(sys.argv[1:])
print("VmHWM", [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
sys.exit(rc)
"""


def make_corpus(folder: Path, count: int) -> None:
    "`count` tiny CT slices: one written by synth, the rest its bytes with their own UIDs (a second for 100,000)."
    from pydicom import dcmread
    from pseudicom.synth import synthesize_ct_series
    if folder.is_dir() and len(list(folder.iterdir())) == count:
        return
    shutil.rmtree(folder, ignore_errors=True)
    seed = folder.with_name(folder.name + "-seed")
    synthesize_ct_series(seed, 1, rows=16, columns=16, seed=3)
    template = dcmread(next(seed.iterdir()))
    uid = f"2.25.{10**20}"   # every UID below is as long: the bytes change in place
    template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = uid
    template.save_as(seed / "template.dcm", enforce_file_format=True)
    data = (seed / "template.dcm").read_bytes()
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:06d}.dcm").write_bytes(data.replace(uid.encode(), f"2.25.{10**20 + i}".encode()))
    shutil.rmtree(seed)


def make_multiframe(path: Path, megabytes: int) -> Path:
    "A multi-frame MR (Enhanced MR Image Storage, ORIGINAL\\PRIMARY, 512x512 16-bit frames) of about `megabytes` MB."
    import numpy as np
    from pydicom import dcmread
    from pseudicom.synth import synthesize_ct_series
    if path.is_file() and abs(path.stat().st_size - megabytes * 2**20) < 2**20:
        return path
    seed = path.with_name(path.name + "-seed")
    synthesize_ct_series(seed, 1, rows=512, columns=512, seed=5)
    ds = dcmread(next(seed.iterdir()))
    frames = max(1, megabytes * 2**20 // (512 * 512 * 2))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    frame = ds.pixel_array.astype(np.uint16)
    ds.Modality, ds.ImageType, ds.NumberOfFrames = "MR", ["ORIGINAL", "PRIMARY", "M", "NONE"], frames
    ds.PixelData = np.tile(frame[None], (frames, 1, 1)).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    shutil.rmtree(seed)
    return path


def peak_one(src: Path, dst: Path, *options: str) -> int:
    "Peak memory (kB) of `pseudicom deid` of `src` in one process (the work runs in it), with `options`."
    shutil.rmtree(dst, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", CHILD, "deid", str(src), str(dst), "--workers", "1", "--quiet", *options],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return int(out.stdout.split("VmHWM")[-1].split()[0])


def multiframe(work: Path, megabytes: int) -> None:
    "Print the peak memory of one large multi-frame file by the default path, --no-fast-path and a pixel rule."
    src = work / "multiframe"
    path = make_multiframe(src / "mf.dcm", megabytes)
    from pseudicom.recipe import load_recipe
    recipe = load_recipe("basic")
    recipe.name = "basic-with-a-box"
    recipe.pixels["rules"] = [{"name": "corner", "boxes": [[0, 0, 64, 16]], "when": {"Modality": "MR"}}]
    rule = recipe.save(work / "box.yaml")
    size = path.stat().st_size / 2**20
    print(f"one multi-frame MR of {size:.0f} MB, one process:")
    for label, options in (("default path (pixel bytes copied)", ["--recipe", "basic"]),
                           ("--no-fast-path (pydicom writes all, pixels streamed)", ["--recipe", "basic", "--no-fast-path"]),
                           ("a pixel rule (boxes filled frame by frame)", ["--recipe", str(rule)]),
                           ("--burned-in detect (sampled frames decoded from the file)", ["--recipe", "basic", "--burned-in", "detect"])):
        kb = peak_one(src, work / "multiframe-out", *options)
        print(f"  {label:<58} peak {kb / 1024:7.1f} MB ({kb / 1024 / size:.2f} x the file)", flush=True)


def peak_kb(src: Path, dst: Path, workers: int, key_file: Path | None = None, fresh: bool = True) -> tuple[int, float]:
    "Peak memory of one run (`fresh`: with no output of an earlier run; else a resume of it, which needs a key)."
    if fresh:
        shutil.rmtree(dst, ignore_errors=True)
        for suffix in (".report.json", ".audit.jsonl", ".journal.jsonl", ".journal.audit", ".record.json", ".record.html", ".lock"):
            Path(str(dst) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    key = ["--key-file", str(key_file)] if key_file else []
    out = subprocess.run([sys.executable, "-c", CHILD, "deid", str(src), str(dst), "--recipe", "basic", "--workers", str(workers),
                          *key, "--quiet"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return int(out.stdout.split("VmHWM")[-1].split()[0]), time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[2000, 20000, 100000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pseudicom-bench-memory")
    ap.add_argument("--resume", action="store_true", help="measure a resumed run: each run is made twice with a key, the second measured")
    ap.add_argument("--multiframe", type=int, metavar="MB", help="measure one multi-frame file of this size instead")
    args = ap.parse_args()
    if args.multiframe:
        multiframe(args.work, args.multiframe)
        if os.environ.get("PSEUDICOM_BENCH_KEEP") is None:
            shutil.rmtree(args.work, ignore_errors=True)
        return
    key_file = None
    if args.resume:
        from pseudicom.keys import Key
        key_file = args.work / "bench.key"
        args.work.mkdir(parents=True, exist_ok=True)
        if not key_file.exists():
            Key.generate().save(key_file)
    rows = []
    for n in args.counts:
        make_corpus(args.work / f"in-{n}", n)
        if args.resume:
            peak_kb(args.work / f"in-{n}", args.work / f"out-{n}", args.workers, key_file)   # the run that is resumed
        kb, seconds = peak_kb(args.work / f"in-{n}", args.work / f"out-{n}", args.workers, key_file, fresh=not args.resume)
        rows.append((n, kb, seconds))
        print(f"{n:>7} files: peak {kb / 1024:7.1f} MB in the main process, {seconds:6.1f} s", flush=True)
    base_n, base_kb, _ = rows[0]
    for n, kb, _ in rows[1:]:
        print(f"{n:>7} files: {kb / base_kb:.2f} x the {base_n}-file run; "
              f"{(kb - base_kb) * 1024 / max(n - base_n, 1):.0f} bytes more per file (target: within 1.2 x)")
    if os.environ.get("PSEUDICOM_BENCH_KEEP") is None:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
