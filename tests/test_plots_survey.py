"""Survey figures: whole-year axes, every distinct method counted once, dodged markers, whole highlights."""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uiad_lite import survey
from uiad_lite.plots import datasets as dataset_plots
from uiad_lite.plots import survey as plots

REPO = Path(__file__).resolve().parents[1]


def _year_axes(figure) -> list:
    return [axis for name, axis in figure.layout.to_plotly_json().items() if name.startswith("xaxis")]


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.methods_per_year(survey.methods()),
        lambda: plots.datasets_scatter(survey.datasets()),
        lambda: plots.methods_strip(survey.methods(table=9)),
    ],
    ids=["methods_per_year", "datasets_scatter", "methods_strip"],
)
def test_year_axes_show_whole_years(make):
    axes = _year_axes(make())
    assert axes
    for axis in axes:
        assert axis.get("dtick") == 1 and axis.get("tickformat") == "d"


def test_methods_per_year_counts_each_distinct_method_once_including_tables_8_and_9():
    with (REPO / "uiad_lite" / "survey" / "methods.csv").open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["table"]))
    first: dict[str, dict[str, str]] = {}
    for r in rows:
        first.setdefault("SAA/SAA+" if r["method"] == "SAA" else r["method"], r)
    expected: dict[tuple[str, str, int], int] = {}
    for r in first.values():
        key = (r["setting"], r["family"], int(r["year"]))
        expected[key] = expected.get(key, 0) + 1
    figure = plots.methods_per_year(survey.methods())
    drawn: dict[tuple[str, str, int], int] = {}
    for trace in figure.data:
        setting = {"x": "RGB", "x2": "3D", "x3": "multimodal"}[trace.xaxis]
        for year, count in zip(trace.x, trace.y, strict=True):
            drawn[(setting, trace.name, int(year))] = int(count)
    assert drawn == expected
    assert sum(drawn.values()) == 129
    later = ("learning method", "anomaly simulation")  # the families of Tables 8 and 9
    assert sum(count for (_, family, _), count in drawn.items() if family in later) == 25


def test_dodge_spreads_shared_positions_symmetrically():
    offsets = plots.dodge(["a", "b", "a", "a"], width=0.3)
    assert offsets[1] == 0.0
    np.testing.assert_allclose(offsets[[0, 2, 3]], [-0.15, 0.0, 0.15])


def test_table9_strip_has_no_overlapping_markers_and_keeps_the_year():
    table9 = survey.methods(table=9)
    figure = plots.methods_strip(table9)
    positions, names = [], []
    for trace in figure.data:
        for x, y, custom in zip(trace.x, trace.y, trace.customdata, strict=True):
            positions.append((round(float(x), 6), y))
            names.append(custom[0])
            assert round(float(x)) == int(custom[1])  # the dodge stays within half a year
    assert sorted(names) == sorted(table9["method"])
    raw = list(zip(table9["year"], table9["subfamily"], strict=True))
    assert len(set(raw)) < len(raw)  # the table does have shared positions, so the test can fail
    assert len(set(positions)) == len(positions)


def test_highlights_table_shows_every_highlight_whole_and_wraps():
    methods = survey.methods(table=4)
    assert (methods["highlight"].str.len() > pd.get_option("display.max_colwidth")).any()
    page = plots.highlights_table(methods).to_html()
    text = html.unescape(page)
    for highlight in methods["highlight"]:
        assert highlight in text
    assert "white-space: normal" in page
    every = plots.highlights_table(survey.methods())  # names repeat across tables: no index then
    assert all(h in html.unescape(every.to_html()) for h in survey.methods()["highlight"])
    with pytest.raises(ValueError, match="lacks columns"):
        plots.highlights_table(methods.drop(columns="highlight"))


def test_datasets_explorer_says_when_the_survey_pooled_the_good_test_images():
    figure = dataset_plots.datasets_explorer(survey.datasets())
    flagged = {
        name
        for trace in figure.data
        for name, custom in zip(trace.x, trace.customdata, strict=True)
        if custom[4] == dataset_plots.POOLED_NOTE
    }
    table = survey.datasets()
    assert flagged == set(table.loc[table["n_test_good"] == 0, "name"]) == {"VisA", "Real-IAD"}
