"""Faults and misuse, as an operator meets them: each test names the item of the faults issue it covers.

Every one of these failed on the main branch before its fix.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pydicom
import pytest

from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.recipe import builtin_recipe_text


@pytest.fixture
def small_src(synth_set, tmp_path):
    "Three synthetic CT files in a folder of their own."
    src, _ = synth_set
    files = sorted(p for p in src.rglob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT")[:3]
    dst = tmp_path / "in"
    dst.mkdir()
    for i, p in enumerate(files):
        shutil.copy(p, dst / f"{i}.dcm")
    return dst


@pytest.fixture
def key_file(tmp_path, test_key):
    path = tmp_path / "project.key"
    path.write_text(test_key._secret.hex() + "\n")
    path.chmod(0o600)
    return path


# -- item 7: a recipe that keeps identifiers --------------------------------------------------------

def test_item7_recipe_keeping_identifiers_is_warned_reported_and_named(small_src, key_file, tmp_path, capsys):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(builtin_recipe_text("pseudonymize").replace("name: pseudonymize", "name: keeps-names")
                      .replace("PatientName: pseudonym", "PatientName: keep"))
    out = tmp_path / "out"
    assert main(["deid", str(small_src), str(out), "--recipe", str(recipe), "--key-file", str(key_file), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "keeps identifying attributes" in err and "PatientName (0010,0010)" in err
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["recipe"]["keeps_identifiers"] == ["PatientName (0010,0010)"]
    record = json.loads((tmp_path / "out.record.json").read_text())
    assert "except that it keeps PatientName (0010,0010) unchanged" in json.dumps(record)


def test_item7_custom_recipe_may_not_take_a_builtin_name(small_src, key_file, tmp_path, capsys):
    recipe = tmp_path / "fake.yaml"
    recipe.write_text(builtin_recipe_text("pseudonymize").replace("PatientName: pseudonym", "PatientName: keep"))
    assert main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", str(recipe), "--key-file", str(key_file)]) == 2
    err = capsys.readouterr().err
    assert "name of a built-in recipe" in err and "name: my-pseudonymize" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_item7_builtin_recipes_keep_no_identifier(small_src, key_file, tmp_path, capsys):
    assert main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(key_file),
                 "--quiet"]) == 0
    assert "keeps identifying" not in capsys.readouterr().err
    assert json.loads((tmp_path / "out.report.json").read_text())["recipe"]["keeps_identifiers"] == []


# -- item 9: a key file that is not a key --------------------------------------------------------------

@pytest.mark.parametrize("text,why", [("ab" * 31 + "a", "63 hex digits"), ("ab" * 32 + "ab", None),
                                      ("ab" * 31 + "zz", "not hex digits"), ("my secret passphrase of 32+ bytes!!", "not hex digits")])
def test_item9_key_file_must_be_64_hex_digits(text, why, small_src, tmp_path, capsys):
    path = tmp_path / "k.key"
    path.write_text(text + "\n")
    path.chmod(0o600)
    code = main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(path), "--quiet"])
    err = capsys.readouterr().err
    if why is None:   # 66 hex digits: a longer key, as valid as a 64-digit one
        assert code == 0 and Key.from_file(path).fingerprint
    else:
        assert code == 2 and why in err and "pseudicom keygen" in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()


# -- item 2: files the run writes never land in SRC ------------------------------------------------------

@pytest.mark.parametrize("option", ["--report", "--audit", "--crosswalk"])
def test_item2_no_file_of_the_run_is_written_into_src(option, small_src, key_file, tmp_path, capsys):
    victim = small_src / "0.dcm"
    before = victim.read_bytes()
    for target in (victim, small_src / "new.json"):
        code = main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(key_file),
                     option, str(target), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "inputs are never modified" in err and "Traceback" not in err, err
    assert victim.read_bytes() == before and not (small_src / "new.json").exists()
    assert sorted(p.name for p in small_src.iterdir()) == ["0.dcm", "1.dcm", "2.dcm"]


# -- item 3: links that loop back into DST or leave SRC ---------------------------------------------------

def test_item3_link_into_dst_is_never_read_and_runs_do_not_grow(small_src, key_file, tmp_path, capsys):
    out = tmp_path / "out"
    (small_src / "outputs").symlink_to(out, target_is_directory=True)   # dangling until the first run makes `out`
    counts = []
    for _ in range(3):
        assert main(["deid", str(small_src), str(out), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
        counts.append(len(list(out.rglob("*.dcm"))))
        report = json.loads((tmp_path / "out.report.json").read_text())
        linked = [f for f in report["files"] if f["source"] == "outputs"]
        assert len(linked) == 1 and linked[0]["status"] in ("excluded", "failed")
    assert counts == [3, 3, 3]
    assert linked[0]["status"] == "excluded" and "output folder" in linked[0]["reason"]


def test_item3_directory_link_leaving_src_is_not_followed_unless_asked(small_src, key_file, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(small_src / "2.dcm", elsewhere / "x.dcm")
    (small_src / "more").symlink_to(elsewhere, target_is_directory=True)
    assert main(["deid", str(small_src), str(tmp_path / "a"), "--recipe", "basic", "--quiet"]) == 0
    files = json.loads((tmp_path / "a.report.json").read_text())["files"]
    more = next(f for f in files if f["source"] == "more")
    assert more["status"] == "excluded" and "--follow-links" in more["reason"]
    assert sum(f["status"] == "written" for f in files) == 2
    assert main(["deid", str(small_src), str(tmp_path / "b"), "--recipe", "basic", "--follow-links", "--quiet"]) == 0
    files = json.loads((tmp_path / "b.report.json").read_text())["files"]
    assert [f["source"] for f in files if f["status"] == "written"] == ["0.dcm", "1.dcm", "more/x.dcm"]


# -- item 9: a FIFO named like a DICOM file ------------------------------------------------------------------

def test_item9_fifo_gets_a_line_in_the_report(small_src, tmp_path):
    os.mkfifo(small_src / "pipe.dcm")
    assert main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", "basic", "--quiet"]) == 0
    files = json.loads((tmp_path / "out.report.json").read_text())["files"]
    pipe = next(f for f in files if f["source"] == "pipe.dcm")
    assert pipe["status"] == "excluded" and "FIFO" in pipe["reason"]


# -- item 1: Ctrl-C, SIGTERM and SIGHUP end the run at once, and a rerun resumes ----------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".pseudicom-staging" not in p.parts}


@pytest.fixture(scope="module")
def many(tmp_path_factory, test_key):
    "A few hundred small CT slices, a key file, and the tree of an uninterrupted run."
    import subprocess
    import sys
    from pseudicom.synth import synthesize_ct_series
    root = tmp_path_factory.mktemp("interrupt")
    synthesize_ct_series(root / "in", 200, rows=128, columns=128, seed=11)
    key = root / "k.key"
    key.write_text(test_key._secret.hex())
    key.chmod(0o600)
    clean = root / "clean"
    done = subprocess.run([sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(clean), "--recipe", "pseudonymize",
                           "--key-file", str(key), "--workers", "2", "--no-fast-path", "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root, key, _tree(clean)


@pytest.mark.parametrize("signum,code,tries", [("SIGINT", 130, 20), ("SIGTERM", 143, 5), ("SIGHUP", 129, 5)])
def test_item1_interrupts_end_within_seconds_and_rerun_resumes(signum, code, tries, many, tmp_path):
    "30 interrupts at seeded random moments of a 2-worker run: each ends within 5 s, and its rerun gives the uninterrupted tree."
    import random
    import signal
    import subprocess
    import sys
    import time
    root, key, clean = many
    rng = random.Random(signum)   # seeded: the same moments every run
    sig = getattr(signal, signum)
    for attempt in range(tries):
        out = tmp_path / f"out{attempt}"
        cmd = [sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(out), "--recipe", "pseudonymize",
               "--key-file", str(key), "--workers", "2", "--no-fast-path", "--quiet"]   # the slow path: time to interrupt it
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(rng.uniform(0.25, 2.0))
        os.killpg(proc.pid, sig)   # as a terminal (Ctrl-C) or a service manager does: the whole process group
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"{signum} at attempt {attempt}: the run did not end within 5 s")
        assert "Traceback" not in err and "Exception" not in err, err
        if proc.returncode != 0:   # it may have finished before the signal arrived
            assert proc.returncode == code, (proc.returncode, err)
            assert "interrupted" in err and "again" in err, err
            assert not (out / ".pseudicom-staging").exists() or not any((out / ".pseudicom-staging").rglob("*.dcm"))
        fast = [a for a in cmd if a != "--no-fast-path"]   # the fast path gives the same bytes: the rerun checks that too
        again = subprocess.run(fast, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _tree(out) == clean, f"{signum} at attempt {attempt}: the rerun differs from an uninterrupted run"


# -- item 6: two runs into one DST at once -------------------------------------------------------------------

def test_item6_a_second_run_into_the_same_dst_is_refused_while_the_first_goes_on(many, tmp_path):
    import subprocess
    import sys
    import time
    root, key, clean = many
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(out), "--recipe", "pseudonymize",
           "--key-file", str(key), "--workers", "2", "--no-fast-path", "--quiet"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / ".pseudicom-staging").exists() and time.monotonic() < deadline:   # the first run is writing
        time.sleep(0.02)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2, second.stderr
    assert "another pseudicom run is writing into this output folder" in second.stderr and "Traceback" not in second.stderr
    assert _tree(out) == clean   # the first run was not disturbed
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)   # and the lock is gone with it
    assert again.returncode == 0, again.stderr


# -- items 4 and 5: a full or read-only output disk ------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    "A tmpfs of 2 MB, mounted for the test (CI runs as root); (mount point, resize function)."
    import subprocess
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs here ({done.stderr.strip()}); these tests need root, as CI has")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)
    yield where, remount
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_item4_full_disk_stops_the_batch_with_one_message_and_a_rerun_resumes(many, small_disk, tmp_path):
    import subprocess
    import sys
    root, key, clean = many   # 200 files of about 33 KB: 6.6 MB, more than the 2 MB disk
    disk, remount = small_disk
    out = disk / "out"
    cmd = [sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(out), "--recipe", "pseudonymize",
           "--key-file", str(key), "--workers", "2", "--quiet"]
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2, full.stderr
    assert "no space left" in full.stderr and "MB free" in full.stderr and "run the same command again" in full.stderr
    assert "Traceback" not in full.stderr and "unexpected" not in full.stderr and full.stderr.count("\n") <= 2, full.stderr
    for p in out.rglob("*.dcm"):   # what was placed is whole: no half-written file
        assert ".pseudicom-staging" not in p.parts
        pydicom.dcmread(p).pixel_array
    assert not any((out / ".pseudicom-staging").rglob("*")) if (out / ".pseudicom-staging").exists() else True
    remount("size=64m")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert _tree(out) == clean


def test_item5_read_only_destination_is_a_message_and_exit_2(many, small_disk, tmp_path):
    import subprocess
    import sys
    root, key, _ = many
    disk, remount = small_disk
    remount("ro")
    done = subprocess.run([sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(disk / "out"), "--recipe",
                           "pseudonymize", "--key-file", str(key), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "read-only" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_item5_immutable_destination_folder_is_a_message_and_exit_2(many, tmp_path):
    import subprocess
    import sys
    root, key, _ = many
    out = tmp_path / "locked"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i is not available on this file system; the test needs ext4 (or another with the flag) under /tmp")
    try:
        done = subprocess.run([sys.executable, "-m", "pseudicom.cli", "deid", str(root / "in"), str(out), "--recipe",
                               "pseudonymize", "--key-file", str(key), "--quiet"], capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=False)
    assert done.returncode == 2, done.stderr
    assert "cannot write here" in done.stderr and "immutable" in done.stderr and "Traceback" not in done.stderr, done.stderr


# -- item 9: a file name that is not UTF-8 -------------------------------------------------------------------

def test_item9_non_utf8_file_name_is_kept_exactly_in_the_report(small_src, tmp_path):
    name = b"caf\xe9.dcm"   # Latin-1, as an old Windows share or CD gives it
    os.rename(small_src / "0.dcm", os.fsencode(small_src) + b"/" + name)
    assert main(["deid", str(small_src), str(tmp_path / "out"), "--recipe", "basic", "--quiet"]) == 0
    raw = (tmp_path / "out.report.json").read_bytes()
    assert "\ufffd".encode() not in raw   # no replacement character: the name is not lost
    sources = [f["source"] for f in json.loads(raw)["files"]]
    assert name in [os.fsencode(s) for s in sources]   # the JSON string gives back the exact bytes of the name
