"Burned-in text detection on synthetic screens with known text boxes: recall, precision, the image kept, speed, OCR."
import time

import numpy as np
import pytest

from pseudicom.detect import evaluate_suggestions, suggest_regions, suggestions_to_rule, text_screen


def _run(screen, **kw):
    found = suggest_regions(screen.pixels, **kw)
    r = evaluate_suggestions(found, list(screen.boxes.values()), screen.image_mask.shape, screen.image_mask)
    return found, r


@pytest.mark.parametrize("kind,frames,seed", [("us", 60, 0), ("us", 1, 0), ("us", 1, 7), ("us", 20, 3),
                                              ("sc", 1, 0), ("sc", 1, 5), ("ct", 1, 0), ("ct", 1, 9)])
def test_every_text_line_found_and_the_image_kept(kind, frames, seed):
    screen = text_screen(kind, frames=frames, seed=seed)
    found, r = _run(screen)
    print(f"{kind} frames={frames} seed={seed}: recall {r['recall']:.2f} precision {r['precision']:.3f} "
          f"image covered {r['image_fraction']:.4f} ({len(found)} suggestions)")
    assert r["recall"] == 1.0, [list(screen.boxes)[i] for i in r["missed"]]
    assert r["precision"] >= 0.3
    assert r["image_fraction"] < 0.05
    assert all(0.5 <= s.score <= 1 for s in found)


def test_cine_text_is_static_and_fast():
    screen = text_screen("us", frames=60)
    suggest_regions(screen.pixels[:2])                       # warm up imports
    t = time.perf_counter()
    found = suggest_regions(screen.pixels)
    dt = time.perf_counter() - t
    print(f"60x480x640 RGB cine, no OCR: {dt:.3f} s")
    assert dt < 2.0
    assert all(s.evidence["static_across_frames"] > (0.95 if s.box[3] < 80 else 0.5) for s in found)  # edges over speckle move


def test_text_that_changes_every_frame_is_still_found():
    "A running clock is not static across frames; the mean image still shows it as text."
    from pseudicom.detect import _render
    screen = text_screen("us", frames=30, seed=0)
    px = screen.pixels.copy()
    boxes = []
    for f in range(len(px)):
        a, colour, box = _render(480, 640, [("clock", 440, 440, f"00:{f // 10:02d}:{(f * 7) % 60:02d}.{f % 10}", 12, (255, 255, 255))])["clock"]
        px[f] = np.rint(px[f] * (1 - a[..., None]) + colour * a[..., None])
        boxes.append(box)
    clock = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    found = suggest_regions(px)
    r = evaluate_suggestions(found, list(screen.boxes.values()) + [clock], (480, 640), screen.image_mask)
    print(f"cine with a running clock: recall {r['recall']:.2f} precision {r['precision']:.3f}")
    assert r["recall"] == 1.0 and r["image_fraction"] < 0.05


@pytest.mark.parametrize("frames", [1, 30])
def test_speckle_alone_gives_no_suggestions(frames):
    from scipy import ndimage as ndi
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:480, :640]
    sector = (np.abs(np.degrees(np.arctan2(xx - 320, yy - 60))) <= 40) & (np.hypot(xx - 320, yy - 60) <= 400) & (yy > 65)
    px = np.zeros((frames, 480, 640), np.uint8)
    for f in range(frames):
        sp = ndi.gaussian_filter(rng.rayleigh(1.0, (480, 640)), 1.0)
        px[f][sector] = np.clip(80 * np.log1p(2.5 * sp[sector]), 0, 255)    # brighter, harsher speckle than text_screen's
    found = suggest_regions(px if frames > 1 else px[0])
    covered = evaluate_suggestions(found, [], (480, 640), sector)["image_fraction"]
    print(f"speckle only, frames={frames}: {len(found)} suggestions, {covered:.4f} of the sector")
    assert covered < 0.01, (covered, found)


def test_dataset_roundtrip_to_rule():
    from pseudicom.pixels import PixelRule, redact
    screen = text_screen("us", frames=8, seed=2)
    ds = screen.dataset(Modality="US", Manufacturer="Acme", ManufacturerModelName="Sono 1")
    found = suggest_regions(ds)
    rule = PixelRule.from_dict(suggestions_to_rule(ds, found))
    assert rule.matches(ds)
    redact(ds, [rule])
    again = suggest_regions(ds)                              # after redaction no text is left to suggest
    assert again == [], again


def test_ocr_flags_the_patient_name_for_real():
    screen = text_screen("us", frames=10, seed=1)
    ds = screen.dataset(Modality="US")
    found = suggest_regions(ds, ocr=True)
    nx0, ny0, nx1, ny1 = screen.boxes["PatientName"]
    name = [s for s in found if s.box[0] <= nx0 and s.box[1] <= ny0 and s.box[2] >= nx1 and s.box[3] >= ny1]
    assert len(name) == 1
    assert "PatientName" in name[0].evidence["ocr_text_matches"], name[0].evidence
    assert name[0].evidence["ocr_text_is_identifying"] and name[0].score >= 0.95
    flagged = {k for s in found for k in s.evidence["ocr_text_matches"] if not k.endswith("_like")}
    print("header categories found by OCR:", sorted(flagged))
    probe = screen.boxes["Probe"]
    assert not [s for s in found if s.box[0] <= probe[0] and s.box[2] >= probe[2] and s.box[1] <= probe[1] and s.box[3] >= probe[3]
                and s.evidence["ocr_text_matches"]]
    assert all(isinstance(k, str) and "MUSTERMANN" not in k.upper() for s in found for k in s.evidence["ocr_text_matches"])


def test_ocr_on_a_real_ultrasound_screen():
    "pydicom's PALETTE COLOR example shows its own PatientID, InstitutionName and StudyDate in the banner."
    from pydicom import examples
    ds = examples.palette_color
    found = suggest_regions(ds, ocr=True)
    hits = {k for s in found for k in s.evidence["ocr_text_matches"] if not k.endswith("_like")}
    print("header categories found by OCR on examples.palette_color:", sorted(hits))
    assert {"PatientID", "InstitutionName", "StudyDate"} <= hits
    for s in found:
        if {"PatientID", "InstitutionName", "StudyDate"} & set(s.evidence["ocr_text_matches"]):
            assert s.box[3] <= 60 and s.score >= 0.95                 # all in the banner
