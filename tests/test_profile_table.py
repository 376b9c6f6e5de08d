"""Integrity of the shipped PS3.15 Table E.1-1 CSV (src/pseudicom/data/ps3_15_table_e1_1.csv)."""
import csv
import importlib.resources
import re

import pytest
from pydicom.datadict import dictionary_is_retired, keyword_for_tag

from pseudicom.profile import TABLE_EDITION, Action, ProfileOption, resolve_code, row_action, table

HEADER = ["tag", "name", "keyword", "in_std_iod", "retired", "basic",
          "retain_safe_private", "retain_uids", "retain_device_identity", "retain_institution_identity",
          "retain_patient_characteristics", "retain_long_full_dates", "retain_long_modified_dates",
          "clean_descriptors", "clean_structured_content", "clean_graphics",
          "in_current_edition", "options_source"]
OPTION_COLUMNS = HEADER[6:16]
OPTION_SOURCES = {"innolitics", "GRAPHY-Next", "none"}
# Rows of the 2026c edition's Table E.1-1 (kvnlng/Isocenter tests/fixtures/ps3.15-2026c-table-e1-1.json,
# counted when it was transcribed; see ps3_15_table_e1_1.SOURCE.md).
ROWS_2026C = 656
BASIC_CODES = {"X", "Z", "D", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
# What each option may do according to PS3.15 E.3: clean options only clean; "retain" options keep
# (Retain Patient Characteristics may also clean; Retain Device Identity cleans AE titles; Retain UIDs
# removes Referenced Patient Sequence in the older extraction); the longitudinal options keep (full
# dates) or shift, i.e. clean (modified dates).
OPTION_CODES = {
    "retain_safe_private": {"C"},
    "retain_uids": {"K", "X"},
    "retain_device_identity": {"K", "C"},
    "retain_institution_identity": {"K"},
    "retain_patient_characteristics": {"K", "C"},
    "retain_long_full_dates": {"K"},
    "retain_long_modified_dates": {"C"},
    "clean_descriptors": {"C"},
    "clean_structured_content": {"C"},
    "clean_graphics": {"C"},
}
TAG_RE = re.compile(r"[0-9A-F]{8}|[0-9A-F]{2}xx[0-9A-Fx]{4}|ggggeeee")


@pytest.fixture(scope="module")
def raw_rows():
    ref = importlib.resources.files("pseudicom") / "data" / "ps3_15_table_e1_1.csv"
    with ref.open("r", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = list(reader)
    assert header == HEADER
    return [dict(zip(header, r, strict=True)) for r in body]


def test_row_count_and_loader_agree(raw_rows):
    assert TABLE_EDITION == "2026c"
    current = [r for r in raw_rows if r["in_current_edition"] == "Y"]
    assert len(current) == ROWS_2026C  # every 2026c row, once
    assert len(table()) == len(raw_rows)
    assert [r.tag for r in table()] == [r["tag"] for r in raw_rows]
    assert [r.in_current_edition for r in table()] == [r["in_current_edition"] == "Y" for r in raw_rows]
    assert [r.options_source for r in table()] == [r["options_source"] for r in raw_rows]


def test_tags_unique_and_well_formed(raw_rows):
    tags = [r["tag"] for r in raw_rows]
    assert len(set(tags)) == len(tags)
    bad = [t for t in tags if not TAG_RE.fullmatch(t)]
    assert not bad, bad
    assert sum("x" in t for t in tags) == 3  # 50xxxxxx, 60xx3000, 60xx4000
    assert tags.count("ggggeeee") == 1       # the private-attributes row


def test_keywords_are_pydicoms(raw_rows):
    unknown = []
    for r in raw_rows:
        if re.fullmatch(r"[0-9A-F]{8}", r["tag"]):
            tag = int(r["tag"], 16)
            assert r["keyword"] == keyword_for_tag(tag), r  # empty only where pydicom does not know the tag
            if not r["keyword"]:
                unknown.append(r["name"])
                continue
            # the 2026c Retd. column may retire more than pydicom's older dictionary, never less
            if dictionary_is_retired(tag):
                assert r["retired"] == "Y", r
            if r["in_current_edition"] == "N":
                assert r["retired"] == ("Y" if dictionary_is_retired(tag) else "N"), r
        else:
            assert r["keyword"] == "", r
    assert len(unknown) < len(raw_rows) // 10, unknown  # a few tags newer than pydicom's dictionary


def test_flags_are_y_or_n(raw_rows):
    for r in raw_rows:
        # "In Std. Comp. IOD" comes with the option columns: unknown only where no source has the row
        assert r["in_std_iod"] in ({"Y", "N"} if r["options_source"] != "none" else {""}), r
        assert r["retired"] in {"Y", "N"}, r
        assert r["in_current_edition"] in {"Y", "N"}, r
        assert r["name"].strip() == r["name"] != "", r


def test_options_source(raw_rows):
    for r in raw_rows:
        assert r["options_source"] in OPTION_SOURCES, r
        if r["options_source"] == "none":
            assert not any(r[c] for c in OPTION_COLUMNS), r
        if r["in_current_edition"] == "N":  # only the older extraction has it, options included
            assert r["options_source"] == "innolitics", r


@pytest.mark.parametrize("tag,name,basic", [
    ("00100020", "Patient ID", "Z/D"),
    ("00080012", "Instance Creation Date", "X/D"),
    ("00080013", "Instance Creation Time", "X/Z/D"),
    ("00080015", "Instance Coercion DateTime", "X"),
    ("00080019", "Pyramid UID", "U"),
    ("00100041", "Gender Identity Sequence", "X"),
    ("00100014", "Third Person Pronouns Sequence", "X"),
    ("00100015", "Pronoun Code Sequence", "X"),
    ("0040E012", "Display URI", "X"),
])
def test_current_edition_rows(raw_rows, tag, name, basic):
    row = next(r for r in raw_rows if r["tag"] == tag)
    assert (row["name"], row["basic"], row["in_current_edition"]) == (name, basic, "Y")


def test_rows_without_option_codes_keep_the_basic_action():
    none_rows = [r for r in table() if r.options_source == "none"]
    assert none_rows  # Display URI (new in 2026c) has option codes in no source we found
    every = [o for o in ProfileOption if o is not ProfileOption.RETAIN_LONG_FULL_DATES]
    for r in none_rows:
        for t in (None, "1", "2", "3"):
            assert row_action(r, frozenset(every), t) == resolve_code(r.basic, t), r


def test_basic_codes_allowed(raw_rows):
    bad = [(r["tag"], r["basic"]) for r in raw_rows if r["basic"] not in BASIC_CODES]
    assert not bad, bad


def test_option_columns_only_use_codes_the_standard_uses(raw_rows):
    for col in OPTION_COLUMNS:
        used = {r[col] for r in raw_rows} - {""}
        assert used, f"option column {col} is empty"
        assert used <= OPTION_CODES[col], (col, used - OPTION_CODES[col])


def test_option_columns_match_enum():
    assert set(OPTION_COLUMNS) <= {o.value for o in ProfileOption}
    assert {o.value for o in ProfileOption} - set(OPTION_COLUMNS) == {"clean_pixel_data", "clean_recognizable_visual_features"}


def test_longitudinal_options_pair_up(raw_rows):
    # every row that keeps full dates is shifted under modified dates, and vice versa
    for r in raw_rows:
        assert bool(r["retain_long_full_dates"]) == bool(r["retain_long_modified_dates"]), r


@pytest.mark.parametrize("attribute_type", [None, "1", "1C", "2", "2C", "3"])
def test_every_code_resolves(raw_rows, attribute_type):
    codes = {r["basic"] for r in raw_rows} | {r[c] for r in raw_rows for c in OPTION_COLUMNS} - {""}
    for code in codes:
        assert isinstance(resolve_code(code, attribute_type), Action)
