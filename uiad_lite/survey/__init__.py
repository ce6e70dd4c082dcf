"""The survey's summary tables as data frames, plus its reference list.

Source: Lin et al., "A Survey on RGB, 3D, and Multimodal Approaches for Unsupervised Industrial
Image Anomaly Detection" (2024), BibTeX key :data:`SURVEY_CITATION`.

Shipped files (read with :mod:`importlib.resources`, so they work from an installed wheel):

``datasets.csv``
    Table 2, one row per dataset. Counts are the survey's; ``n_val`` and ``n_anomaly_types`` are
    missing (``<NA>``) where the survey prints "-". ``reference`` is the survey's reference number,
    ``extra_reference`` a second one where the survey gives two (MVTec AD).
``methods.csv``
    Tables 4-9, one row per (table, method); a method listed in two tables has two rows
    (:func:`distinct_methods` gives one row per method).
    ``paradigm_as_printed`` keeps the survey's label; ``family``/``subfamily`` normalise it to the
    vocabularies :data:`FAMILIES` and :data:`SUBFAMILIES`. ``subfamily`` is missing (NaN) where the
    survey names no finer paradigm (the reconstruction rows of Table 7). ``highlight`` is our own one-line
    summary, not the survey's sentence.
``references.csv``
    The reference list, numbered in printed order (the survey cites by these numbers); ``key`` is
    the BibTeX key used in ``book/references.bib``.

"Not given" is missing data: NaN in optional text columns, ``<NA>`` in the nullable ``Int64``
count columns. Required text columns are never empty.
Known inconsistencies in the survey itself are listed in :data:`ERRATA` (the data keeps the
survey's values).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = [
    "ERRATA",
    "FAMILIES",
    "LEARNING_SETTINGS",
    "SAME_METHOD",
    "SETTINGS",
    "SUBFAMILIES",
    "SURVEY_CITATION",
    "TABLE_TITLES",
    "YEAR_MISMATCHES",
    "cite_key",
    "datasets",
    "distinct_methods",
    "methods",
    "references",
    "validate_datasets",
    "validate_methods",
    "validate_references",
]

SURVEY_CITATION = "lin2024survey"

SETTINGS: tuple[str, ...] = ("RGB", "3D", "multimodal")

#: Paradigm families. Tables 4-7 use the survey's top-level paradigms; Table 8 rows are
#: "learning method" and Table 9 rows "anomaly simulation" (the subjects of those tables).
FAMILIES: tuple[str, ...] = (
    "feature embedding",
    "reconstruction",
    "large model",
    "learning method",
    "anomaly simulation",
)

#: Sub-families per family, named after the survey's paradigm columns. For "learning method"
#: (Table 8) the sub-family is the paradigm within the learning setting; for "anomaly simulation"
#: (Table 9) it is the level at which anomalies are synthesised.
SUBFAMILIES: dict[str, tuple[str, ...]] = {
    "feature embedding": ("teacher-student", "one-class classification", "distribution map", "memory bank"),
    "reconstruction": ("autoencoder", "GAN", "transformer", "diffusion"),
    "large model": ("CLIP", "SAM", "GPT"),
    "learning method": (
        "meta learning",
        "vanilla few-shot",
        "large model",
        "CLIP",
        "SAM & DINO",
        "vanilla zero-shot",
        "parallel training",
        "continual training",
    ),
    "anomaly simulation": ("image", "feature", "image & feature", "depth", "point"),
}

#: Row groups of Table 8 (empty for every other table).
LEARNING_SETTINGS: tuple[str, ...] = ("few-shot", "zero-shot", "multi-class")

#: Short titles (our wording) of the survey tables shipped here.
TABLE_TITLES: dict[int, str] = {
    2: "Benchmark datasets for RGB, 3D and RGB+3D anomaly detection",
    4: "RGB methods built on pretrained feature embeddings",
    5: "RGB methods that reconstruct their input",
    6: "RGB methods built on large foundation models",
    7: "Point-cloud and RGB+3D methods",
    8: "Few-shot, zero-shot and multi-class learning methods",
    9: "Anomaly simulation at image, feature, depth and point level",
}
_METHOD_TABLES = tuple(t for t in TABLE_TITLES if t != 2)

#: Places where the survey disagrees with itself. The shipped data keeps the survey's values.
ERRATA: dict[str, str] = {
    "MVTec 3D-AD totals": (
        "Table 2: 2,656 train + 294 good test + 948 anomalous test + 294 validation = 4,192, "
        "but the printed total is 4,147 (4,147 would need 249 good test images)."
    ),
    "ClipSAM reference": (
        "Table 6 and Sec. 3.3.1 cite ClipSAM as [139], which is UniAD (You et al., 2022) in the "
        "reference list; ClipSAM's own paper is not listed."
    ),
    "DiAD year": "Table 5 dates DiAD 2024, Table 8 dates it 2023 (reference [51] is 2024).",
    "DBRN year": "Table 7 dates DBRN 2023, Table 9 dates it 2024 (reference [14] is 2023).",
    "DifferNet highlight": "Table 4 repeats FastFlow's highlight sentence for DifferNet.",
    "PatchCore+FPFH paradigm": (
        "Table 7 prints '-' as its paradigm; we file it under memory bank because it is PatchCore "
        "run on FPFH point descriptors (a mapping choice, not an error in the survey)."
    ),
}

#: Rows whose table year differs from the year of the paper the row cites in the reference list:
#: (table, method or dataset name, year in the table, reference number, year in the reference list).
#: Tables tend to date a work by its first preprint, the reference list by its venue; ClipSAM's
#: mismatch comes from its miscitation (see "ClipSAM reference"). The data keeps the table's year.
YEAR_MISMATCHES: tuple[tuple[int, str, int, int, int], ...] = (
    (4, "PFM", 2023, 120, 2022),
    (5, "SSMCTB", 2022, 90, 2023),
    (5, "TransFusion", 2024, 42, 2023),
    (6, "AnomalyGPT", 2023, 47, 2024),
    (6, "ClipSAM", 2023, 139, 2022),
    (6, "AnomalyCLIP", 2024, 161, 2023),
    (7, "Reg3D-AD", 2024, 80, 2023),
    (7, "CPMF", 2023, 19, 2024),
    (7, "CFM", 2024, 30, 2023),
    (8, "AnomalyGPT", 2023, 47, 2024),
    (8, "AnomalyCLIP", 2024, 161, 2023),
    (8, "DiAD", 2023, 51, 2024),
    (8, "IUF", 2024, 115, 2023),
    (9, "DBRN", 2024, 14, 2023),
    (2, "GoodsAD", 2023, 148, 2024),
    (2, "MAD-Sim", 2023, 160, 2024),
    (2, "DTD-Synthetic", 2024, 2, 2023),
    (2, "Real3D-AD", 2024, 80, 2023),
    (2, "Anomaly-ShapeNet", 2024, 68, 2023),
)

#: Names under which the tables list one and the same method: alias -> the name we count it by.
SAME_METHOD: dict[str, str] = {"SAA": "SAA/SAA+"}


def _mismatch_text(tables: str) -> str:
    rows = [row for row in YEAR_MISMATCHES if (row[0] == 2) == (tables == "2")]
    names = dict.fromkeys(name for _, name, *_ in rows)
    parts = [f"{name} (Table {t}: {year}, [{ref}]: {ref_year})" for t, name, year, ref, ref_year in rows]
    return f"{len(names)} {'datasets' if tables == '2' else 'methods'}: " + "; ".join(parts) + "."


ERRATA.update(
    {
        "Method years vs reference list": (
            "Tables 4-9 date some methods a year apart from the paper their reference number points to, "
            + _mismatch_text("4-9")
            + " The data keeps the tables' years."
        ),
        "Dataset years vs reference list": (
            "Table 2 dates some datasets a year apart from the paper it cites, "
            + _mismatch_text("2")
            + " The data keeps the table's years."
        ),
        "SAA in two tables": (
            "Table 6 lists 'SAA/SAA+' and Table 8 lists 'SAA', both citing [20]: one method under two names, "
            "so the tables hold 129 distinct methods, not the 130 distinct names (see distinct_methods())."
        ),
        "VisA and Real-IAD pooled counts": (
            "Table 2 lists no good test images for VisA (9,621 train, 0 good test, 1,200 anomalous) "
            "and Real-IAD (72,840 train, 0 good test, 78,210 anomalous). For VisA, 9,621 is every normal "
            "image of the dataset: the table pools the images by label, not by the split methods are "
            "evaluated on (an image AUROC needs good test images), and VisA's one-class split "
            "(split_csv/1cls.csv) moves part of the normal images to the test set. Real-IAD's counts are "
            "pooled the same way (0 good test images)."
        ),
    }
)

_DATASET_COLUMNS = {
    "name": "text",
    "setting": "text",
    "year": "int",
    "type": "text",
    "n_train": "count",
    "n_test_good": "count",
    "n_test_anomaly": "count",
    "n_val": "count",
    "n_total": "count",
    "n_classes": "count",
    "n_anomaly_types": "count",
    "modality": "text",
    "reference": "int",
    "extra_reference": "count",
}
_METHOD_COLUMNS = {
    "table": "int",
    "method": "text",
    "year": "int",
    "setting": "text",
    "family": "text",
    "subfamily": "optional text",
    "learning_setting": "optional text",
    "paradigm_as_printed": "text",
    "reference": "int",
    "highlight": "text",
}
_REFERENCE_COLUMNS = {
    "number": "int",
    "key": "text",
    "authors": "text",
    "year": "int",
    "title": "text",
    "venue": "optional text",
    "entry_type": "text",
    "volume": "optional text",
    "pages": "optional text",
    "publisher": "optional text",
    "arxiv": "optional text",
    "url": "optional text",
    "note": "optional text",
    "label": "text",
}
_DATASET_TYPES = ("real", "synthetic")
_ENTRY_TYPES = ("article", "inproceedings", "misc")
_YEAR_RANGE = (1900, 2100)
_HIGHLIGHT_MAX_WORDS = 15


# --------------------------------------------------------------------------- loading


def _read_csv(filename: str, columns: dict[str, str]) -> pd.DataFrame:
    """Read a shipped CSV with explicit dtypes (text, optional text -> NaN if empty, int, count -> Int64)."""
    path = resources.files(__name__).joinpath(filename)
    if not path.is_file():
        raise FileNotFoundError(f"uiad_lite.survey: packaged data file {filename!r} is missing")
    with path.open("r", encoding="utf-8") as handle:
        raw = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return _coerce(raw, columns, filename)


def _coerce(raw: pd.DataFrame, columns: dict[str, str], source: str) -> pd.DataFrame:
    """Turn an all-string frame into typed columns; bad cells raise ValueError naming file, row, column."""
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected {list(columns)}")
    frame = pd.DataFrame(index=raw.index)
    for column, kind in columns.items():
        values = raw[column].astype(str).str.strip()
        if kind in ("text", "optional text"):
            if kind == "text" and (values == "").any():
                row = int(values.index[values == ""][0])
                raise ValueError(f"{source} row {row + 2}: required column {column!r} is empty")
            frame[column] = values.astype(object).where(values != "", np.nan)
            continue
        for row, value in values.items():
            if value == "" and kind == "count":
                continue
            if not re.fullmatch(r"\d+", value):
                raise ValueError(
                    f"{source} row {row + 2}: column {column!r} must be a non-negative integer, got {value!r}"
                )
        numbers = pd.Series([int(v) if v else pd.NA for v in values], index=values.index, dtype="Int64")
        frame[column] = numbers.astype("int64") if kind == "int" else numbers
    return frame


def _row(source: str, frame: pd.DataFrame, index: int, name_column: str) -> str:
    """Human-readable row label, e.g. "methods.csv row 7 (table 4, method 'DMDD')"."""
    label = f"{name_column} {frame.at[index, name_column]!r}"
    if "table" in frame.columns:
        label = f"table {frame.at[index, 'table']}, " + label
    return f"{source} row {index + 2} ({label})"


def _check_choice(source, frame, column, allowed, name_column, optional: bool = False) -> None:
    for index, value in frame[column].items():
        if optional and pd.isna(value):
            continue
        if value not in allowed:
            where = _row(source, frame, index, name_column)
            raise ValueError(f"{where}: unknown {column} {value!r}; expected one of {list(allowed)}")


def _check_years(source, frame, name_column) -> None:
    low, high = _YEAR_RANGE
    for index, year in frame["year"].items():
        if not low <= year <= high:
            raise ValueError(f"{_row(source, frame, index, name_column)}: implausible year {year}")


def validate_datasets(frame: pd.DataFrame, source: str = "datasets.csv") -> pd.DataFrame:
    """Check a Table-2 frame: known setting/type, plausible years, unique names. Returns it."""
    _check_choice(source, frame, "setting", SETTINGS, "name")
    _check_choice(source, frame, "type", _DATASET_TYPES, "name")
    _check_years(source, frame, "name")
    duplicated = frame["name"][frame["name"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{source}: duplicated dataset name(s) {sorted(duplicated)}")
    return frame


def validate_methods(frame: pd.DataFrame, source: str = "methods.csv") -> pd.DataFrame:
    """Check a Tables 4-9 frame against the vocabularies; the error names the offending row."""
    _check_choice(source, frame, "table", _METHOD_TABLES, "method")
    _check_choice(source, frame, "setting", SETTINGS, "method")
    _check_choice(source, frame, "family", FAMILIES, "method")
    for index in frame.index:
        family, subfamily = frame.at[index, "family"], frame.at[index, "subfamily"]
        if not pd.isna(subfamily) and subfamily not in SUBFAMILIES[family]:
            raise ValueError(
                f"{_row(source, frame, index, 'method')}: unknown subfamily {subfamily!r} for family "
                f"{family!r}; expected one of {list(SUBFAMILIES[family])} (or missing)"
            )
    _check_choice(source, frame, "learning_setting", LEARNING_SETTINGS, "method", optional=True)
    _check_years(source, frame, "method")
    for index, text in frame["highlight"].items():
        words = len(text.split())
        if not 0 < words <= _HIGHLIGHT_MAX_WORDS:
            where = _row(source, frame, index, "method")
            raise ValueError(f"{where}: highlight must have 1-{_HIGHLIGHT_MAX_WORDS} words, has {words}")
    duplicated = frame[frame.duplicated(["table", "method"])]
    if len(duplicated):
        first = duplicated.index[0]
        raise ValueError(f"{_row(source, frame, first, 'method')}: method listed twice in the same table")
    return frame


def validate_references(frame: pd.DataFrame, source: str = "references.csv") -> pd.DataFrame:
    """Check the reference list: numbers 1..N in order, unique BibTeX keys, known entry types."""
    expected = list(range(1, len(frame) + 1))
    if list(frame["number"]) != expected:
        raise ValueError(f"{source}: reference numbers must run 1..{len(frame)} in order")
    duplicated = frame["key"][frame["key"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{source}: duplicated BibTeX key(s) {sorted(duplicated)}")
    for index, key in frame["key"].items():
        if not re.fullmatch(r"[a-z0-9]+", key):
            where = _row(source, frame, index, "key")
            raise ValueError(f"{where}: BibTeX key must be lowercase ASCII letters and digits")
    _check_choice(source, frame, "entry_type", _ENTRY_TYPES, "key")
    _check_years(source, frame, "key")
    return frame


@cache
def _datasets() -> pd.DataFrame:
    return validate_datasets(_read_csv("datasets.csv", _DATASET_COLUMNS))


@cache
def _methods() -> pd.DataFrame:
    return validate_methods(_read_csv("methods.csv", _METHOD_COLUMNS))


@cache
def _references() -> pd.DataFrame:
    return validate_references(_read_csv("references.csv", _REFERENCE_COLUMNS))


# --------------------------------------------------------------------------- public API


def datasets() -> pd.DataFrame:
    """Table 2 of the survey: one row per dataset (a fresh copy on every call)."""
    return _datasets().copy()


def references() -> pd.DataFrame:
    """The survey's reference list with BibTeX keys (a fresh copy on every call)."""
    return _references().copy()


def _pick(frame: pd.DataFrame, column: str, value: str | None, allowed: Iterable[str]) -> pd.DataFrame:
    if value is None:
        return frame
    allowed = tuple(allowed)
    matches = [a for a in allowed if a.casefold() == str(value).casefold()]
    if not matches:
        raise ValueError(f"unknown {column} {value!r}; expected one of {list(allowed)}")
    return frame[frame[column] == matches[0]]


def methods(
    table: int | None = None,
    setting: str | None = None,
    family: str | None = None,
    subfamily: str | None = None,
    learning_setting: str | None = None,
) -> pd.DataFrame:
    """Rows of Tables 4-9, optionally filtered (string filters ignore case).

    An unknown filter value raises ``ValueError`` listing the known ones, so a typo never
    silently yields an empty table.
    """
    frame = _methods()
    if table is not None:
        if table not in _METHOD_TABLES:
            hint = " (Table 2 holds datasets: use datasets())" if table == 2 else ""
            raise ValueError(f"unknown method table {table!r}; expected one of {list(_METHOD_TABLES)}{hint}")
        frame = frame[frame["table"] == table]
    frame = _pick(frame, "setting", setting, SETTINGS)
    frame = _pick(frame, "family", family, FAMILIES)
    all_subfamilies = dict.fromkeys(s for group in SUBFAMILIES.values() for s in group)
    frame = _pick(frame, "subfamily", subfamily, all_subfamilies)
    frame = _pick(frame, "learning_setting", learning_setting, LEARNING_SETTINGS)
    return frame.reset_index(drop=True).copy()


def distinct_methods() -> pd.DataFrame:
    """One row per distinct method of Tables 4-9 (129), however many tables list it.

    A method listed twice (e.g. DRÆM in Tables 5 and 9) keeps the row of its first table, so Tables
    4-7 give its paradigm family and Tables 8-9 only the 25 methods no other table lists; names in
    :data:`SAME_METHOD` are merged (SAA, see :data:`ERRATA`). Added columns: ``tables`` (the tables
    listing it, e.g. ``"5, 9"``) and ``only_in_tables_8_9`` (True for the methods the paradigm tables
    4-7 do not list).
    """
    frame = _methods().assign(method=lambda f: f["method"].replace(SAME_METHOD))
    frame = frame.sort_values(["table"], kind="stable")
    tables = frame.groupby("method", sort=False)["table"].agg(lambda t: ", ".join(map(str, sorted(set(t)))))
    first = frame.drop_duplicates("method").set_index("method")
    first["tables"] = tables
    first["only_in_tables_8_9"] = first["table"] >= 8
    return first.reset_index().sort_values(["table", "method"], kind="stable").reset_index(drop=True)


def _normalise_name(name: str) -> str:
    """'DRÆM' -> 'draem', 'CLIP-AD' -> 'clipad': case, ligature and punctuation insensitive."""
    folded = name.casefold().replace("æ", "ae")
    return re.sub(r"[^a-z0-9+]", "", folded)


#: Names the survey's text uses for a tabulated method under another label (BTF [53] in Sec. 5.3).
_ALIASES: dict[str, int] = {"BTF": 53}
#: Names whose printed reference number points at a different paper (see ERRATA).
_MISCITED: dict[str, str] = {"clipsam": "ClipSAM reference"}


@cache
def _name_index() -> dict[str, frozenset[int]]:
    """Normalised method/dataset name (and each '/'-separated alias) -> survey reference numbers."""
    index: dict[str, set[int]] = {}
    pairs = list(zip(_methods()["method"], _methods()["reference"], strict=True))
    pairs += list(zip(_datasets()["name"], _datasets()["reference"], strict=True))
    pairs += list(_ALIASES.items())
    for name, number in pairs:
        for alias in {name, *name.split("/")}:
            index.setdefault(_normalise_name(alias), set()).add(int(number))
    return {name: frozenset(numbers) for name, numbers in index.items()}


def cite_key(method_or_ref_number: int | str) -> str:
    """BibTeX key for a survey reference number (``53``) or a method/dataset name (``"PatchCore"``).

    Names are matched ignoring case and punctuation (``"draem"`` finds ``DRÆM``). Raises
    ``ValueError`` for an unknown number or name, a name the survey cites ambiguously, or one
    whose printed number points at another paper (ClipSAM, see :data:`ERRATA`).
    """
    refs = _references()
    if isinstance(method_or_ref_number, bool):
        raise ValueError(f"expected a reference number or a method name, got {method_or_ref_number!r}")
    if isinstance(method_or_ref_number, str) and re.fullmatch(r"\[?\d+\]?", method_or_ref_number.strip()):
        method_or_ref_number = int(method_or_ref_number.strip("[] "))
    if isinstance(method_or_ref_number, int):
        if not 1 <= method_or_ref_number <= len(refs):
            raise ValueError(f"reference number {method_or_ref_number} out of range 1..{len(refs)}")
        return str(refs.loc[refs["number"] == method_or_ref_number, "key"].iloc[0])
    if not isinstance(method_or_ref_number, str):
        raise ValueError(f"expected a reference number or a method name, got {method_or_ref_number!r}")
    normalised = _normalise_name(method_or_ref_number)
    if normalised in _MISCITED:
        erratum = _MISCITED[normalised]
        raise ValueError(f"no trustworthy reference for {method_or_ref_number!r}: {ERRATA[erratum]}")
    numbers = _name_index().get(normalised)
    if numbers is None:
        known = sorted(set(_methods()["method"]) | set(_datasets()["name"]))
        close = difflib.get_close_matches(method_or_ref_number, known, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"{method_or_ref_number!r} is not a method or dataset in the survey's tables{hint}")
    if len(numbers) > 1:
        raise ValueError(f"{method_or_ref_number!r} is cited with several references {sorted(numbers)}")
    return cite_key(next(iter(numbers)))
