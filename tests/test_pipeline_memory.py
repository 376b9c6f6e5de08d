"""Peak memory does not grow with the number of files (loosely: 40 vs 400 files within 30 %).
The benchmark (tests/benchmarks/bench_pipeline.py) measures the same on 200 vs 2000 full-size slices."""
import subprocess
import sys

from pseudicom.synth import synthesize_ct_series

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
    for p in sorted((tmp_path / "big").iterdir())[:40]: (tmp_path / "small" / p.name).hardlink_to(p)
    peaks = {}
    for name in ("small", "big"):
        out = subprocess.run([sys.executable, "-c", CHILD, "deid", str(tmp_path / name), str(tmp_path / f"out-{name}"),
                              "--recipe", "basic", "--workers", "1", "--quiet"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        peaks[name] = int(out.stdout.split("VmHWM")[-1].split()[0])   # kB, this process only (a new mm after exec)
    print("peak kB", peaks)
    assert peaks["big"] < 1.3 * peaks["small"], peaks
