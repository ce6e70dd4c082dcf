"""Maps of the survey built from :mod:`uiad_lite.survey` (methods per family and year, datasets).

Year axes show whole years (one tick per year, no "2,021.5"); tables of the one-line highlights
wrap their text instead of truncating it; markers that share a year and a row are spread apart
deterministically, so none hides another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from uiad_lite.survey import SAME_METHOD

#: Axis settings for a year axis: one tick per whole year, printed as an integer.
YEAR_AXIS = dict(dtick=1, tickformat="d")


def _one_row_per_method(methods: pd.DataFrame) -> pd.DataFrame:
    """Each distinct method once (aliases merged), from its first table: Tables 4-7 give the paradigm."""
    frame = methods.assign(method=methods["method"].replace(SAME_METHOD))
    return frame.sort_values("table", kind="stable").drop_duplicates("method")


def methods_per_year(methods: pd.DataFrame) -> go.Figure:
    """Stacked bars: distinct methods per family and year, one panel per setting (Tables 4-9).

    A method listed in two tables is counted once, under the family of its first table, so Tables
    4-7 give the paradigm and the methods only Tables 8 (learning settings) and 9 (anomaly
    simulation) list appear under "learning method" and "anomaly simulation". Accepts
    :func:`uiad_lite.survey.methods` or :func:`uiad_lite.survey.distinct_methods`.
    """
    missing = {"method", "table", "year", "setting", "family"} - set(methods.columns)
    if missing:
        raise ValueError(f"methods_per_year: the table lacks columns {sorted(missing)}")
    counts = (
        _one_row_per_method(methods)
        .groupby(["setting", "family", "year"])
        .size()
        .rename("methods")
        .reset_index()
    )
    figure = px.bar(
        counts,
        x="year",
        y="methods",
        color="family",
        facet_col="setting",
        category_orders={"setting": ["RGB", "3D", "multimodal"]},
        title=f"The {int(counts['methods'].sum())} distinct methods of the survey's Tables 4-9, "
        "per family and year",
        hover_data={"setting": True, "family": True, "year": True, "methods": True},
    )
    figure.update_layout(height=420, legend_title_text="family (first table listing it)", bargap=0.1)
    figure.update_xaxes(**YEAR_AXIS)
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return figure


def family_sunburst(methods: pd.DataFrame) -> go.Figure:
    """Setting → family → sub-family, sized by the number of methods (click to zoom in).

    A method listed in two tables under two families (e.g. DRÆM: reconstruction in Table 5, anomaly
    simulation in Table 9) sits in both sectors, so the sectors add up to more than the distinct methods.
    """
    table = methods.assign(method=methods["method"].replace(SAME_METHOD))
    table = table.drop_duplicates(["method", "setting", "family", "subfamily"])
    table = table.fillna({"subfamily": "not specified"})
    table = table.groupby(["setting", "family", "subfamily"]).size().rename("methods").reset_index()
    figure = px.sunburst(
        table,
        path=["setting", "family", "subfamily"],
        values="methods",
        title="The survey's taxonomy, Tables 4-9 (a method in two families counts in both; click to zoom)",
    )
    figure.update_layout(height=520, margin=dict(l=10, r=10, t=50, b=10))
    return figure


def datasets_scatter(datasets: pd.DataFrame) -> go.Figure:
    """Datasets by year and total size (log scale), coloured by modality, marker by real/synthetic."""
    figure = px.scatter(
        datasets,
        x="year",
        y="n_total",
        color="modality",
        symbol="type",
        size="n_classes",
        hover_name="name",
        log_y=True,
        size_max=28,
        hover_data={
            "n_train": True,
            "n_test_good": True,
            "n_test_anomaly": True,
            "n_classes": True,
            "year": True,
            "n_total": True,
        },
        title="UIAD datasets: size, year, modality (marker size = number of classes)",
    )
    figure.update_layout(height=460, yaxis_title="images / clouds in total (log)")
    figure.update_xaxes(**YEAR_AXIS)
    return figure


def dodge(keys: Sequence, width: float = 0.6) -> np.ndarray:
    """Offsets that spread items sharing a key side by side, centred on 0, at most ``width`` apart
    end to end; an item alone gets 0. Deterministic: items keep their order within a key."""
    keys = list(keys)
    offsets = np.zeros(len(keys))
    groups: dict = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        if len(members) > 1:
            step = min(width / (len(members) - 1), 0.15)
            offsets[members] = (np.arange(len(members)) - (len(members) - 1) / 2) * step
    return offsets


def methods_strip(
    methods: pd.DataFrame,
    row: str = "subfamily",
    color: str = "setting",
    title: str = "Methods by year",
    row_label: str | None = None,
) -> go.Figure:
    """One marker per method at (year, ``row``), coloured by ``color``; hover gives the highlight.

    Markers sharing a year and a row are dodged along the year axis (:func:`dodge`), so none hides
    another; the hover still gives the true year. Rows follow the order of first appearance.
    """
    missing = {"method", "year", "highlight", row, color} - set(methods.columns)
    if missing:
        raise ValueError(f"methods_strip: the table lacks columns {sorted(missing)}")
    frame = methods.fillna({row: "not specified"}).sort_values(["year", "method"], kind="stable")
    rows = list(dict.fromkeys(methods[row].fillna("not specified")))
    frame = frame.assign(x=frame["year"] + dodge(list(zip(frame["year"], frame[row], strict=True))))
    figure = go.Figure()
    for value, group in frame.groupby(color, sort=False):
        figure.add_trace(
            go.Scatter(
                x=group["x"].to_numpy(),
                y=group[row].tolist(),
                mode="markers",
                name=str(value),
                marker=dict(size=11, line=dict(width=1, color="white")),
                customdata=np.column_stack([group["method"], group["year"], group["highlight"]]),
                hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]}<extra></extra>",
            )
        )
    figure.update_layout(title=title, height=120 + 60 * len(rows), legend_title_text=color)
    figure.update_xaxes(title_text="year", **YEAR_AXIS)
    figure.update_yaxes(title_text=row_label or row, categoryorder="array", categoryarray=rows[::-1])
    return figure


def highlights_table(
    methods: pd.DataFrame,
    columns: Sequence[str] = ("year", "method", "highlight"),
    index: str | None = "method",
) -> Styler:
    """The methods with their one-line highlights shown whole: a styled table whose text wraps
    (pandas would otherwise cut long cells at ``display.max_colwidth`` characters with "...")."""
    missing = set(columns) - set(methods.columns)
    if missing:
        raise ValueError(f"highlights_table: the table lacks columns {sorted(missing)}")
    frame = methods[list(columns)]
    if index is not None and frame[index].is_unique:
        frame = frame.set_index(index)
    else:  # a method listed in two tables: keep the name as a column
        frame = frame.reset_index(drop=True)
    styler = frame.style.format(escape="html")
    styler = styler.set_properties(**{"white-space": "normal", "text-align": "left"})
    if isinstance(frame.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    if "highlight" in frame.columns:
        styler = styler.set_properties(subset=["highlight"], **{"min-width": "28em"})
    return styler
