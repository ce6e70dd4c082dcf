"""Figures of chapter 09 (point clouds): interactive 3D scatters of clouds, registrations and point scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _thin(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` rows, evenly random (keeps pages light)."""
    if len(points) <= max_points:
        return np.arange(len(points))
    return np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))


def _scatter(
    points: np.ndarray,
    name: str,
    color=None,
    colorscale: str = "Viridis",
    size: float = 2.0,
    showscale: bool = False,
    colorbar_x: float | None = None,
) -> go.Scatter3d:
    marker = dict(
        size=size,
        color=color,
        colorscale=colorscale if not isinstance(color, str) else None,
        showscale=showscale,
    )
    if showscale and colorbar_x is not None:
        marker["colorbar"] = dict(x=colorbar_x, len=0.8, thickness=12)
    return go.Scatter3d(
        x=points[:, 0], y=points[:, 1], z=points[:, 2], mode="markers", name=name, marker=marker
    )


def _scenes(figure: go.Figure, count: int) -> None:
    for index in range(count):
        key = "scene" if index == 0 else f"scene{index + 1}"
        figure.layout[key].update(aspectmode="data", xaxis_title="x", yaxis_title="y", zaxis_title="z")


def registration_views(
    template: np.ndarray, before: np.ndarray, after: np.ndarray, title: str = "", max_points: int = 2500
) -> go.Figure:
    """Two 3D panels: the template (grey) with the test cloud as it came (left) and after registration
    (right)."""
    figure = make_subplots(
        rows=1,
        cols=2,
        specs=[[{"type": "scene"}, {"type": "scene"}]],
        subplot_titles=["before registration", "after RANSAC + ICP"],
    )
    keep_t, keep_s = _thin(template, max_points), _thin(before, max_points, 1)
    for col, moved in ((1, before), (2, after)):
        figure.add_trace(_scatter(template[keep_t], "template", "lightgrey", showscale=False), 1, col)
        figure.add_trace(_scatter(moved[keep_s], "test cloud", "crimson"), 1, col)
    figure.update_traces(showlegend=False)
    figure.data[0].showlegend = figure.data[1].showlegend = True
    _scenes(figure, 2)
    figure.update_layout(title=title, height=430, margin=dict(l=0, r=0, t=60, b=0))
    return figure


def point_score_views(
    points: np.ndarray, scores: np.ndarray, labels: np.ndarray | None, title: str = "", max_points: int = 4000
) -> go.Figure:
    """The cloud coloured by its per-point anomaly score (left) and by its ground truth (right)."""
    keep = _thin(points, max_points)
    has_truth = labels is not None
    figure = make_subplots(
        rows=1,
        cols=2 if has_truth else 1,
        specs=[[{"type": "scene"}] * (2 if has_truth else 1)],
        subplot_titles=["anomaly score per point", "ground truth"][: 2 if has_truth else 1],
    )
    figure.add_trace(
        _scatter(points[keep], "score", scores[keep], "Inferno", showscale=True, colorbar_x=0.45), 1, 1
    )
    if has_truth:
        truth = np.where(labels[keep], "crimson", "lightgrey")
        figure.add_trace(_scatter(points[keep], "ground truth", truth.tolist()), 1, 2)
    figure.update_traces(showlegend=False)
    _scenes(figure, 2 if has_truth else 1)
    figure.update_layout(title=title, height=430, margin=dict(l=0, r=0, t=60, b=0))
    return figure


def organised_views(
    xyz: np.ndarray, image: np.ndarray | None, title: str = "", max_points: int = 6000
) -> go.Figure:
    """An organised cloud three ways: its RGB image, its depth (z) image with missing points blank, and the
    valid points as an interactive 3D scatter."""
    figure = make_subplots(
        rows=1,
        cols=3,
        specs=[[{"type": "xy"}, {"type": "xy"}, {"type": "scene"}]],
        subplot_titles=["RGB", "z per pixel (blank = no point)", "the same points in 3D"],
        column_widths=[0.3, 0.3, 0.4],
    )
    if image is not None:
        figure.add_trace(go.Image(z=image), 1, 1)
    valid = np.all(xyz != 0, axis=-1)
    depth = np.where(valid, xyz[..., 2], np.nan)
    figure.add_trace(go.Heatmap(z=depth, colorscale="Viridis", showscale=False), 1, 2)
    figure.update_yaxes(autorange="reversed", scaleanchor="x2", row=1, col=2)
    points = xyz[valid]
    keep = _thin(points, max_points)
    figure.add_trace(_scatter(points[keep], "points", points[keep, 2], size=1.5), 1, 3)
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False)
    figure.layout.scene.update(aspectmode="data")
    figure.update_layout(title=title, height=360, margin=dict(l=0, r=0, t=60, b=0), showlegend=False)
    return figure


def descriptor_bars(descriptors: Mapping[str, np.ndarray], title: str = "") -> go.Figure:
    """33-bin FPFH histograms of a few named points, side by side (bins 0-10, 11-21, 22-32: three angles)."""
    figure = go.Figure()
    for name, values in descriptors.items():
        figure.add_trace(go.Bar(x=np.arange(len(values)), y=values, name=name))
    for edge in (10.5, 21.5):
        figure.add_vline(x=edge, line_dash="dot", line_color="grey")
    figure.update_layout(
        title=title, barmode="group", xaxis_title="FPFH bin", yaxis_title="share (%)", height=330
    )
    return figure


def defect_type_bars(table: pd.DataFrame, value: str, title: str = "") -> go.Figure:
    """Grouped bars: ``value`` per defect type (x) and method (colour) from a long table with columns
    method, defect, ``value``."""
    figure = go.Figure()
    for method, rows in table.groupby("method", sort=False):
        figure.add_trace(go.Bar(x=rows["defect"], y=rows[value], name=method))
    figure.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance")
    figure.update_layout(title=title, barmode="group", yaxis_range=[0, 1.02], yaxis_title=value, height=360)
    return figure


def survey_3d_strip(rows: pd.DataFrame, title: str = "") -> go.Figure:
    """Methods of the survey's Table 7 by year and sub-family (also shown when a dataset has no 3D data)."""
    from uiad_lite.plots.survey import methods_strip

    return methods_strip(rows, row="subfamily", color="setting", title=title)


__all__: Sequence[str] = [
    "registration_views",
    "point_score_views",
    "organised_views",
    "descriptor_bars",
    "defect_type_bars",
    "survey_3d_strip",
]
