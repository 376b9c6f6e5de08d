"The detector finds every burned-in text box that synth plants (truth.json 'burned_in'), in every transfer syntax."
import collections
from pathlib import Path

import pydicom
import pytest

from pseudicom.detect import evaluate_suggestions, suggest_regions
from pseudicom.synth import synthesize


@pytest.mark.parametrize("small", [True, False])
def test_recall_on_synth_burned_in_boxes(tmp_path, small):
    truth = synthesize(tmp_path, seed=0, small=small)
    by_file = collections.defaultdict(list)
    for b in truth["burned_in"]:
        by_file[b["file"]].append(tuple(b["box"]))
    assert by_file
    for f, boxes in sorted(by_file.items()):
        ds = pydicom.dcmread(Path(tmp_path) / f)
        found = suggest_regions(ds)
        r = evaluate_suggestions(found, boxes, (ds.Rows, ds.Columns))
        print(f"{f} ({ds.file_meta.TransferSyntaxUID.name}): recall {r['recall']:.2f} precision {r['precision']:.3f}")
        assert r["recall"] == 1.0, (f, [boxes[i] for i in r["missed"]], [s.box for s in found])
        assert r["precision"] >= 0.3, (f, r)
