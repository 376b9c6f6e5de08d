"""Kill -9 a running `pseudicom deid` at several moments, run the same command again, and get exactly the
outputs of an uninterrupted run; never a half-written file in the output tree."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pseudicom.synth import synthesize_ct_series

N = 240


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".pseudicom-staging" not in p.parts}


@pytest.fixture(scope="module")
def setup(synth_set, tmp_path_factory):
    import shutil
    src, _ = synth_set
    root = tmp_path_factory.mktemp("resume")
    synthesize_ct_series(root / "in" / "ct", N, rows=64, columns=64, seed=5)
    for p in sorted(src.rglob("*.dcm")):
        if "/CT_chest/" in p.as_posix() or "/MR_head/" in p.as_posix() or "/SR_" in p.as_posix():
            (root / "in" / "synth" / p.relative_to(src).parent).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, root / "in" / "synth" / p.relative_to(src))
    key = root / "k.key"
    key.write_text(b"pseudicom-test-key-0123456789abcdef".hex())
    key.chmod(0o600)
    clean = root / "clean"
    assert subprocess.run(command(root / "in", clean, key), capture_output=True).returncode == 0
    return root, key, tree(clean), (root / "clean.audit.jsonl").read_bytes()


def command(src, dst, key):
    return [sys.executable, "-m", "pseudicom.cli", "deid", str(src), str(dst), "--recipe", "pseudonymize",
            "--key-file", str(key), "--workers", "2", "--quiet"]


def outputs(dst: Path) -> int:
    return sum(1 for p in dst.rglob("*.dcm") if ".pseudicom-staging" not in p.parts) if dst.exists() else 0


@pytest.mark.parametrize("moment", ["staging", 0.3, 0.75])
def test_kill_and_resume_gives_the_uninterrupted_result(setup, tmp_path, moment):
    root, key, expected, expected_audit = setup
    dst = tmp_path / "out"
    proc = subprocess.Popen(command(root / "in", dst, key), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        staged = (dst / ".pseudicom-staging").exists() and any((dst / ".pseudicom-staging").rglob("*.dcm"))
        if (moment == "staging" and staged) or (moment != "staging" and outputs(dst) >= moment * N):
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before it could be killed; make the corpus larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)
    import psutil   # the pool's workers die with the main process: none writes on after the kill
    alive = [q.pid for q in psutil.process_iter(["cmdline"]) if str(dst) in " ".join(q.info["cmdline"] or [])]
    assert not alive, alive
    partial = tree(dst)
    for rel, digest in partial.items():   # whatever is in place is complete and final
        if rel.endswith(".dcm"):
            assert expected.get(rel) == digest, rel
    assert not [p for p in dst.rglob("*.tmp") if ".pseudicom-staging" not in p.parts]
    done = subprocess.run(command(root / "in", dst, key), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tree(dst) == expected
    assert not (dst / ".pseudicom-staging").exists()
    assert (tmp_path / "out.audit.jsonl").read_bytes() == expected_audit
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["ok"] and report["counts"]["written"] == len([k for k in expected if k.endswith(".dcm")])
    if moment != "staging":
        assert report["resumed"] > 0   # journaled outputs were verified and kept, not redone


def test_changed_or_damaged_outputs_are_redone(setup, tmp_path):
    root, key, expected, _ = setup
    dst = tmp_path / "out"
    assert subprocess.run(command(root / "in", dst, key), capture_output=True).returncode == 0
    victim = sorted(p for p in dst.rglob("*.dcm"))[5]
    victim.write_bytes(victim.read_bytes()[:100])      # damaged after the run
    (sorted(p for p in dst.rglob("*.dcm"))[9]).unlink() # lost
    assert subprocess.run(command(root / "in", dst, key), capture_output=True).returncode == 0
    assert tree(dst) == expected
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["resumed"] == report["counts"]["written"] - 2
