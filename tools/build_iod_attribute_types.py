"""Build src/pseudicom/data/iod_attribute_types.csv from highdicom 0.28.2's bundled PS3.3 extraction
(highdicom/_standard/*.json, generated from innolitics/dicom-standard), and iod_nested_attribute_types.csv beside it
(attributes inside sequence items). Run: pip download --no-deps highdicom==0.28.2 -d W && unzip W/*.whl -d W;
python tools/build_iod_attribute_types.py W src/pseudicom/data/iod_attribute_types.csv"""
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
            if a["path"]:
                continue  # only top-level attributes
            tag = tag_for_keyword(a["keyword"])
            if tag is None:
                continue
            t = f"{tag:08X}"
            if t in combined:
                found.setdefault(t, []).append((a["type"], m["key"], m["usage"]))
    for t, hits in sorted(found.items()):
        hits.sort(key=lambda h: (RANK[h[0]], USAGE[h[2]], h[1]))
        typ, mod, usage = hits[0]
        note = "; ".join(f"also {m} ({u}): type {ty}" for ty, m, u in hits[1:])
        result.append(dict(sop_class_uid=sop, iod=iod, tag=t, type=typ, module=mod, module_usage=usage, note=note))
with out.open("w", encoding="utf-8", newline="") as f:
    w = csv.DictWriter(f, ["sop_class_uid", "iod", "tag", "type", "module", "module_usage", "note"], lineterminator="\n")
    w.writeheader()
    w.writerows(result)
print(len(combined), "combined-code tags;", len(result), "rows")

# Attributes inside sequence items: the type in the item description of the enclosing sequence path (the
# keywords of the sequences from the top level down), strictest over every module and macro of the
# extraction, whatever the IOD (the item descriptions of one path barely differ between IODs). For the
# combined-code tags every path; for plain-X tags only the paths where an item requires them (Type 1/2,
# e.g. Requested Procedure ID in an SR's Referenced Request Sequence), where removal would break the item.
plain_x = {r["tag"] for r in rows if r["basic"] == "X"}
nested: dict[tuple[str, str], set[str]] = {}
for m, attrs in mods.items():
    for a in attrs:
        tag = tag_for_keyword(a["keyword"])
        if not a["path"] or tag is None or f"{tag:08X}" not in combined | plain_x or a["type"] not in RANK:
            continue
        nested.setdefault((".".join(a["path"]), f"{tag:08X}"), set()).add(a["type"])
nested = {k: v for k, v in nested.items() if k[1] in combined or v & {"1", "1C", "2", "2C"}}
nested_out = out.with_name("iod_nested_attribute_types.csv")
with nested_out.open("w", encoding="utf-8", newline="") as f:
    w = csv.DictWriter(f, ["path", "tag", "type", "types_seen"], lineterminator="\n")
    w.writeheader()
    for (path, t), types in sorted(nested.items()):
        ranked = sorted(types, key=RANK.get)
        w.writerow(dict(path=path, tag=t, type=ranked[0], types_seen=" ".join(ranked)))
print(len(nested), "nested (path, tag) rows")
