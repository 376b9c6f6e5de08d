"""Issue-21 benchmark: instances/s that `pseudicom serve` receives and writes, next to dcmtk's storescp (the floor).

    python tests/benchmarks/bench_serve.py [--n 2000] [--rows 512] [--work DIR]

Sends N synthetic CT slices (`synthesize_ct_series`) with dcmtk's storescu, one association, to
  0. a pynetdicom Storage SCP that answers success and keeps nothing: what the Python DICOM stack itself costs,
  1. dcmtk's storescp writing each file (no de-identification, no fsync): the floor,
  2. `pseudicom serve --sync process` (de-identified, journalled, written through to the OS before answering),
  3. `pseudicom serve --sync power` (the default: output and journal fsynced before answering),
and prints instances/s and MB/s for each, and each serve rate as a fraction of the floor. The target is
at least half the floor. Numbers only: nothing is asserted. Servers listen on 127.0.0.1 and are stopped here.

A last row, `Gateway.store without the network`, is the gateway's own part: the same bytes handed to
`Gateway.store` (sync process) one after the other on a thread, as pynetdicom's handler thread does, with
no socket. Its time per instance plus that of the pynetdicom row is about what `serve` takes: where the
time goes, ours or the DICOM stack's.

dcmtk leaves Nagle's algorithm on unless TCP_NODELAY=1 is in its environment; with it on, every C-STORE
waits for a delayed ACK (about 40 ms) and storescp manages some 20 instances/s. Both dcmtk tools run with
TCP_NODELAY=1 here, so the floor is what storescp can really do.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DCMTK = Path("/usr/bin")
ENV = {**os.environ, "TCP_NODELAY": "1"}   # dcmtk: disable Nagle's algorithm (see above)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def timed_send(server: list[str], port: int, called: str, files: list[str], log: Path) -> float:
    "Start `server`, send `files` with storescu (one association), return the seconds storescu took; stop the server."
    with open(log, "wb") as fh:
        proc = subprocess.Popen(server, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=ENV)
        try:
            wait_port(port)
            t = time.perf_counter()
            r = subprocess.run([str(DCMTK / "storescu"), "-aet", "BENCH", "-aec", called, "127.0.0.1", str(port), *files],
                               capture_output=True, text=True, timeout=3600, env=ENV)
            seconds = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"storescu failed: {r.stderr[-1000:]}")
            return seconds
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def in_process(files: list[str], key_file: Path, dst: Path) -> float:
    "Seconds `Gateway.store` (sync process) takes for the files' bytes, on a thread as under pynetdicom, without a socket."
    import threading
    from pseudicom.keys import Key
    from pseudicom.receiver import part10_bytes
    from pseudicom.serve import Gateway
    datas = []
    for p in files:   # what pynetdicom hands over: the dataset as received, with file meta made from the C-STORE
        data = Path(p).read_bytes()
        ds = __import__("pydicom").dcmread(p, stop_before_pixels=True)
        datas.append(part10_bytes(str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.file_meta.TransferSyntaxUID),
                                  data[144 + int.from_bytes(data[140:144], "little"):]))
    for p in dst.parent.glob(dst.name + "*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    gw, took = Gateway("pseudonymize", dst, Key.from_file(key_file), sync="process"), []
    def go():
        t = time.perf_counter()
        for d in datas:
            gw.store(d)
        took.append(time.perf_counter() - t)
    th = threading.Thread(target=go)
    th.start()
    th.join()
    gw.close()
    return took[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--work", default="/tmp/pseudicom-bench-serve")
    args = ap.parse_args()
    if not (DCMTK / "storescu").exists():
        raise SystemExit("dcmtk is needed: apt-get install dcmtk")
    from pseudicom.keys import Key
    from pseudicom.synth import synthesize_ct_series
    work = Path(args.work)
    corpus = work / f"ct{args.n}x{args.rows}"
    if not (work / f".done-{corpus.name}").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        synthesize_ct_series(corpus, args.n, rows=args.rows, columns=args.rows)
        (work / f".done-{corpus.name}").write_text("ok")
    files = sorted(str(p) for p in corpus.iterdir())
    mb = sum(Path(p).stat().st_size for p in files) / 1e6
    for p in files:
        Path(p).read_bytes()   # warm the page cache
    key_file = work / "bench.key"
    if not key_file.exists():
        Key(b"pseudicom-bench-serve-key-0123456789").save(key_file)
    bare = ("import sys; from pynetdicom import AE, AllStoragePresentationContexts, evt; ae = AE('BARE'); ae.maximum_pdu_size = 0\n"
            "for cx in AllStoragePresentationContexts: ae.add_supported_context(cx.abstract_syntax)\n"
            "ae.start_server(('127.0.0.1', int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, lambda e: 0)])")
    rows = []
    for label, make in [
        ("pynetdicom SCP that keeps nothing", lambda out, port: [sys.executable, "-c", bare, str(port)]),
        ("storescp (dcmtk, the floor)", lambda out, port: [str(DCMTK / "storescp"), "-aet", "FLOOR", "-od", str(out), str(port)]),
        ("pseudicom serve --sync process", lambda out, port: [sys.executable, "-m", "pseudicom.cli", "serve", str(out), "--recipe",
                                                              "pseudonymize", "--key-file", str(key_file), "--port", str(port),
                                                              "--quiet", "--sync", "process"]),
        ("pseudicom serve --sync power", lambda out, port: [sys.executable, "-m", "pseudicom.cli", "serve", str(out), "--recipe",
                                                            "pseudonymize", "--key-file", str(key_file), "--port", str(port),
                                                            "--quiet", "--sync", "power"]),
    ]:
        out = work / "out"
        for p in work.glob("out*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        out.mkdir(parents=True) if label.startswith("storescp") else None
        port = free_port()
        called = {"storescp": "FLOOR", "pynetdicom": "BARE"}.get(label.split()[0], "PSEUDICOM")
        seconds = timed_send(make(out, port), port, called, files, work / f"{label.split()[0]}.log")
        written = sum(1 for p in out.rglob("*") if p.is_file())
        rows.append((label, seconds, written))
    rows.append(("Gateway.store without the network", in_process(files, key_file, work / "out-inproc"), args.n))
    rows = rows[1:] + rows[:1]   # the floor first
    floor = args.n / rows[0][1]
    print(f"{args.n} CT slices of {args.rows}x{args.rows} ({mb:.0f} MB), storescu, one association, 127.0.0.1:")
    for label, seconds, written in rows:
        rate = args.n / seconds
        print(f"  {label:32s} {seconds:7.2f} s  {rate:7.1f} instances/s  {mb / seconds:7.1f} MB/s  {written} files  "
              f"{rate / floor:5.2f} x floor")


if __name__ == "__main__":
    main()
