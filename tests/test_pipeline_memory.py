"""Peak memory does not grow with the number of files (the faults issue, item 8: "the 100,000 run within 1.2x of the
2,000 run"). tests/benchmarks/bench_memory.py prints the same for 2,000, 20,000 and 100,000 tiny files."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pseudicom.synth import synthesize_ct_series

sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
from bench_memory import make_corpus, make_multiframe, peak_kb, peak_one  # noqa: E402

CHILD = r"""
import sys
from pseudicom.cli import main
rc = main(sys.argv[1:])
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print("VmHWM", hwm)
sys.exit(rc)
"""


def test_peak_memory_is_flat_in_the_number_of_files(tmp_path):
    synthesize_ct_series(tmp_path / "big", 400, rows=128, columns=128, seed=7)
    (tmp_path / "small").mkdir()
    for p in sorted((tmp_path / "big").iterdir())[:40]:
        (tmp_path / "small" / p.name).hardlink_to(p)
    peaks = {}
    for name in ("small", "big"):
        out = subprocess.run([sys.executable, "-c", CHILD, "deid", str(tmp_path / name), str(tmp_path / f"out-{name}"),
                              "--recipe", "basic", "--workers", "1", "--quiet"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        peaks[name] = int(out.stdout.split("VmHWM")[-1].split()[0])   # kB, this process only (a new mm after exec)
    print("peak kB", peaks)
    assert peaks["big"] < 1.3 * peaks["small"], peaks


# What the main process keeps per file while it plans and places: the listing of io.walk_files, the tasks and the names
# taken (layout.Taken). Measured alone, in a fresh process, on empty files (cheap to make by the 100,000).
STRUCTURES = r"""
import sys
from pseudicom.io import walk_files
from pseudicom.pipeline.layout import Taken
from pseudicom.pipeline.plan import chunk_tasks, plan_tasks
listing = walk_files(sys.argv[1])
tasks, mtimes, sizes = plan_tasks(listing, {}, True)
del listing
taken = Taken(str)
for chunk in chunk_tasks(tasks, sizes, 32, 2):
    for i, path, rel, expect, series in chunk:
        assert taken.claim([f"PAT/2.25.1/2.25.2/{rel}", f"uid:2.25.{i}"], i) is None
print("VmHWM", [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1], len(tasks))
"""


def _empty_files(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        os.close(os.open(folder / f"{i:06d}.dcm", os.O_CREAT | os.O_WRONLY, 0o644))
    return folder


def test_listing_tasks_and_names_taken_are_flat(tmp_path):
    """Issue 16 item 8, the per-file state: 2,000 vs 100,000 files. Before, the listing (a Path per file, about 370 bytes),
    the task tuples (about 270) and the names taken (two 16-byte digests in a dict, about 190) grew by about 0.8 KB a
    file: 80 MB more at 100,000 files. Now the listing and the names taken are on disk and the tasks are made as they are
    chunked; what stays is 16 bytes a file (each input's size and mtime)."""
    peaks = {}
    for n in (2_000, 100_000):
        out = subprocess.run([sys.executable, "-c", STRUCTURES, str(_empty_files(tmp_path / f"in-{n}", n))],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        kb, count = out.stdout.split("VmHWM")[-1].split()
        assert int(count) == n
        peaks[n] = int(kb)
    per_file = (peaks[100_000] - peaks[2_000]) * 1024 / 98_000
    print(f"peak kB {peaks}; {per_file:.0f} bytes per file")
    assert per_file < 64, (peaks, per_file)


@pytest.mark.parametrize("workers", [2, 1])
def test_a_run_is_flat_in_the_number_of_files(tmp_path, workers):
    """Issue 16 item 8, a whole run (`pseudicom deid`): 2,000 vs 30,000 tiny files. Before, the main process
    grew by about 0.7 KB a file (bench_memory.py, 2 workers: 2,000 / 100,000 files peaked at 60 / 130 MB, 2.2x); with
    1 worker, the process that de-identifies grew by 0.55 KB a file more, in the value caches of rawheader and
    _dcmvalues (capped at 100,000 and 200,000 entries: 63 / 114 MB). Now the main process keeps 48 bytes a file (sizes,
    mtimes, report offsets) beyond a few bounded buffers (up to 4,096 paths and names, 1 MB of each temporary
    database), the caches hold 4,096 entries, and the peak is within 1.1x (the issue's target: 1.2x at
    100,000 files, which bench_memory.py measures)."""
    peaks, big = {}, 30_000
    for n in (2_000, big):
        make_corpus(tmp_path / f"in-{n}", n)
        peaks[n] = peak_kb(tmp_path / f"in-{n}", tmp_path / f"out-{n}", workers)[0]
    per_file = (peaks[big] - peaks[2_000]) * 1024 / (big - 2_000)
    print(f"{workers} workers: peak kB {peaks}; {per_file:.0f} bytes per file")
    # The target is 1.2x (at 100,000 files). On an idle machine this run is at 1.03x (85-112 bytes a file);
    # with the machine busy, results wait longer in the main process and the peak rose to 1.106x (225 bytes a file)
    # once, so the bounds are the 1.2x and 400 bytes a file: the code before this change gives 700-930.
    assert per_file < 400 and peaks[big] < 1.2 * peaks[2_000], (peaks, per_file)


def test_a_resumed_run_is_flat_in_the_number_of_files(tmp_path):
    """Issue 16 item 8, resumed runs: the earlier journal's records were all held in a dict (about 4 KB a file:
    2,000 / 20,000 files resumed at 62 / 133 MB, 2.1x). Past 4,096 they now live in a temporary database."""
    from pseudicom.keys import Key
    key_file = Key.generate().save(tmp_path / "k.key")
    peaks = {}
    for n in (2_000, 20_000):
        make_corpus(tmp_path / f"in-{n}", n)
        peak_kb(tmp_path / f"in-{n}", tmp_path / f"out-{n}", 2, key_file)                       # the run that is resumed
        peaks[n] = peak_kb(tmp_path / f"in-{n}", tmp_path / f"out-{n}", 2, key_file, fresh=False)[0]   # its resume
    per_file = (peaks[20_000] - peaks[2_000]) * 1024 / 18_000
    assert per_file < 500 and peaks[20_000] < 1.2 * peaks[2_000], (peaks, per_file)


def test_a_large_multiframe_file_is_never_held_whole_when_its_pixels_stay(tmp_path):
    """Issue 16 item 8, the large file: `--no-fast-path` read a 300 MB multi-frame file whole and peaked at 1.25 GB,
    against 56 MB on the default path. Now pydicom writes every element on that path too, but pixel data that the recipe
    leaves alone are streamed from the file in chunks (a window on it), never loaded; the outputs are the same bytes.
    Boxes that a pixel rule fills are filled a frame at a time as the file is written (was 4.2x the file in memory)."""
    path = make_multiframe(tmp_path / "in" / "mf.dcm", 120)
    size_kb = path.stat().st_size / 1024
    from pseudicom.recipe import load_recipe
    recipe = load_recipe("basic")
    recipe.name = "basic-with-a-box"
    recipe.pixels["rules"] = [{"name": "corner", "boxes": [[0, 0, 64, 16]], "when": {"Modality": "MR"}}]
    rule = recipe.save(tmp_path / "box.yaml")
    from pseudicom.keys import Key
    key = Key.generate()
    key.save(tmp_path / "k.key")
    keyed = ["--recipe", "basic", "--key-file", str(tmp_path / "k.key")]   # the same key: the same bytes by both paths
    peaks = {"default": peak_one(tmp_path / "in", tmp_path / "default", *keyed),
             "full": peak_one(tmp_path / "in", tmp_path / "full", *keyed, "--no-fast-path"),
             "rule": peak_one(tmp_path / "in", tmp_path / "rule", "--recipe", str(rule))}
    print(f"file {size_kb / 1024:.0f} MB; peak MB", {k: round(v / 1024) for k, v in peaks.items()})
    outs = {k: next((tmp_path / k).rglob("*.dcm")).read_bytes() for k in ("default", "full")}
    assert outs["default"] == outs["full"]
    assert peaks["full"] < peaks["default"] + 16 * 1024 and peaks["full"] < size_kb / 2, peaks
    assert peaks["rule"] < peaks["default"] + 16 * 1024, peaks
