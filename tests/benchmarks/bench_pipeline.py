"""Benchmark the batch pipeline against `cp -r` and peer tools on the same corpus (a script that prints numbers).

    python tests/benchmarks/bench_pipeline.py [--ct 2000] [--small 200] [--cines 5] [--workers 2] [--repeat 3] [--work DIR]

Corpus: `--ct` synthetic CT slices (512x512 uint16, one series, `pseudicom.synth.synthesize_ct_series`) and
`--cines` uncompressed ultrasound cines (60 frames 480x640 RGB, a text banner burned in). Every tool reads
the same files from the page cache (the corpus was just written or read) and writes a new folder.

Tools: `cp -r` (the floor), GDCM `gdcmanon --dumb` (its certificate-free mode: the tags we list are
emptied/removed; PS3.15 mode needs an X.509 certificate), dicognito, deid (pydicom-deid) and
dicom-anonymizer in their default modes, and `pseudicom deid --recipe basic`. A tool that is not installed
is skipped with a note. Measured per run: wall time, files/s, MB/s (input bytes), peak resident memory
of the whole process tree (sampled every 20 ms) and of its largest process (wait4), and cores used
(CPU time / wall time). Then pseudicom's peak memory on `--small` vs `--ct` files (should be flat).

`cp -r`, pseudicom and gdcmanon run `--repeat` times, interleaved, and their medians are compared: on a
shared virtual machine the same `cp -r` takes anywhere between 0.6 and 3 s, so one run of each proves little.
Each round also runs the three on the `--small` subset, which splits each tool's time into a start-up cost
and a rate after start-up: rate = (ct - small) / (t_ct - t_small), start-up = t_small - small / rate. A Python
tool pays its imports (pydicom, numpy: about 0.3 s) once per run; a C++ tool does not. On 2000 files that is
a large part of the whole, on an archive it is nothing. The order of the three turns from round to round.

Before each run the previous output is deleted and the disk is synced (`sync`), so no run pays for writing
back what the one before it wrote. pseudicom's modules are compiled to bytecode first (`compileall`), as
`pip install` does: in a source checkout with PYTHONDONTWRITEBYTECODE set, every run would otherwise compile
them again (about 50 ms), which no installed copy does.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

GDCM_TAGS = ["--empty", "10,10", "--empty", "10,20", "--remove", "10,30", "--remove", "10,1000", "--remove", "10,1001",
             "--remove", "10,1040", "--remove", "10,2154", "--remove", "8,90", "--remove", "8,80", "--remove", "8,81",
             "--remove", "8,1010", "--remove", "8,1040", "--remove", "8,1070", "--remove", "8,1030", "--remove", "20,4000",
             "--empty", "8,50", "--empty", "8,20", "--empty", "8,30", "--remove", "18,1000", "--remove", "10,4000"]

DEID_SCRIPT = r"""
import sys, os
from deid.dicom import get_files, replace_identifiers
files = list(get_files(sys.argv[1]))
os.makedirs(sys.argv[2], exist_ok=True)
replace_identifiers(dicom_files=files, save=True, output_folder=sys.argv[2], overwrite=True)
"""

US_RECIPE_RULE = """
pixels:
  burned_in: quarantine
  lossy: uncompressed
  rules:
  - name: us banner
    boxes: [[0, 0, 640, 48]]
    when: {Modality: US}
"""


def build_ct(work: Path, n_ct: int) -> Path:
    "Write (once) the synthetic CT series of `n_ct` slices; other benchmarks use it too."
    from pseudicom.synth import synthesize_ct_series
    ct = work / f"ct{n_ct}"
    if not (work / f".done-{ct.name}").exists():
        shutil.rmtree(ct, ignore_errors=True)
        t = time.perf_counter()
        synthesize_ct_series(ct / "series", n_ct)
        (work / f".done-{ct.name}").write_text("ok")
        print(f"# wrote {n_ct} CT slices in {time.perf_counter() - t:.0f} s", flush=True)
    return ct


def build_corpus(work: Path, n_ct: int, n_small: int, n_cines: int) -> dict[str, Path]:
    "Write (once) the CT series, a small CT subset, the cines, and the mixed corpus (hard links)."
    ct = build_ct(work, n_ct)
    small = work / f"ct{n_small}"
    if not (work / f".done-{small.name}").exists():
        shutil.rmtree(small, ignore_errors=True)
        (small / "series").mkdir(parents=True)
        for p in sorted((ct / "series").iterdir())[:n_small]:
            os.link(p, small / "series" / p.name)
        (work / f".done-{small.name}").write_text("ok")
    us = work / f"us{n_cines}"
    if not (work / f".done-{us.name}").exists():
        shutil.rmtree(us, ignore_errors=True)
        us.mkdir(parents=True)
        for i in range(n_cines):
            write_cine(us / f"US{i + 1:03d}.dcm", i)
        (work / f".done-{us.name}").write_text("ok")
    mixed = work / f"mixed{n_ct}_{n_cines}"
    if not (work / f".done-{mixed.name}").exists():
        shutil.rmtree(mixed, ignore_errors=True)
        (mixed / "ct").mkdir(parents=True)
        (mixed / "us").mkdir()
        for p in sorted((ct / "series").iterdir()):
            os.link(p, mixed / "ct" / p.name)
        for p in sorted(us.glob("*.dcm")):
            os.link(p, mixed / "us" / p.name)
        (work / f".done-{mixed.name}").write_text("ok")
    return {"ct": ct, "small": small, "us": us, "mixed": mixed}


def write_cine(path: Path, seed: int, frames: int = 60, rows: int = 480, cols: int = 640) -> None:
    "An uncompressed ultrasound cine with fake PHI in the header and a text banner in every frame."
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    from pseudicom.synth import synth_uid
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    arr = np.empty((frames, rows, cols, 3), np.uint8)
    for f in range(frames):
        g = 60 + 80 * np.sin((xx + 4 * f) / 50.0) * np.cos(yy / 70.0) + rng.normal(0, 6, (rows, cols)) + 60
        arr[f] = np.clip(g, 0, 255)[..., None].astype(np.uint8)
        arr[f, 10:38, 20:400] = 255
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = synth_uid(seed, f"bench/us/{seed}")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC-US-{seed:04d}"
    ds.Modality = "US"
    ds.InstitutionName = "Klinikum Musterstadt"
    ds.ReferringPhysicianName = "Dr^Beispiel"
    ds.PatientName = "MUSTERMANN^MAX"
    ds.PatientID = "PID-0042"
    ds.PatientBirthDate = "19380819"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = synth_uid(seed, "bench/us/study")
    ds.SeriesInstanceUID = synth_uid(seed, f"bench/us/series/{seed}")
    ds.StudyID = "US1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = seed + 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.NumberOfFrames = frames
    ds.FrameTime = "33.3"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = arr.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


def measure(cmd: list[str], label: str, corpus: Path, out: Path, mkdir: bool = False) -> dict:
    "Run `cmd` once under /usr/bin/time; wall time, peak tree RSS (sampled), largest-process RSS, CPU time, output count."
    import psutil
    shutil.rmtree(out, ignore_errors=True)
    if mkdir:
        out.mkdir(parents=True)
    os.sync()   # the last run's writes (and this deletion) go to disk now, not during this run
    cmd = ["/usr/bin/time", "-f", "@@ %M %U %S"] + cmd
    files = [p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith(".")]
    mb = sum(p.stat().st_size for p in files) / 1e6
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                peak[0] = max(peak[0], total)
            except psutil.Error:
                pass
            time.sleep(0.02)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    err = proc.stderr.read().decode(errors="replace")
    proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    stats = [ln for ln in err.splitlines() if ln.startswith("@@ ")]
    maxrss_kb, user, sys_ = (float(v) for v in stats[-1].split()[1:]) if stats else (0, 0, 0)
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("@@ ") and not ln.startswith("Command exited"))
    n_out = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")) if out.exists() else 0
    row = {"tool": label, "corpus": corpus.name, "inputs": len(files), "outputs": n_out, "s": wall,
           "files/s": len(files) / wall, "MB/s": mb / wall, "tree MB": peak[0] / 1e6, "max proc MB": maxrss_kb / 1e3,
           "cores": (user + sys_) / wall, "rc": proc.returncode}
    if proc.returncode not in (0, 1):
        row["note"] = err.strip().splitlines()[-1][:100] if err.strip() else ""
    print(fmt(row), flush=True)
    return row


HEADER = f"{'tool':34s} {'corpus':12s} {'in':>5s} {'out':>5s} {'s':>7s} {'files/s':>8s} {'MB/s':>7s} {'tree MB':>8s} {'proc MB':>8s} {'cores':>5s} rc"


def fmt(r: dict) -> str:
    return (f"{r['tool']:34s} {r['corpus']:12s} {r['inputs']:5d} {r['outputs']:5d} {r['s']:7.2f} {r['files/s']:8.1f} {r['MB/s']:7.1f} "
            f"{r['tree MB']:8.0f} {r['max proc MB']:8.0f} {r['cores']:5.2f} {r['rc']}" + (f"  {r['note']}" if r.get("note") else ""))


def have(module_or_cmd: str, kind: str) -> bool:
    if kind == "cmd":
        return shutil.which(module_or_cmd) is not None
    import importlib.util
    return importlib.util.find_spec(module_or_cmd) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ct", type=int, default=2000)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--cines", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="/tmp/pseudicom-bench")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of cp -r, pseudicom and gdcmanon (medians are compared)")
    ap.add_argument("--peer-corpus", choices=["ct", "small"], default="ct", help="corpus for the Python peers (they are slow)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    package = importlib.util.find_spec("pseudicom").submodule_search_locations[0]
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)   # bytecode, as an installed copy has
    c = build_corpus(work, args.ct, args.small, args.cines)
    recipe = work / "basic-us.yaml"
    basic = subprocess.run([sys.executable, "-m", "pseudicom.cli", "recipe", "show", "basic"], capture_output=True, text=True, check=True).stdout
    recipe.write_text(_with_rule(basic))
    for p in c["mixed"].rglob("*.dcm"):
        p.read_bytes()   # warm the page cache (every tool reads from it)
    print(f"# {os.cpu_count()} cores; CPU pressure: {Path('/proc/pressure/cpu').read_text().splitlines()[0] if Path('/proc/pressure/cpu').exists() else 'n/a'}")
    print(HEADER)
    rows = []
    pseud = [sys.executable, "-m", "pseudicom.cli", "deid"]
    out = work / "out"
    ours_label = f"pseudicom basic, {args.workers} workers"
    rounds: list[dict] = []
    tools = {"cp": (lambda src: ["cp", "-r", str(src), str(out)], "cp -r"),
             "ours": (lambda src: pseud + [str(src), str(out), "--recipe", "basic", "--quiet", "--workers", str(args.workers)], ours_label)}
    if have("gdcmanon", "cmd"):
        tools["gdcm"] = (lambda src: ["gdcmanon", "--dumb", "--continue", "-r", "-i", str(src), "-o", str(out)] + GDCM_TAGS,
                         "gdcmanon --dumb (20 tags)")
    for r in range(args.repeat):   # the floor, ours and the C++ peer, interleaved: this machine's disk is noisy
        print(f"# round {r + 1} of {args.repeat}", flush=True)
        got = {}
        order = list(tools.items())
        order = order[r % len(order):] + order[:r % len(order)]   # no tool always runs first
        for suffix, corpus in (("", c["ct"]), (" small", c["small"])):
            for k, (cmd, label) in order:
                got[k + suffix] = measure(cmd(corpus), label, corpus, out)
        rounds.append(got)
    rows.append(measure(pseud + [str(c["ct"]), str(out), "--recipe", "basic", "--quiet", "--workers", "1"],
                        "pseudicom basic, 1 process", c["ct"], out))
    rows.append(measure(pseud + [str(c["ct"]), str(out), "--recipe", "basic", "--quiet", "--workers", str(args.workers), "--no-fast-path"],
                        f"pseudicom basic, {args.workers} w, no fast path", c["ct"], out))
    if not args.skip_peers:
        peer_corpus = c[args.peer_corpus]
        if not have("gdcmanon", "cmd"):
            print("# gdcmanon not installed (apt-get install libgdcm-tools): skipped")
        if have("dicognito", "mod"):
            rows.append(measure([sys.executable, "-m", "dicognito", "--quiet", "-o", str(out), str(peer_corpus)], "dicognito", peer_corpus, out))
        else:
            print("# dicognito not installed (pip install dicognito): skipped")
        if have("deid", "mod"):
            rows.append(measure([sys.executable, "-c", DEID_SCRIPT, str(peer_corpus), str(out)], "deid (pydicom-deid)", peer_corpus, out))
        else:
            print("# deid not installed (pip install deid): skipped")
        if have("dicomanonymizer", "mod"):
            rows.append(measure(["dicom-anonymizer", str(peer_corpus / "series"), str(out)], "dicom-anonymizer", peer_corpus, out, mkdir=True))
        else:
            print("# dicom-anonymizer not installed (pip install dicom-anonymizer): skipped")
    rows.append(measure(["cp", "-r", str(c["mixed"]), str(out)], "cp -r", c["mixed"], out))
    rows.append(measure(pseud + [str(c["mixed"]), str(out), "--recipe", str(recipe), "--quiet", "--workers", str(args.workers)],
                        f"pseudicom basic+US rule, {args.workers} w", c["mixed"], out))
    small = max((g["ours small"] for g in rounds), key=lambda r: r["tree MB"])
    shutil.rmtree(out, ignore_errors=True)
    med = {k: float(np.median([g[k]["files/s"] for g in rounds])) for k in rounds[0] if not k.endswith(" small")}
    print(f"\n# targets (CT corpus, header-only, basic): medians of {args.repeat} interleaved rounds, and each round's ratio")
    def ratio(k: str) -> str:
        per = ", ".join(f"{g['ours']['files/s'] / g[k]['files/s']:.2f}" for g in rounds)
        return f"{med['ours'] / med[k]:.2f} (rounds: {per})"
    print(f"files/s, median: pseudicom {med['ours']:.0f}, cp -r {med['cp']:.0f}" + (f", gdcmanon {med['gdcm']:.0f}" if "gdcm" in med else ""))
    print(f"pseudicom / cp -r throughput: {ratio('cp')} (target >= 0.5)")
    if "gdcm" in med:
        print(f"pseudicom / gdcmanon --dumb: {ratio('gdcm')} (target >= 1)")
    after = {k: _after_start_up(rounds, k, args.ct, args.small) for k in med}
    print(f"after start-up (from the {args.small}- and {args.ct}-file runs): "
          + ", ".join(f"{name} {after[k][0]:.0f} files/s (start-up {after[k][1]:.2f} s)" if after[k] else f"{name} n/a (too few files)"
                      for k, name in (("ours", "pseudicom"), ("cp", "cp -r"), ("gdcm", "gdcmanon")) if k in after))
    if "gdcm" in after:
        print("pseudicom / gdcmanon after start-up: "
              + (f"{after['ours'][0] / after['gdcm'][0]:.2f}" if after["ours"] and after["gdcm"] else "n/a (too few files)"))
    py = [r for r in rows if r["tool"] in ("dicognito", "deid (pydicom-deid)", "dicom-anonymizer")]
    if py:
        best = max(py, key=lambda r: r["files/s"])
        print(f"pseudicom / fastest Python peer ({best['tool']}, {best['corpus']}, {best['files/s']:.0f} files/s): "
              f"{med['ours'] / best['files/s']:.1f} (target >= 5)")
    ours_big = max((g["ours"] for g in rounds), key=lambda r: r["tree MB"])
    print(f"peak tree memory {args.small} vs {args.ct} files: {small['tree MB']:.0f} MB vs {ours_big['tree MB']:.0f} MB "
          f"(ratio {ours_big['tree MB'] / small['tree MB']:.2f}; largest process {small['max proc MB']:.0f} vs {ours_big['max proc MB']:.0f} MB)")


def _after_start_up(rounds: list[dict], k: str, n_big: int, n_small: int) -> tuple[float, float] | None:
    "(files/s after start-up, start-up seconds) of tool `k`, from the medians of its big and small runs (None: no difference to measure)."
    big = float(np.median([g[k]["s"] for g in rounds]))
    little = float(np.median([g[k + " small"]["s"] for g in rounds]))
    if big - little < 0.01:
        return None
    rate = (n_big - n_small) / (big - little)
    return rate, little - n_small / rate


def _with_rule(basic_yaml: str) -> str:
    "The basic recipe with a pixel rule for the cines' banner (so they are redacted, not quarantined)."
    import yaml
    data = yaml.safe_load(basic_yaml)
    data["name"] = "basic-us"
    data["pixels"] = yaml.safe_load(US_RECIPE_RULE)["pixels"]
    return yaml.safe_dump(data, sort_keys=False)


if __name__ == "__main__":
    main()
