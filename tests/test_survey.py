"""Tests of uiad_lite.survey: the survey's tables as data and book/references.bib.

Expected counts below were counted by hand in the survey's text extraction
(shared/seed/000_566f176d04df81bb.txt): the printed rows between each table's header line
("Methods Year Paradigm Highlight" / "# Train # Test ...") and its caption ("Table N: ...").
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd
import pybtex.database
import pytest

from uiad_lite import survey

REPO = Path(__file__).resolve().parents[1]
BIB = REPO / "book" / "references.bib"
SEED = Path(os.environ.get("UIAD_SURVEY_TEXT", REPO.parent / "shared" / "seed" / "000_566f176d04df81bb.txt"))
needs_seed = pytest.mark.skipif(not SEED.is_file(), reason=f"survey text not found at {SEED}")

# Table -> rows. Seed lines: T4 151-186, T5 220-249, T6 287-304, T7 333-352, T8 428-460, T9 463-484.
EXPECTED_ROWS = {4: 36, 5: 30, 6: 18, 7: 20, 8: 33, 9: 22}
# (table, family, subfamily) -> rows, counted per paradigm label in the same line ranges.
EXPECTED_GROUPS = {
    (4, "feature embedding", "teacher-student"): 12,  # US .. DMDD
    (4, "feature embedding", "one-class classification"): 6,  # CutPaste .. GLASS
    (4, "feature embedding", "distribution map"): 9,  # FastFlow .. AttentDifferNet
    (4, "feature embedding", "memory bank"): 9,  # PaDiM .. ReConPatch
    (5, "reconstruction", "autoencoder"): 17,  # AE-SSIM .. DC-AE
    (5, "reconstruction", "GAN"): 2,  # SCADN, OCR-GAN
    (5, "reconstruction", "transformer"): 4,  # MeTAL, FOD, AMI-Net, PNPT
    (5, "reconstruction", "diffusion"): 7,  # DDAD .. AnomalySD
    (6, "large model", "GPT"): 5,
    (6, "large model", "CLIP"): 10,
    (6, "large model", "SAM"): 3,
    (7, "feature embedding", "teacher-student"): 3,  # 3D-ST, AST, MMRD
    (7, "feature embedding", "memory bank"): 11,  # 3 in 3D + 7 multimodal + PatchCore+FPFH ('-')
    (7, "reconstruction", ""): 6,  # R3D-AD, EasyNet, DBRN, 3DSR, CFM, 3DRÆM
    (8, "learning method", "meta learning"): 2,
    (8, "learning method", "vanilla few-shot"): 5,
    (8, "learning method", "large model"): 4,
    (8, "learning method", "CLIP"): 9,
    (8, "learning method", "SAM & DINO"): 1,
    (8, "learning method", "vanilla zero-shot"): 1,
    (8, "learning method", "parallel training"): 8,
    (8, "learning method", "continual training"): 3,
    (9, "anomaly simulation", "image"): 12,
    (9, "anomaly simulation", "feature"): 3,
    (9, "anomaly simulation", "image & feature"): 1,  # GLASS
    (9, "anomaly simulation", "depth"): 4,
    (9, "anomaly simulation", "point"): 2,
}
# (table, setting, learning setting) -> rows, from the row-group labels printed in Tables 7-9.
EXPECTED_SETTINGS = {
    (7, "3D", ""): 5,
    (7, "multimodal", ""): 15,
    (8, "RGB", "few-shot"): 11,
    (8, "RGB", "zero-shot"): 11,
    (8, "RGB", "multi-class"): 11,
    (9, "RGB", ""): 16,
    (9, "multimodal", ""): 4,  # the 'Depth' group: RGB-D methods of Table 7
    (9, "3D", ""): 2,  # the 'Point Cloud' group
}
EXPECTED_DATASETS = {"RGB": 13, "3D": 2, "multimodal": 3}  # seed lines 66-83
EXPECTED_REFERENCES = 168  # bullets after the "References" heading, [1] Angiulli .. [168] Zuo


@pytest.fixture(scope="module")
def methods() -> pd.DataFrame:
    return survey.methods()


@pytest.fixture(scope="module")
def refs() -> pd.DataFrame:
    return survey.references()


@pytest.fixture(scope="module")
def bib() -> pybtex.database.BibliographyData:
    return pybtex.database.parse_file(str(BIB))


# --------------------------------------------------------------------------- counts


def test_rows_per_table_match_hand_count(methods):
    assert methods.groupby("table").size().to_dict() == EXPECTED_ROWS
    for table, count in EXPECTED_ROWS.items():
        assert len(survey.methods(table=table)) == count


def test_rows_per_paradigm_match_hand_count(methods):
    counts = methods.fillna({"subfamily": ""}).groupby(["table", "family", "subfamily"]).size().to_dict()
    assert counts == EXPECTED_GROUPS


def test_rows_per_setting_group_match_hand_count(methods):
    later = methods[methods["table"] >= 7].fillna({"learning_setting": ""})
    grouped = later.groupby(["table", "setting", "learning_setting"]).size()
    assert grouped.to_dict() == EXPECTED_SETTINGS
    assert set(methods.loc[methods["table"] <= 6, "setting"]) == {"RGB"}


def test_dataset_and_reference_counts(refs):
    assert survey.datasets().groupby("setting").size().to_dict() == EXPECTED_DATASETS
    assert len(refs) == EXPECTED_REFERENCES


# --------------------------------------------------------------------------- vocabularies and ranges


def test_every_family_and_subfamily_is_known(methods):
    assert set(methods["family"]) <= set(survey.FAMILIES)
    for family, subfamily in zip(methods["family"], methods["subfamily"], strict=True):
        assert subfamily in survey.SUBFAMILIES[family] or pd.isna(subfamily)
    # A missing sub-family only where the survey names none: Table 7's "Reconstruction-based" rows.
    empty = methods[methods["subfamily"].isna()]
    assert set(empty["table"]) == {7} and set(empty["paradigm_as_printed"]) == {"Reconstruction-based"}
    assert set(methods["setting"]) == set(survey.SETTINGS)
    assert set(methods["learning_setting"].dropna()) == set(survey.LEARNING_SETTINGS)
    assert methods.loc[methods["table"] != 8, "learning_setting"].isna().all()
    assert set(survey.TABLE_TITLES) == {2} | set(EXPECTED_ROWS)


def test_years_are_plausible(methods, refs):
    assert methods["year"].between(2018, 2024).all()  # AE-SSIM (2018) is the oldest method listed
    assert survey.datasets()["year"].between(2019, 2024).all()
    assert refs["year"].between(2001, 2024).all()  # Schölkopf et al. 2001 is the oldest reference


def test_table_years_agree_with_cited_paper_within_one_year(methods, refs):
    """Tables date methods by first appearance; the reference list by venue, at most a year apart."""
    years = refs.set_index("number")["year"]
    gap = (methods["year"] - methods["reference"].map(years)).abs()
    assert gap.max() <= 1, methods.loc[gap > 1, ["table", "method"]]


def test_cross_table_year_disagreements_are_exactly_the_documented_ones(methods):
    years = methods.groupby("method")["year"].nunique()
    assert set(years[years > 1].index) == {"DiAD", "DBRN"}
    assert {"DiAD year", "DBRN year"} <= set(survey.ERRATA)


def test_highlights_are_short_and_unique_per_table(methods):
    words = methods["highlight"].str.split().map(len)
    assert words.between(3, 15).all()
    assert not methods.duplicated(["table", "highlight"]).any()


# --------------------------------------------------------------------------- datasets


def test_dataset_totals_add_up_except_the_reported_one():
    data = survey.datasets()
    parts = data[["n_train", "n_test_good", "n_test_anomaly", "n_val"]].fillna(0).sum(axis=1)
    mismatched = data.loc[parts != data["n_total"], "name"].tolist()
    # The survey's own numbers for MVTec 3D-AD do not add up (kept as printed, see ERRATA).
    assert mismatched == ["MVTec 3D-AD"]
    row = data.set_index("name").loc["MVTec 3D-AD"]
    assert parts[data["name"] == "MVTec 3D-AD"].item() - row["n_total"] == 45
    assert "MVTec 3D-AD totals" in survey.ERRATA


def test_dataset_missing_values_are_na_not_zero():
    data = survey.datasets().set_index("name")
    assert pd.isna(data.loc["BTAD", "n_val"]) and pd.isna(data.loc["BTAD", "n_anomaly_types"])
    assert data.loc["VisA", "n_test_good"] == 0  # a printed 0 stays 0
    assert data.loc["MVTec LOCO-AD", "n_val"] == 304
    assert data.loc["MVTec AD", "reference"] == 9 and data.loc["MVTec AD", "extra_reference"] == 7


# --------------------------------------------------------------------------- references and bib


def test_every_cited_number_exists(methods, refs):
    numbers = set(refs["number"])
    assert set(methods["reference"]) <= numbers
    data = survey.datasets()
    assert set(data["reference"]) | set(data["extra_reference"].dropna()) <= numbers


def test_bib_parses_and_holds_exactly_the_csv_keys(bib, refs):
    """The survey's references and the survey itself; a work the survey does not cite (a chapter's method
    outside the survey's tables, e.g. STFPM) only with ``keywords = {not-in-survey}``."""
    extra = {key for key, entry in bib.entries.items() if entry.fields.get("keywords") == "not-in-survey"}
    assert not extra & set(refs["key"]), "a survey reference marked not-in-survey"
    assert set(bib.entries) - extra == set(refs["key"]) | {survey.SURVEY_CITATION}
    assert len(bib.entries) == len(refs) + 1 + len(extra)  # duplicated keys would collapse or fail to parse


def test_bib_entries_match_references_csv(bib, refs):
    for row in refs.itertuples():
        entry = bib.entries[row.key]
        assert entry.type == row.entry_type, row.key
        assert int(entry.fields["year"]) == row.year, row.key
        expected_first = row.authors.split("; ")[0].split(",")[0]
        first_person = entry.persons["author"][0]
        assert expected_first in str(first_person), row.key
    survey_entry = bib.entries[survey.SURVEY_CITATION]
    assert len(survey_entry.persons["author"]) == 11
    assert "Unsupervised Industrial Image Anomaly Detection" in survey_entry.fields["title"]


def test_bib_has_no_unescaped_latex_specials(bib):
    special = re.compile(r"(?<!\\)[&%#_$]")
    for key, entry in bib.entries.items():
        for name, value in entry.fields.items():
            if name != "url":
                assert not special.search(value), (key, name, value)
    april = bib.entries[survey.cite_key("APRIL-GAN")].fields["title"]
    assert r"1\&2" in april


# --------------------------------------------------------------------------- API behaviour


def test_methods_filters_combine_and_ignore_case():
    bank = survey.methods(table=4, family="Feature Embedding", subfamily="memory bank")
    assert len(bank) == 9 and "PatchCore" in set(bank["method"])
    assert set(survey.methods(setting="3d")["method"]) == {
        "3D-ST",
        "Reg3D-AD",
        "Group3AD",
        "PointCore",
        "R3D-AD",
    }
    assert len(survey.methods(learning_setting="zero-shot")) == 11
    assert set(survey.methods(subfamily="CLIP")["table"]) == {6, 8}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "memory"}, "unknown family 'memory'"),
        ({"setting": "rgbd"}, "unknown setting"),
        ({"table": 2}, "use datasets()"),
        ({"table": 3}, "unknown method table 3"),
    ],
)
def test_methods_rejects_unknown_filters(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        survey.methods(**kwargs)


def test_returned_frames_are_copies():
    first = survey.methods()
    first.loc[0, "method"] = "changed"
    assert survey.methods().loc[0, "method"] == "US"
    data = survey.datasets()
    data.loc[0, "n_total"] = -1
    assert survey.datasets().loc[0, "n_total"] == 5354


def test_cite_key_by_number_and_by_name():
    assert survey.cite_key(101) == survey.cite_key("PatchCore") == "roth2022total"
    assert survey.cite_key("[53]") == survey.cite_key("btf") == survey.cite_key("PatchCore+FPFH")
    assert survey.cite_key("draem") == survey.cite_key("DRÆM") == "zavrtanik2021draem"
    assert survey.cite_key("SAA+") == survey.cite_key("SAA/SAA+") == survey.cite_key(20)
    assert survey.cite_key("MVTec AD") == survey.cite_key(9)
    assert survey.cite_key(168) == "zuo2024reconstruction"  # ReconFA, the last reference


@pytest.mark.parametrize(
    "query, message",
    [
        (0, "out of range"),
        (169, "out of range"),
        (True, "expected a reference number"),
        ("Patchcor", "did you mean"),
        ("ClipSAM", "UniAD"),
    ],
)
def test_cite_key_rejects_bad_queries(query, message):
    with pytest.raises(ValueError, match=message):
        survey.cite_key(query)


def test_clipsam_erratum_is_real(methods, refs):
    clipsam = methods.set_index("method").loc["ClipSAM"]
    uniad = methods[methods["method"] == "UniAD"]
    assert clipsam["reference"] == 139 and set(uniad["reference"]) == {139}
    assert refs.set_index("number").loc[139, "title"].startswith("A unified model for multi-class")


def test_cite_key_by_name_returns_the_printed_reference(methods, refs):
    """Every tabulated name resolves to the key of the number printed next to it (ClipSAM aside)."""
    keys = refs.set_index("number")["key"]
    for row in methods[methods["method"] != "ClipSAM"].itertuples():
        assert survey.cite_key(row.method) == keys[row.reference], row.method
        assert survey.cite_key(row.method.lower()) == keys[row.reference], row.method


# --------------------------------------------------------------------------- validation


def _bad(frame: pd.DataFrame, index: int, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[index, column] = value
    return frame


def test_validate_methods_names_the_offending_row(methods):
    row = methods.index[methods["method"] == "PaDiM"][0]
    with pytest.raises(ValueError, match=r"methods.csv row \d+ \(table 4, method 'PaDiM'\): unknown family"):
        survey.validate_methods(_bad(methods, row, "family", "feature hashing"))
    with pytest.raises(ValueError, match="PaDiM.*unknown subfamily 'GAN' for family 'feature embedding'"):
        survey.validate_methods(_bad(methods, row, "subfamily", "GAN"))
    with pytest.raises(ValueError, match="PaDiM.*implausible year 1066"):
        survey.validate_methods(_bad(methods, row, "year", 1066))
    with pytest.raises(ValueError, match="PaDiM.*highlight must have"):
        survey.validate_methods(_bad(methods, row, "highlight", "word " * 16))
    with pytest.raises(ValueError, match="listed twice"):
        survey.validate_methods(pd.concat([methods, methods.iloc[[row]]], ignore_index=True))
    assert survey.validate_methods(methods.copy()) is not None


def test_validate_datasets_and_references(refs):
    data = survey.datasets()
    with pytest.raises(ValueError, match="'BTAD'.*unknown setting 'rgbd'"):
        survey.validate_datasets(_bad(data, 1, "setting", "rgbd"))
    with pytest.raises(ValueError, match="unknown type 'simulated'"):
        survey.validate_datasets(_bad(data, 0, "type", "simulated"))
    with pytest.raises(ValueError, match="duplicated BibTeX key"):
        survey.validate_references(_bad(refs, 1, "key", refs.loc[0, "key"]))
    with pytest.raises(ValueError, match="numbers must run"):
        survey.validate_references(refs.iloc[1:].reset_index(drop=True))


# --------------------------------------------------------------------------- against the source text


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8").replace("\xa0", " ")


@needs_seed
def test_every_method_row_is_printed_in_its_table(methods, seed_text):
    lines = seed_text.splitlines()
    for table, rows in methods.groupby("table"):
        end = next(i for i, line in enumerate(lines) if line.startswith(f"Table {table}:"))
        start = max(i for i in range(end) if lines[i].startswith("Methods Year"))
        block = lines[start + 1 : end]
        assert len(block) == EXPECTED_ROWS[table]
        for row in rows.itertuples():
            printed = f"{row.method} [{row.reference}] {row.year} {row.paradigm_as_printed} "
            assert sum(printed in line for line in block) == 1, (table, printed)


@needs_seed
def test_every_dataset_row_is_printed(seed_text):
    for row in survey.datasets().itertuples():
        refs = f"{row.reference}" + (f", {row.extra_reference}" if pd.notna(row.extra_reference) else "")
        counts = [row.n_train, row.n_test_good, row.n_test_anomaly, row.n_val, row.n_total]
        printed = " ".join("-" if pd.isna(c) else f"{c:,}" for c in counts)
        expected = f"{row.name} [{refs}] {row.year} {row.type.title()} {printed} {row.n_classes} "
        assert expected in seed_text, expected


@needs_seed
def test_references_follow_the_printed_order(refs, seed_text):
    bullets = [
        line for line in seed_text.split("References", 1)[1].splitlines() if line.strip().startswith("•")
    ]
    assert len(bullets) == len(refs)
    for row, bullet in zip(refs.itertuples(), bullets, strict=True):
        assert row.label in bullet and str(row.year) in bullet, row.key


@needs_seed
def test_highlights_are_not_copied_from_the_survey(methods, seed_text):
    """Own words: no highlight shares a run of five words with the survey text."""

    def tokens(text: str) -> list[str]:
        return re.findall(r"[a-z0-9æ+\-]+", text.lower())

    words = tokens(seed_text)
    runs = {tuple(words[i : i + 5]) for i in range(len(words) - 4)}
    for row in methods.itertuples():
        mine = tokens(row.highlight)
        shared = [" ".join(mine[i : i + 5]) for i in range(len(mine) - 4) if tuple(mine[i : i + 5]) in runs]
        assert not shared, (row.table, row.method, shared)


def test_reading_rejects_empty_required_text_and_bad_numbers(methods):
    raw = pd.read_csv(REPO / "uiad_lite" / "survey" / "methods.csv", dtype=str, keep_default_na=False)
    coerced = survey._coerce(raw, survey._METHOD_COLUMNS, "methods.csv")
    pd.testing.assert_frame_equal(coerced, methods)
    with pytest.raises(ValueError, match=r"methods.csv row 4: required column 'method' is empty"):
        survey._coerce(_bad(raw, 2, "method", ""), survey._METHOD_COLUMNS, "methods.csv")
    with pytest.raises(ValueError, match=r"row 3: column 'year' must be a non-negative integer, got '20x1'"):
        survey._coerce(_bad(raw, 1, "year", "20x1"), survey._METHOD_COLUMNS, "methods.csv")
    with pytest.raises(ValueError, match="missing column"):
        survey._coerce(raw.drop(columns="highlight"), survey._METHOD_COLUMNS, "methods.csv")


# --------------------------------------------------------------------------- errata (issue 10, item 8)
# Each count below is computed from the shipped CSVs with the csv module, not through uiad_lite.survey.


def _csv_rows(filename: str) -> list[dict[str, str]]:
    with (REPO / "uiad_lite" / "survey" / filename).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_year_mismatches_with_the_reference_list_are_exactly_the_documented_ones():
    reference_year = {int(r["number"]): int(r["year"]) for r in _csv_rows("references.csv")}
    rows = [(int(r["table"]), r["method"], r) for r in _csv_rows("methods.csv")]
    rows += [(2, r["name"], r) for r in _csv_rows("datasets.csv")]
    found = set()
    for table, name, r in rows:
        year, ref = int(r["year"]), int(r["reference"])
        if year != reference_year[ref]:
            found.add((table, name, year, ref, reference_year[ref]))
    assert found == set(survey.YEAR_MISMATCHES)
    methods_off = {name for table, name, *_ in found if table != 2}
    datasets_off = {name for table, name, *_ in found if table == 2}
    assert len(methods_off) == 12 and len(datasets_off) == 5  # the hand count
    for name in methods_off:
        assert name in survey.ERRATA["Method years vs reference list"], name
    for name in datasets_off:
        assert name in survey.ERRATA["Dataset years vs reference list"], name


def test_distinct_methods_merge_saa_and_count_129():
    rows = _csv_rows("methods.csv")
    names = {r["method"] for r in rows}
    by_reference: dict[str, set[str]] = {}
    for r in rows:
        by_reference.setdefault(r["reference"], set()).add(r["method"])
    shared = {ref: found for ref, found in by_reference.items() if len(found) > 1}
    # [20] is one method under two names; [139] is ClipSAM's miscitation (UniAD's number, see ERRATA).
    assert shared == {"20": {"SAA", "SAA/SAA+"}, "139": {"ClipSAM", "UniAD"}}
    distinct = survey.distinct_methods()
    assert len(names) == 130 and len(distinct) == 129 and distinct["method"].is_unique
    assert "SAA" not in set(distinct["method"]) and "129" in survey.ERRATA["SAA in two tables"]
    in_paradigm_tables = {r["method"] for r in rows if int(r["table"]) <= 7}
    only_later = names - in_paradigm_tables
    assert len(only_later) == 26 and "SAA" in only_later  # 26 names, 25 methods once SAA is merged
    assert set(distinct.loc[distinct["only_in_tables_8_9"], "method"]) == only_later - {"SAA"}
    by_name = distinct.set_index("method")
    assert by_name.loc["SAA/SAA+", "tables"] == "6, 8" and by_name.loc["DRÆM", "tables"] == "5, 9"
    assert by_name.loc["DiAD", "year"] == 2024 and by_name.loc["DiAD", "table"] == 5  # its first table


def test_pooled_dataset_counts_are_documented():
    rows = _csv_rows("datasets.csv")
    pooled = {r["name"]: r for r in rows if r["n_test_good"] == "0"}
    assert set(pooled) == {"VisA", "Real-IAD"}
    text = survey.ERRATA["VisA and Real-IAD pooled counts"]
    for name, r in pooled.items():
        assert name in text and f"{int(r['n_train']):,} train" in text
        # train + anomalous = total: no image is left for a good test set
        assert int(r["n_train"]) + int(r["n_test_anomaly"]) == int(r["n_total"])
