"""Figures of the one-class chapter (05): the boundary around normality, embeddings, training, sweeps.

* :func:`normality_views` — the 2-D toy of :mod:`uiad_lite.methods.one_class.toy`: one panel per view
  (Gaussian density, discriminator trained on Gaussian noise, with GLASS's gradient ascent), the
  anomaly-score surface as contours, normal points and the synthetic negatives on top.
* :func:`embedding_projection` — embeddings of several groups (normal train, good test, defects,
  simulated) on the first two principal components of the normal training embeddings.
* :func:`training_curves` — one line per detector: loss (and optionally accuracy) per epoch.
* :func:`sweep_chart` — a metric against a swept parameter (log axis), one line per series.
* :func:`per_defect_heatmap` — methods × defect types, coloured by a metric, values written in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from uiad_lite.methods.one_class.toy import ToyNormality


def normality_views(
    toy: ToyNormality, title: str = "Three boundaries around the same normal data"
) -> go.Figure:
    """One panel per surface of ``toy``: score contours (clipped at the 95th percentile so the region
    near the data keeps its detail), normal points, and the negatives each classifier was trained on."""
    names = list(toy.surfaces)
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.04)
    negatives = {
        1: ("Gaussian noise (SimpleNet)", toy.noisy),
        2: ("after gradient ascent (GLASS)", toy.ascended),
    }
    for column, name in enumerate(names, start=1):
        surface = toy.surfaces[name]
        high = float(np.percentile(surface, 95))
        figure.add_trace(
            go.Contour(
                x=toy.xs,
                y=toy.ys,
                z=np.minimum(surface, high),
                colorscale="Magma",
                showscale=False,
                ncontours=18,
                hovertemplate="x %{x:.2f}, y %{y:.2f}<br>anomaly score %{z:.3g}<extra></extra>",
            ),
            1,
            column,
        )
        if column - 1 in negatives:
            label, points = negatives[column - 1]
            figure.add_trace(
                go.Scatter(
                    x=points[:, 0],
                    y=points[:, 1],
                    mode="markers",
                    name=label,
                    marker=dict(size=4, color="#00CC96", symbol="x"),
                ),
                1,
                column,
            )
        figure.add_trace(
            go.Scatter(
                x=toy.normal[:, 0],
                y=toy.normal[:, 1],
                mode="markers",
                name="normal",
                showlegend=column == 1,
                marker=dict(size=4, color="white", line=dict(width=0.5, color="black")),
            ),
            1,
            column,
        )
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False)
    figure.update_layout(
        title=title, height=380, legend=dict(orientation="h", y=-0.08), margin=dict(t=70, b=40)
    )
    return figure


def _principal_axes(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = reference.mean(axis=0)
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    return mean, vt[:2].T


def embedding_projection(groups: Mapping[str, np.ndarray], reference: str, title: str = "") -> go.Figure:
    """Every group of (n, d) embeddings (L2-normalised, as the GDE sees them) projected on the first two
    principal axes of ``groups[reference]``; its 1-, 2- and 3-sigma ellipses in that plane."""
    if reference not in groups:
        raise ValueError(f"embedding_projection: reference {reference!r} is not one of {list(groups)}")
    unit = {
        name: np.asarray(v, float) / np.linalg.norm(np.asarray(v, float), axis=1, keepdims=True)
        for name, v in groups.items()
        if len(v)
    }
    mean, axes = _principal_axes(unit[reference])
    figure = go.Figure()
    for index, (name, points) in enumerate(unit.items()):
        plane = (points - mean) @ axes
        figure.add_trace(
            go.Scatter(
                x=plane[:, 0],
                y=plane[:, 1],
                mode="markers",
                name=f"{name} ({len(points)})",
                marker=dict(size=6, color=qualitative.Plotly[index % 10], opacity=0.75),
            )
        )
    plane = (unit[reference] - mean) @ axes
    covariance = np.cov(plane, rowvar=False)
    values, vectors = np.linalg.eigh(covariance)
    angle = np.linspace(0, 2 * np.pi, 120)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    for k in (1, 2, 3):
        ellipse = (
            vectors @ (k * np.sqrt(np.maximum(values, 0))[:, None] * circle) + plane.mean(axis=0)[:, None]
        )
        figure.add_trace(
            go.Scatter(
                x=ellipse[0],
                y=ellipse[1],
                mode="lines",
                name=f"{k} sigma",
                showlegend=k == 1,
                line=dict(color="grey", dash="dot", width=1),
                hoverinfo="skip",
            )
        )
    figure.update_layout(
        title=title,
        height=440,
        xaxis_title="principal axis 1",
        yaxis_title="principal axis 2",
        yaxis=dict(scaleanchor="x"),
        legend=dict(orientation="h", y=-0.2),
    )
    return figure


def training_curves(
    histories: Mapping[str, Sequence[float]], title: str = "", yaxis: str = "loss"
) -> go.Figure:
    """One line per entry of ``histories`` (a value per epoch)."""
    figure = go.Figure()
    for index, (name, values) in enumerate(histories.items()):
        figure.add_trace(
            go.Scatter(
                x=np.arange(1, len(values) + 1),
                y=list(values),
                mode="lines+markers",
                name=name,
                line=dict(color=qualitative.Plotly[index % 10]),
            )
        )
    figure.update_layout(title=title, height=340, xaxis_title="epoch", yaxis_title=yaxis)
    return figure


def sweep_chart(
    table: pd.DataFrame,
    x: str,
    metrics: Sequence[str],
    title: str = "",
    log_x: bool = True,
    marker: float | None = None,
    marker_label: str = "",
) -> go.Figure:
    """``metrics`` of ``table`` against column ``x``; an optional vertical line at ``marker``."""
    missing = [column for column in (x, *metrics) if column not in table.columns]
    if missing:
        raise ValueError(f"sweep_chart: table lacks column(s) {missing}")
    ordered = table.sort_values(x)
    figure = go.Figure()
    for index, metric in enumerate(metrics):
        figure.add_trace(
            go.Scatter(
                x=ordered[x],
                y=ordered[metric],
                mode="lines+markers",
                name=metric,
                line=dict(color=qualitative.Plotly[index % 10]),
            )
        )
    if marker is not None:
        figure.add_vline(x=marker, line=dict(color="grey", dash="dash"), annotation_text=marker_label)
    figure.update_layout(title=title, height=360, xaxis_title=x, yaxis=dict(range=[0, 1.02]))
    if log_x:
        figure.update_xaxes(type="log")
    return figure


def per_defect_heatmap(table: pd.DataFrame, value: str = "i_auroc", title: str = "") -> go.Figure:
    """``table`` with columns method, defect, ``value`` -> a methods × defects heatmap with numbers."""
    pivot = table.pivot_table(index="method", columns="defect", values=value, sort=False)
    figure = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(),
            x=list(pivot.columns),
            y=list(pivot.index),
            zmin=0.5,
            zmax=1,
            colorscale="Viridis",
            text=np.round(pivot.to_numpy(), 2),
            texttemplate="%{text}",
            hovertemplate="%{y} on %{x}: %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(title=title, height=120 + 45 * len(pivot), margin=dict(l=110))
    return figure
