"""Benchmark `pseudicom.pixels.redact` on a 60-frame 480x640 RGB cine (a script that prints numbers).

    python tests/benchmarks/bench_redact.py [--frames 60] [--repeat 3]

For each transfer syntax it prints redaction throughput (frames/s and MB/s of decoded pixel data)
and the ratio of redaction time to decoding all frames alone (pydicom `pixel_array`). The box is a
640x40 banner at the top, so every frame is touched.
"""
from __future__ import annotations

import argparse
import copy
import io
import time

import numpy as np
import pydicom
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, generate_uid

from pseudicom.pixels import PixelRule, redact

ROWS, COLS = 480, 640
RULE = PixelRule("banner", [(0, 0, COLS, 40)], {"Rows": ROWS, "Columns": COLS})


def cine(frames: int, seed: int = 0) -> Dataset:
    "A synthetic ultrasound-like RGB cine: smooth moving gradient, speckle, a bright text banner."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    arr = np.empty((frames, ROWS, COLS, 3), np.uint8)
    for f in range(frames):
        g = 60 + 80 * np.sin((xx + 4 * f) / 50.0) * np.cos(yy / 70.0)
        speckle = rng.normal(0, 6, (ROWS, COLS))
        img = np.clip(g + speckle + 60, 0, 255)
        arr[f] = img[..., None].astype(np.uint8)
        arr[f, 10:30, 20:400] = 255
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid(prefix="2.25.", entropy_srcs=["bench", str(frames)])
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.Modality, ds.Manufacturer = "US", "ACME"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ROWS, COLS, 3, "RGB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.PlanarConfiguration = 8, 8, 7, 0, 0
    ds.NumberOfFrames = frames
    ds.PixelData = arr.tobytes()
    return ds


def jpeg_baseline(ds: Dataset) -> Dataset:
    ds = copy.deepcopy(ds)
    frags = []
    for f in ds.pixel_array:
        bio = io.BytesIO()
        Image.fromarray(f, "RGB").save(bio, "JPEG", quality=90, subsampling=1)
        frags.append(bio.getvalue())
    ds.PixelData = encapsulate(frags)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    return ds


def compressed(ds: Dataset, ts) -> Dataset:
    ds = copy.deepcopy(ds)
    ds.compress(ts, generate_instance_uid=False)
    return ds


def roundtrip(ds: Dataset) -> Dataset:
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(bio.getvalue()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = cine(args.frames)
    mb = args.frames * ROWS * COLS * 3 / 1e6
    print(f"{args.frames} frames {COLS}x{ROWS} RGB = {mb:.1f} MB decoded; box 640x40 on every frame; best of {args.repeat}")
    print(f"{'input':<26}{'size MB':>9}{'decode s':>10}{'redact s':>10}{'frames/s':>10}{'MB/s':>8}{'redact/decode':>15}  written as")
    variants = [("Explicit VR LE", lambda: base, "uncompressed"),
                ("JPEG Baseline (lossy)", lambda: jpeg_baseline(base), "uncompressed"),
                ("JPEG-LS Lossless", lambda: compressed(base, JPEGLSLossless), "uncompressed"),
                ("JPEG 2000 Lossless", lambda: compressed(base, JPEG2000Lossless), "uncompressed")]
    for name, make, lossy in variants:
        src = roundtrip(make())
        copy.deepcopy(src).pixel_array                      # warm up plugins and caches, untimed
        redact(copy.deepcopy(src), [RULE], lossy=lossy)
        dtimes = []
        for ds in [copy.deepcopy(src) for _ in range(args.repeat)]:
            t0 = time.perf_counter()
            ds.pixel_array                     # decoding alone (all frames, as pydicom does by default)
            dtimes.append(time.perf_counter() - t0)
        decode = min(dtimes)
        copies = [copy.deepcopy(src) for _ in range(args.repeat)]
        times, report = [], None
        for ds in copies:
            t0 = time.perf_counter()
            report = redact(ds, [RULE], lossy=lossy)
            times.append(time.perf_counter() - t0)
        t = min(times)
        out = pydicom.uid.UID(report.transfer_syntax_out).name
        print(f"{name:<26}{len(src.PixelData) / 1e6:>9.1f}{decode:>10.3f}{t:>10.3f}{args.frames / t:>10.1f}"
              f"{mb / t:>8.1f}{t / max(decode, 1e-9):>15.2f}  {out}{' (re-encoded)' if report.reencoded else ''}")


if __name__ == "__main__":
    main()
