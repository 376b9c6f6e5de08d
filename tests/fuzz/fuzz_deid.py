"""Mutation fuzzing of the de-identification path (issue 7).

Mutates valid synthetic DICOM files (byte flips, overwrites with interesting values, deletions,
insertions, truncations) and runs each through `pipeline.process_file`. Every case must end in a
FileResult (written / failed / quarantined / excluded), never an exception or a hang, and a written
output must not contain the identifying values of the (mutated) input.

    python tests/fuzz/fuzz_deid.py --cases 20000 --seed 1     # a longer run; prints count and result
"""
from __future__ import annotations

import argparse
import io
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import pydicom

from pseudicom.deid import Deidentifier, identifying_strings
from pseudicom.keys import Key
from pseudicom.pipeline import process_file

INTERESTING = [b"\x00", b"\xff", b"\xff\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xfe\xff\x00\xe0",
               b"\xfe\xff\xdd\xe0", b"SQ", b"UN", b"OB", b"\x7f\xff\xff\xff", b"\x10\x00\x10\x00PN"]


class Hang(Exception):
    pass


def mutate(raw: bytes, rng: random.Random) -> bytes:
    "One to four random mutations of `raw` (the preamble and DICM prefix are kept most of the time)."
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        pos = rng.randrange(128 if rng.random() < 0.95 else 0, len(data)) if len(data) > 132 else 0
        if kind < 0.35:
            data[pos] = rng.randrange(256)
        elif kind < 0.6:
            chunk = rng.choice(INTERESTING)
            data[pos:pos + len(chunk)] = chunk
        elif kind < 0.75:
            del data[pos:pos + rng.randint(1, 64)]
        elif kind < 0.9:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        else:
            del data[pos:]
    return bytes(data)


def identifiers_of(path: Path) -> list[bytes]:
    "Identifying values of a (possibly damaged) file as a lenient reader sees them."
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        values = [("PN", str(ds.get("PatientName", ""))), ("LO", str(ds.get("PatientID", ""))), ("DA", str(ds.get("PatientBirthDate", "")))]
    except Exception:
        return []
    return [s.lower().encode() for s in identifying_strings(values) if len(s) >= 6 and s.isascii()]


def run_cases(seeds: list[bytes], n: int, seed: int, per_case_seconds: float = 10.0) -> dict:
    "Run `n` mutated cases; return counts by status and the list of problems."
    rng = random.Random(seed)
    deid = Deidentifier("basic", Key(b"fuzz-key-0123456789abcdef-0123456789"))
    counts: dict[str, int] = {}
    problems: list[str] = []
    def alarm(*_):
        raise Hang()
    old = signal.signal(signal.SIGALRM, alarm)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        staging = d / "staging"
        staging.mkdir()
        for i in range(n):
            raw = mutate(rng.choice(seeds), rng)
            path = d / "case.dcm"
            path.write_bytes(raw)
            signal.setitimer(signal.ITIMER_REAL, per_case_seconds)
            try:
                result = process_file(i, str(path), "case.dcm", str(staging), deidentifier=deid)
            except Hang:
                problems.append(f"case {i}: hang (> {per_case_seconds} s)")
                continue
            except BaseException as e:  # anything escaping process_file is a defect
                problems.append(f"case {i}: {type(e).__name__}: {e}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status == "failed" and result.reason.startswith("case.dcm: unexpected"):
                problems.append(f"case {i}: unhandled error reported as failure: {result.reason[:200]}")
            if result.status == "written":
                out = staging / f"{i:08d}.dcm"
                data = out.read_bytes().lower()
                leaked = [n for n in identifiers_of(path) if n in data]
                if leaked:
                    problems.append(f"case {i}: identifying value written ({len(leaked)} values)")
                out.unlink()
    signal.signal(signal.SIGALRM, old)
    return {"cases": n, "counts": counts, "problems": problems}


def implicit_copies(seeds: list[bytes]) -> list[bytes]:
    "The Explicit VR Little Endian seeds written again in Implicit VR Little Endian (by pydicom)."
    import io
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    out = []
    for raw in seeds:
        ds = pydicom.dcmread(io.BytesIO(raw))
        if ds.file_meta.TransferSyntaxUID != ExplicitVRLittleEndian:
            continue
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def run_differential(seeds: list[bytes], n: int, seed: int, run_dictionary: bool = False) -> dict:
    """Run `n` mutated cases through the raw header path (with its series memo) and through the pydicom path:
    the same status, and for written files the same bytes, audit and crosswalk (`run_dictionary`: both scrub
    the run-level dictionary of the seeds, as `pipeline.run` does, so one seed's patient in another's text is cleaned)."""
    from pseudicom.pipeline.results import pack_result
    rng = random.Random(seed)
    key = Key(b"fuzz-key-0123456789abcdef-0123456789")
    strings = ()
    if run_dictionary:
        strings = Deidentifier("pseudonymize", key).dictionary_of(
            pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True) for raw in seeds)
    deids = {mode: Deidentifier("pseudonymize", key, run_identifiers=strings) for mode in (True, False)}   # one each: the raw one keeps its templates
    counts: dict[str, int] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for i in range(n):
            raw = mutate(rng.choice(seeds), rng) if rng.random() < 0.7 else rng.choice(seeds)
            path = d / "case.dcm"
            path.write_bytes(raw)
            got = {}
            for mode, deid in deids.items():
                staging = d / f"staging{mode}"
                staging.mkdir(exist_ok=True)
                r = pack_result(process_file(i, str(path), "case.dcm", str(staging), deidentifier=deid, raw_headers=mode))
                out = staging / f"{i:08d}.dcm"
                got[mode] = (r.status, r.reason, r.output, r.digest, r.audit_lines, sorted(r.crosswalk.items()),
                             out.read_bytes() if out.exists() else None, r.path)
                out.unlink(missing_ok=True)
            a, b = got[True], got[False]
            counts[f"{a[0]} by {a[7] or '-'}"] = counts.get(f"{a[0]} by {a[7] or '-'}", 0) + 1
            if a[0] != b[0] or (a[0] == "written" and a[2:7] != b[2:7]) or (a[0] != "written" and a[1] != b[1]):
                problems.append(f"case {i}: raw path gave {a[0]} ({a[1][:80]}), pydicom path {b[0]} ({b[1][:80]})"
                                + ("; outputs differ" if a[0] == b[0] == "written" else ""))
    return {"cases": n, "counts": counts, "problems": problems}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    from pseudicom.synth import synthesize
    with tempfile.TemporaryDirectory() as d:
        truth = synthesize(Path(d) / "dicom", truth_path=Path(d) / "truth.json")
        seeds = [(Path(d) / "dicom" / f).read_bytes() for f in truth["files"] if "US_" not in f]
        seeds += implicit_copies(seeds)
    t0 = time.perf_counter()
    res = run_cases(seeds, args.cases, args.seed)
    dt = time.perf_counter() - t0
    print(f"{res['cases']} cases in {dt:.0f} s ({res['cases'] / dt:.0f}/s): {res['counts']}; problems: {len(res['problems'])}")
    for line in res["problems"][:20]:
        print("  " + line)
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
