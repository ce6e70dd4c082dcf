"""The dataset registry takes Table 2's facts from uiad_lite.survey: one copy, checked against the CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from uiad_lite import survey
from uiad_lite.data import registry

REPO = Path(__file__).resolve().parents[1]
STATS = {  # registry key -> datasets.csv column
    "train": "n_train",
    "test_good": "n_test_good",
    "test_anomalous": "n_test_anomaly",
    "validation": "n_val",
    "total": "n_total",
    "classes": "n_classes",
    "anomaly_types": "n_anomaly_types",
}


def table2_rows() -> dict[int, dict[str, str]]:
    """datasets.csv read with the csv module, keyed by the survey's reference number."""
    with (REPO / "uiad_lite" / "survey" / "datasets.csv").open(encoding="utf-8", newline="") as handle:
        return {int(row["reference"]): row for row in csv.DictReader(handle)}


def test_every_surveyed_dataset_carries_the_csv_row():
    rows = table2_rows()
    surveyed = [entry for entry in registry.REGISTRY.values() if entry.survey_stats]
    assert len(surveyed) == 9
    for entry in surveyed:
        numbers = [int(n) for n in re.findall(r"\d+", entry.survey_ref)]
        row = rows[numbers[0]]
        assert numbers[1:] == ([int(row["extra_reference"])] if row["extra_reference"] else [])
        assert (entry.year, entry.kind) == (int(row["year"]), row["type"]), entry.name
        for key, column in STATS.items():
            expected = int(row[column]) if row[column] else None
            assert entry.survey_stats[key] == expected, (entry.name, key)
    assert registry.REGISTRY["visa"].survey_stats["test_good"] == 0  # the survey's pooling, kept as printed


def test_registry_reads_table2_at_import_instead_of_keeping_a_copy(monkeypatch):
    source = (REPO / "uiad_lite" / "data" / "registry.py").read_text(encoding="utf-8")
    assert not re.search(r"stats\(\s*\d", source), "registry.py types Table 2 counts by hand again"
    changed = survey.datasets()
    changed.loc[changed["name"] == "BTAD", "n_train"] = 1
    monkeypatch.setattr(survey, "_datasets", lambda: changed)
    assert registry.from_survey("BTAD")["survey_stats"]["train"] == 1


def test_unknown_survey_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'MVTec-AD' is not in the survey's Table 2; known: \['MVTec AD'"):
        registry.from_survey("MVTec-AD")
