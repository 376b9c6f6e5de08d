"CLI: nbcheck, crosswalk lookup (plain and encrypted), verify exit codes, run record beside the output."
import json
import os
from pathlib import Path

from pseudicom.cli import main


def _nb(path: Path, text: str) -> Path:
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "ds",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [text]}]}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_nbcheck_cli(tmp_path, capsys):
    leaky = _nb(tmp_path / "leaky.ipynb", "(0010,0010) Patient's Name PN: 'Mustermann^Max'\n")
    clean = _nb(tmp_path / "clean.ipynb", "loss 0.3\n")
    assert main(["nbcheck", str(clean)]) == 0
    assert main(["nbcheck", str(leaky), str(clean)]) == 1
    out = capsys.readouterr()
    assert "person name" in out.out and "Mustermann" not in out.out + out.err and "--strip" in out.err
    assert main(["nbcheck", "--strip", str(leaky)]) == 0
    assert main(["nbcheck", str(leaky)]) == 0


def test_crosswalk_lookup_and_verify(synth_set, tmp_path, capsys, monkeypatch):
    src, _ = synth_set
    assert main(["keygen", str(tmp_path / "k.key")]) == 0
    monkeypatch.setenv("CW_PASS", "a long enough passphrase")
    assert main(["deid", str(src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(tmp_path / "k.key"),
                 "--crosswalk", str(tmp_path / "cw.enc"), "--crosswalk-passphrase-env", "CW_PASS", "--burned-in", "detect", "--quiet"]) == 0
    assert (tmp_path / "out.record.html").is_file() and (tmp_path / "out.record.json").is_file()
    assert b"PID-0001" not in (tmp_path / "cw.enc").read_bytes()
    report = json.loads((tmp_path / "out.report.json").read_text())
    some = next(f for f in report["files"] if f["status"] == "written" and f["output"].split("/")[0])
    pseudonym = some["output"].split("/")[0]
    capsys.readouterr()
    assert main(["crosswalk", "lookup", str(tmp_path / "cw.enc"), pseudonym, "--passphrase-env", "CW_PASS"]) == 0
    assert "PID-000" in capsys.readouterr().out
    assert main(["crosswalk", "lookup", str(tmp_path / "cw.enc"), pseudonym]) == 2  # encrypted: passphrase needed
    assert main(["verify", str(src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(tmp_path / "k.key"),
                 "--run-report", str(tmp_path / "out.report.json")]) == 0
    assert main(["verify", str(src), str(src)]) == 1  # the inputs themselves are full of identifying data


def test_output_to_a_closed_pipe_is_no_traceback():
    "`pseudicom ... | head` where the reader is gone: a quiet stop with the shell's code for a broken pipe, not a traceback."
    import subprocess
    import sys
    r, w = os.pipe()
    os.close(r)   # nobody will read: every write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "pseudicom.cli", "recipe", "show", "basic"], stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_the_program_exits_with_the_commands_code_and_skips_pydicoms_downloader():
    "`pseudicom` and `python -m pseudicom.cli` exit with the command's code; neither imports requests or tqdm at start."
    import shutil
    import subprocess
    import sys
    prog = shutil.which("pseudicom")
    assert prog, "the pseudicom program is installed (pip install -e .)"
    assert subprocess.run([prog, "recipe", "show", "nope"], capture_output=True, timeout=120).returncode == 2
    ok = subprocess.run([prog, "recipe", "show", "basic"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("# pseudicom recipe: basic"), ok.stderr
    probe = ("import sys; from pseudicom.cli import main; code = main(['recipe', 'show', 'basic']); "
             "print(code, sorted(m for m in ('pydicom', 'requests', 'tqdm') if m in sys.modules), file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.stderr.strip().splitlines()[-1] == "0 ['pydicom']", run.stderr[-2000:]
