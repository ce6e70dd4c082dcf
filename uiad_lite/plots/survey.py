"""Maps of the survey built from :mod:`uiad_lite.survey` (methods per family and year, datasets)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def methods_per_year(methods: pd.DataFrame) -> go.Figure:
    """Stacked bars: methods per paradigm family and year, one panel per setting (Tables 4-7).

    Tables 8 (learning settings) and 9 (anomaly simulation) re-list methods of Tables 4-7 under another
    angle, so they are left out here to count each method once per paradigm.
    """
    counts = (
        methods[methods["table"].between(4, 7)]
        .drop_duplicates(["method", "family", "setting"])
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
        title="Methods reviewed by the survey, per paradigm family and year",
        hover_data={"setting": True, "family": True, "year": True, "methods": True},
    )
    figure.update_layout(height=420, legend_title_text="family", bargap=0.1)
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return figure


def family_sunburst(methods: pd.DataFrame) -> go.Figure:
    """Setting → family → sub-family, sized by the number of methods (click to zoom in)."""
    table = methods.drop_duplicates(["method", "setting", "family", "subfamily"])
    table = table.fillna({"subfamily": "not specified"})
    table = table.groupby(["setting", "family", "subfamily"]).size().rename("methods").reset_index()
    figure = px.sunburst(
        table,
        path=["setting", "family", "subfamily"],
        values="methods",
        title="The survey's taxonomy (click a sector to zoom)",
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
    return figure
