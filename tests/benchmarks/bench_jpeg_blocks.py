"""Benchmark JPEG Baseline block redaction (issue 20) against decoding the same frames (a script that prints numbers).

    python tests/benchmarks/bench_jpeg_blocks.py [--frames 30] [--repeat 3] [--file PATH]

A 640x480 YBR_FULL_422 (4:2:2) JPEG Baseline cine (or the DICOM file given) has a 640x40 banner
redacted. Printed, best of --repeat: frames/s of `redact` (block path), of pydicom's decode of all
frames (`pixel_array`, what the old path had to do first), of libjpeg-turbo's decode alone (Pillow),
and of the alternatives measured for the choice: `jpegtran -wipe` (one process per frame; fills
mid-grey) and `jpeglib` (DCT read/write through temporary files), where installed; and the sizes.
"""
from __future__ import annotations

import argparse
import copy
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from pseudicom.pixels import PixelRule, redact

ROWS, COLS = 480, 640


def cine(frames: int) -> Dataset:
    "Ultrasound-like frames (moving gradient, speckle, a text banner), JPEG-encoded by Pillow at quality 90, 4:2:2."
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    frags = []
    for f in range(frames):
        g = 60 + 80 * np.sin((xx + 4 * f) / 50.0) * np.cos(yy / 70.0) + rng.normal(0, 6, (ROWS, COLS)) + 60
        rgb = np.clip(np.stack([g, 0.8 * g + 20, 0.6 * g + 40], -1), 0, 255).astype(np.uint8)
        im = Image.fromarray(rgb)
        ImageDraw.Draw(im).text((20, 12), "PATIENT NAME 1962-01-01", fill=(255, 255, 0))
        bio = io.BytesIO()
        im.save(bio, "JPEG", quality=90, subsampling=1)
        frags.append(bio.getvalue())
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid(prefix="2.25.", entropy_srcs=["bench-jpeg-blocks", str(frames)])
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.NumberOfFrames = "US", ROWS, COLS, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate(frags, has_bot=True)
    ds["PixelData"].VR = "OB"
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(bio.getvalue()))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file", type=Path, help="a JPEG Baseline DICOM file instead of the synthetic cine")
    args = ap.parse_args()
    src = pydicom.dcmread(args.file) if args.file else cine(args.frames)
    nf, cols = int(src.get("NumberOfFrames", 1) or 1), int(src.Columns)
    rule = PixelRule("banner", [(0, 0, cols, 40)], {})
    frames = list(generate_frames(src.PixelData, number_of_frames=nf))
    print(f"{nf} frames {cols}x{src.Rows} {src.PhotometricInterpretation} JPEG Baseline, {len(src.PixelData) / 1e6:.2f} MB; "
          f"box {cols}x40 on every frame; best of {args.repeat}")
    redact(copy.deepcopy(src), [rule])                               # warm up, untimed
    copies = [copy.deepcopy(src) for _ in range(args.repeat)]
    reports = []
    t_blocks = best(lambda: reports.append(redact(copies[len(reports)], [rule])), args.repeat)
    report = reports[-1]
    t_pydicom = best(lambda: copy.deepcopy(src).pixel_array, args.repeat)
    t_pillow = best(lambda: [np.asarray(Image.open(io.BytesIO(f))) for f in frames], args.repeat)
    rows = [("redact, block path (libjpeg-turbo transform)", t_blocks),
            ("decode only, pydicom pixel_array", t_pydicom),
            ("decode only, libjpeg-turbo via Pillow", t_pillow)]
    if shutil.which("jpegtran"):
        wipe = ["jpegtran", "-wipe", f"{cols}x40+0+0"]
        rows.append(("alternative: jpegtran -wipe per frame", best(
            lambda: [subprocess.run(wipe, input=f, capture_output=True, check=True) for f in frames], args.repeat)))
    try:
        import jpeglib
    except ImportError:
        jpeglib = None
    if jpeglib is not None:
        tmp = Path(tempfile.mkdtemp())
        def via_jpeglib() -> None:
            for k, f in enumerate(frames):
                p = tmp / f"{k}.jpg"
                p.write_bytes(f)
                im = jpeglib.read_dct(str(p))
                im.Y[:5] = 0
                im.Cb[:5] = 0
                im.Cr[:5] = 0
                im.write_dct(str(tmp / f"{k}o.jpg"))
        rows.append(("alternative: jpeglib read_dct/write_dct", best(via_jpeglib, args.repeat)))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'':<48}{'seconds':>9}{'frames/s':>10}{'x decode (pydicom)':>20}")
    for name, t in rows:
        print(f"{name:<48}{t:>9.3f}{nf / t:>10.1f}{t / t_pydicom:>20.2f}")
    print(f"Pixel Data {report.pixel_bytes_in} -> {report.pixel_bytes_out} bytes "
          f"(x{report.pixel_bytes_out / report.pixel_bytes_in:.3f}); box as blanked {report.filled_boxes}; "
          f"method {report.method}; transfer syntax {pydicom.uid.UID(report.transfer_syntax_out).name}")


if __name__ == "__main__":
    main()
