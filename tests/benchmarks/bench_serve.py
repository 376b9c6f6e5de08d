"""Issue-21 benchmark: instances/s that `pseudicom serve` receives and writes, next to dcmtk's storescp (the floor).

    python tests/benchmarks/bench_serve.py [--n 2000] [--rows 512] [--work DIR] [--repeat K] [--only TEXT ...]

Sends N synthetic CT slices (`synthesize_ct_series`) with dcmtk's storescu, one association, to
  - dcmtk's storescp writing each file (no de-identification, no fsync): the floor,
  - Debian's Orthanc with its default SyncStorageArea (each instance fsynced before it is acknowledged): what a PACS
    that promises what `--sync power` promises manages on the same disk,
  - `pseudicom serve --sync process` (de-identified, journalled, written through to the OS; no fsync),
  - `pseudicom serve --sync power` (the default: output and journal fsynced before answering),
  - both again with `--answer spooled` (each instance answered once safe in the spool, fsynced with --sync power,
    and de-identified while the next one arrives; outputs and journal fsynced before the spool file is dropped),
  - a pynetdicom Storage SCP and a `pseudicom.receiver` one that answer success and keep nothing: what each
    upper layer costs on its own,
and prints, for each, the seconds until storescu had every answer and until the gateway's journal had every
instance (with `--answer spooled`, the last ones are written a moment after they are answered),
the rate from the second, in instances/s and MB/s, and as a fraction of the floor. The target is at least
half the floor, received and written. Numbers only: nothing is asserted. Servers listen on 127.0.0.1 and
are stopped here.

This machine's speed changes from minute to minute (the floor itself moves by a third between runs), so
`--repeat K` runs K rounds of every row and prints medians; a row's fraction of the floor is taken against
the floor of its own round, and the spread over the rounds is printed beside it.

A last row, `Gateway.store without the network`, is the gateway's own part: the same bytes handed to
`Gateway.store` (sync process, answer written) one after the other on a thread, with no socket.

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
import statistics
import subprocess
import sys
import time
from pathlib import Path

DCMTK = Path("/usr/bin")
ORTHANC = Path("/usr/sbin/Orthanc")
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


def settled(journal: Path) -> int:
    "How many instances a gateway's journal says are done (written, excluded, quarantined or failed)."
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_bytes().splitlines()[1:] if b'"status"' in line and b'"held"' not in line)


def timed_send(server: list[str], port: int, called: str, files: list[str], log: Path, journal: Path | None = None) -> tuple[float, float]:
    """Start `server`, send `files` with storescu (one association); return the seconds until storescu had every answer and
    until the gateway's journal has every instance (`journal`; else the same); stop the server."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(server, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=ENV)
        try:
            wait_port(port)
            t = time.perf_counter()
            r = subprocess.run([str(DCMTK / "storescu"), "-aet", "BENCH", "-aec", called, "127.0.0.1", str(port), *files],
                               capture_output=True, text=True, timeout=3600, env=ENV)
            answered = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"storescu failed: {r.stderr[-1000:]}")
            while journal is not None and settled(journal) < len(files):   # answered once spooled: written a little later
                time.sleep(0.002)
            return answered, time.perf_counter() - t
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
    gw, took = Gateway("pseudonymize", dst, Key.from_file(key_file), sync="process", answer="written"), []
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
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="run only the rows whose label contains TEXT (repeatable); the floor always runs")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of every row; medians are printed, each row against its round's floor")
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
    ours = ("import sys, threading; from pynetdicom import AllStoragePresentationContexts; from pseudicom.receiver import Receiver, "
            "transfer_syntaxes\nReceiver('127.0.0.1', int(sys.argv[1]), lambda *a: 0, abstract_syntaxes=[cx.abstract_syntax for cx in "
            "AllStoragePresentationContexts], transfer_syntaxes=transfer_syntaxes()); threading.Event().wait()")

    def serve(*extra: str):
        return lambda out, port: [sys.executable, "-m", "pseudicom.cli", "serve", str(out), "--recipe", "pseudonymize", "--key-file",
                                  str(key_file), "--port", str(port), "--quiet", *extra]

    def orthanc(out: Path, port: int) -> list[str]:
        "Debian's Orthanc with a throw-away configuration: its own storage and index, SyncStorageArea (fsync) as it defaults."
        config = {"Name": "bench", "StorageDirectory": str(out / "storage"), "IndexDirectory": str(out / "index"), "DicomAet": "ORTHANC",
                  "DicomPort": port, "HttpPort": free_port(), "RemoteAccessAllowed": False, "Plugins": [], "SyncStorageArea": True}
        (out / "orthanc.json").write_text(__import__("json").dumps(config))
        return [str(ORTHANC), str(out / "orthanc.json")]

    for p in [*work.glob("out*"), *work.glob("run-*")]:   # what an earlier benchmark left (deleted now, not between rows)
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    table = [
        ("pynetdicom SCP that keeps nothing", lambda out, port: [sys.executable, "-c", bare, str(port)]),
        ("pseudicom.receiver that keeps nothing", lambda out, port: [sys.executable, "-c", ours, str(port)]),
        ("storescp (dcmtk, the floor)", lambda out, port: [str(DCMTK / "storescp"), "-aet", "FLOOR", "-od", str(out), str(port)]),
        ("Orthanc (a PACS: fsync per instance)", orthanc),
        ("pseudicom serve --sync process", serve("--sync", "process")),
        ("pseudicom serve --sync power", serve("--sync", "power")),
        ("pseudicom serve --sync process --answer spooled", serve("--sync", "process", "--answer", "spooled")),
        ("pseudicom serve --sync power --answer spooled", serve("--sync", "power", "--answer", "spooled")),
    ]
    table = [(label, make) for label, make in table if not args.only or label.startswith("storescp") or any(t in label for t in args.only)]
    if not ORTHANC.exists():
        table = [(label, make) for label, make in table if not label.startswith("Orthanc")]
        print(f"({ORTHANC} is missing: no Orthanc row; apt-get install orthanc)")
    inproc = not args.only or any(t in "Gateway.store without the network" for t in args.only)
    runs: dict[str, list[tuple[float, float, int]]] = {}
    floors = []
    for round_ in range(args.repeat):   # rounds of every row, so that each row meets the machine's good and bad moments alike
        for i, (label, make) in enumerate(table):
            # Each row writes into a folder of its own, and starts once what the rows before wrote is on disk (`sync`, not
            # timed): no row pays for another's writeback, and none allocates files among thousands just deleted (ext4 skips
            # recently deleted inodes when it allocates new ones, which costs a gateway that follows a deletion dearly).
            out = work / f"run-{round_}-{i}" / "out"
            out.mkdir(parents=True) if label.startswith(("storescp", "Orthanc")) else out.parent.mkdir(parents=True)
            os.sync()
            port = free_port()
            called = {"storescp": "FLOOR", "pynetdicom": "BARE", "pseudicom.receiver": "BARE", "Orthanc": "ORTHANC"}.get(label.split()[0], "PSEUDICOM")
            journal = out.parent / "out.serve.jsonl" if label.startswith("pseudicom serve") else None
            answered, seconds = timed_send(make(out, port), port, called, files, work / f"{label.split()[0]}.log", journal)
            written = sum(1 for p in (out / "storage" if label.startswith("Orthanc") else out).rglob("*") if p.is_file())
            runs.setdefault(label, []).append((answered, seconds, written))
            if label.startswith("storescp"):
                floors.append(seconds)
        if inproc:
            (work / f"run-{round_}-inproc").mkdir()
            os.sync()
            took = in_process(files, key_file, work / f"run-{round_}-inproc" / "out")
            runs.setdefault("Gateway.store without the network", []).append((took, took, args.n))
        for p in work.glob(f"run-{round_}-*"):
            shutil.rmtree(p)
    order = sorted(runs, key=lambda label: (not label.startswith("storescp"), "keeps nothing" in label))   # the floor first, the bare receivers last
    print(f"{args.n} CT slices of {args.rows}x{args.rows} ({mb:.0f} MB), storescu, one association, 127.0.0.1; "
          f"median of {args.repeat} round(s):")
    print(f"  {'':48s} {'answered':>9s} {'written':>9s}  (seconds until storescu had every answer / the journal every instance)")
    for label in order:
        answered, seconds = (statistics.median(r[k] for r in runs[label]) for k in (0, 1))
        ratios = [floor / r[1] for floor, r in zip(floors, runs[label])]   # against the floor of the same round
        rate = args.n / seconds
        spread = f" (rounds {min(ratios):.2f} to {max(ratios):.2f})" if len(ratios) > 1 else ""
        print(f"  {label:48s} {answered:7.2f} s {seconds:7.2f} s  {rate:7.1f} instances/s  {mb / seconds:7.1f} MB/s  "
              f"{runs[label][-1][2]} files  {statistics.median(ratios):5.2f} x floor{spread}")

if __name__ == "__main__":
    main()
