"""Figures of the normalizing-flow chapter (06).

* :func:`change_of_variables` — a 2-D toy: the density a flow assigns in data space beside where it
  sends the data in latent space, with a slider over training steps (all steps live in the figure, so it
  works in the static book).
* :func:`likelihood_maps` — per sample: the image, the ground truth, one log-likelihood map per stage and
  the final anomaly map.
* :func:`log_likelihood_histogram` — per-position log-likelihoods of normal and of defective positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from uiad_lite.data.sample import Sample
from uiad_lite.plots.maps import _downsample


def change_of_variables(points: np.ndarray, snapshots: Sequence[Mapping], title: str = "") -> go.Figure:
    """Left: the data and the model density p(x) (colour: log p); right: z = f(x) and circles of radius
    1, 2, 3 of the standard normal. A slider picks the training step."""
    figure = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("data space: x and the model's log p(x)", "latent space: z = f(x) and N(0, I)"),
    )
    per_step = 3
    for index, snap in enumerate(snapshots):
        visible = index == len(snapshots) - 1
        figure.add_trace(
            go.Heatmap(
                x=snap["axis"],
                y=snap["axis"],
                z=np.maximum(snap["log_density"], -12),
                colorscale="Viridis",
                colorbar=dict(title="log p(x)", x=0.44),
                visible=visible,
                hovertemplate="x=(%{x:.2f}, %{y:.2f})<br>log p=%{z:.2f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scattergl(
                x=points[:, 0],
                y=points[:, 1],
                mode="markers",
                visible=visible,
                marker=dict(size=3, color="white", opacity=0.6),
                name="data x",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scattergl(
                x=snap["z"][:, 0],
                y=snap["z"][:, 1],
                mode="markers",
                visible=visible,
                marker=dict(size=3, color=points[:, 0], colorscale="RdBu"),
                name="z = f(x)",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    theta = np.linspace(0, 2 * np.pi, 100)
    for radius in (1, 2, 3):
        figure.add_trace(
            go.Scatter(
                x=radius * np.cos(theta),
                y=radius * np.sin(theta),
                mode="lines",
                line=dict(color="grey", dash="dot", width=1),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    steps = []
    for index, snap in enumerate(snapshots):
        visible = [False] * (per_step * len(snapshots)) + [True] * 3
        visible[per_step * index : per_step * (index + 1)] = [True] * per_step
        steps.append(
            dict(
                method="update",
                label=f"{snap['step']}",
                args=[
                    {"visible": visible},
                    {"title": f"{title} step {snap['step']}: mean -log p(x) = {snap['loss']:.3f}"},
                ],
            )
        )
    figure.update_layout(
        sliders=[dict(active=len(snapshots) - 1, steps=steps, currentvalue=dict(prefix="training step: "))],
        title=f"{title} step {snapshots[-1]['step']}: mean -log p(x) = {snapshots[-1]['loss']:.3f}",
        height=480,
        margin=dict(t=80),
    )
    figure.update_xaxes(range=[-4, 4], row=1, col=2)
    figure.update_yaxes(range=[-4, 4], scaleanchor="x2", row=1, col=2)
    return figure


def likelihood_maps(
    samples: Sequence[Sample],
    stage_maps: Sequence[np.ndarray],
    stage_labels: Sequence[str],
    final_maps: np.ndarray,
    final_label: str = "anomaly map",
    max_side: int = 112,
) -> go.Figure:
    """Rows: image, ground truth, each stage's per-position log-likelihood (one colour scale per row, low
    = unlikely), the final anomaly map. One column per sample."""
    if not samples:
        raise ValueError("likelihood_maps: no samples to show")
    rows = 3 + len(stage_maps)
    labels = ["image", "ground truth", *stage_labels, final_label]
    figure = make_subplots(
        rows=rows,
        cols=len(samples),
        horizontal_spacing=0.01,
        vertical_spacing=0.02,
        row_titles=labels,
        column_titles=[s.defect or "good" for s in samples],
    )
    scales = [(float(np.percentile(m, 1)), float(np.percentile(m, 99.9))) for m in (*stage_maps, final_maps)]
    for column, sample in enumerate(samples, start=1):
        figure.add_trace(go.Image(z=_downsample(np.asarray(sample.image), max_side)), row=1, col=column)
        mask = sample.mask if sample.mask is not None else np.zeros(sample.image.shape[:2])
        figure.add_trace(
            go.Heatmap(
                z=_downsample(mask.astype(float), max_side)[::-1],
                colorscale="gray",
                showscale=False,
                hoverinfo="skip",
            ),
            row=2,
            col=column,
        )
        for row, (values, (low, high)) in enumerate(
            zip((*stage_maps, final_maps), scales, strict=True), start=3
        ):
            last = row == rows
            figure.add_trace(
                go.Heatmap(
                    z=_downsample(np.asarray(values[column - 1], dtype=float), max_side)[::-1],
                    zmin=low,
                    zmax=high,
                    colorscale="Inferno" if last else "Viridis",
                    showscale=column == 1 and last,
                    hovertemplate="%{z:.3g}<extra></extra>",
                ),
                row=row,
                col=column,
            )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(height=130 * rows + 60, margin=dict(l=90, r=10, t=40, b=10))
    return figure


def log_likelihood_histogram(
    values: Mapping[str, np.ndarray], title: str = "", xaxis: str = "log-likelihood per dimension"
) -> go.Figure:
    """Overlaid histograms (each normalised to percent) of the per-position log-likelihoods of each group."""
    figure = go.Figure()
    for name, group in values.items():
        figure.add_trace(
            go.Histogram(
                x=np.asarray(group).ravel(),
                name=f"{name} (n={np.size(group)})",
                histnorm="percent",
                opacity=0.6,
                nbinsx=80,
            )
        )
    figure.update_layout(
        barmode="overlay", title=title, xaxis_title=xaxis, yaxis_title="% of positions", height=380
    )
    return figure
