"""Integrity of the shipped PS3.15 Table E.1-1 CSV (src/pseudicom/data/ps3_15_table_e1_1.csv)."""
import csv
import importlib.resources
import re

import pytest
from pydicom.datadict import dictionary_is_retired, keyword_for_tag

from pseudicom.profile import Action, ProfileOption, resolve_code, table

HEADER = ["tag", "name", "keyword", "in_std_iod", "retired", "basic",
          "retain_safe_private", "retain_uids", "retain_device_identity", "retain_institution_identity",
          "retain_patient_characteristics", "retain_long_full_dates", "retain_long_modified_dates",
          "clean_descriptors", "clean_structured_content", "clean_graphics"]
OPTION_COLUMNS = HEADER[6:]
BASIC_CODES = {"X", "Z", "D", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
# What each option may do according to PS3.15 E.3: clean options only clean; "retain" options keep
# (Retain Patient Characteristics may also clean; Retain UIDs removes Referenced Patient Sequence);
# the longitudinal options keep (full dates) or shift, i.e. clean (modified dates).
OPTION_CODES = {
    "retain_safe_private": {"C"},
    "retain_uids": {"K", "X"},
    "retain_device_identity": {"K"},
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
    assert len(raw_rows) > 400  # several hundred rows in every recent edition
    assert len(table()) == len(raw_rows)
    assert [r.tag for r in table()] == [r["tag"] for r in raw_rows]


def test_tags_unique_and_well_formed(raw_rows):
    tags = [r["tag"] for r in raw_rows]
    assert len(set(tags)) == len(tags)
    bad = [t for t in tags if not TAG_RE.fullmatch(t)]
    assert not bad, bad
    assert sum("x" in t for t in tags) == 3  # 50xxxxxx, 60xx3000, 60xx4000
    assert tags.count("ggggeeee") == 1       # the private-attributes row


def test_every_concrete_tag_has_pydicom_keyword(raw_rows):
    for r in raw_rows:
        if TAG_RE.fullmatch(r["tag"]) and re.fullmatch(r"[0-9A-F]{8}", r["tag"]):
            tag = int(r["tag"], 16)
            assert r["keyword"] == keyword_for_tag(tag) != "", r
            assert r["retired"] == ("Y" if dictionary_is_retired(tag) else "N"), r
        else:
            assert r["keyword"] == "", r


def test_flags_are_y_or_n(raw_rows):
    for r in raw_rows:
        assert r["in_std_iod"] in {"Y", "N"}, r
        assert r["retired"] in {"Y", "N"}, r
        assert r["name"].strip() == r["name"] != "", r


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
