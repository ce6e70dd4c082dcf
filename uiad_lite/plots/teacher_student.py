"""Figures of the teacher-student chapter.

* :func:`training_curves` — loss per epoch, one panel per method, one line per category (log scale;
  click a legend entry to hide a category in every panel).
* :func:`map_panels` — rows of images: the test image, its ground truth and any number of named maps
  (per-stage discrepancies, EfficientAD's two branches), each map with its own colour scale or a
  shared one per column.
* :func:`latency_accuracy` — predict milliseconds per image against image AUROC, one marker per
  method and category, the mean per method larger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.plots.maps import _downsample, png_data_uri


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> go.Figure:
    """``histories[method][category]`` = mean training loss per epoch."""
    if not histories:
        raise ValueError("training_curves: no histories given")
    methods = list(histories)
    categories = list(dict.fromkeys(c for per in histories.values() for c in per))
    colours = {c: qualitative.Plotly[i % len(qualitative.Plotly)] for i, c in enumerate(categories)}
    figure = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, horizontal_spacing=0.07)
    for column, method in enumerate(methods, start=1):
        for category, losses in histories[method].items():
            figure.add_trace(
                go.Scatter(
                    x=np.arange(1, len(losses) + 1), y=np.asarray(losses, float), mode="lines+markers",
                    name=category, legendgroup=category, showlegend=column == 1,
                    line=dict(color=colours[category]),
                    hovertemplate=f"{method}, {category}<br>epoch %{{x}}: loss %{{y:.4g}}<extra></extra>",
                ),
                1, column,
            )  # fmt: skip
        figure.update_xaxes(title_text="epoch", row=1, col=column)
        figure.update_yaxes(type="log", row=1, col=column)
    figure.update_yaxes(title_text="training loss (log)", row=1, col=1)
    figure.update_layout(
        title=title or "training loss per epoch", height=360, margin=dict(l=10, r=10, t=60, b=10)
    )
    return figure


def resize_map(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to ``shape`` (for maps shown beside a full-size image)."""
    import torch

    tensor = torch.as_tensor(np.asarray(grid, np.float32))[None, None]
    return F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def map_panels(
    samples: Sequence[Sample],
    maps: Mapping[str, np.ndarray],
    row_titles: Sequence[str] | None = None,
    title: str = "",
    max_side: int = 96,
    shared_columns: bool = True,
) -> go.Figure:
    """One row per sample: image, ground truth, then one heat map per entry of ``maps``
    (``maps[name]`` is (N, h, w), any resolution; it is resized to the image for display).

    ``shared_columns``: every column of maps shares one colour range (1st-99.9th percentile), so that
    brighter means higher across rows; otherwise each panel is scaled on its own.
    """
    names = list(maps)
    if any(len(maps[name]) != len(samples) for name in names):
        raise ValueError(f"map_panels: {len(samples)} samples but map counts {[len(maps[n]) for n in names]}")
    columns = 2 + len(names)
    headings = ["image", "ground truth", *names]
    figure = make_subplots(rows=len(samples), cols=columns, column_titles=headings,
                           row_titles=list(row_titles) if row_titles else None,
                           horizontal_spacing=0.01, vertical_spacing=0.02)  # fmt: skip
    ranges = (
        {name: np.percentile(np.asarray(maps[name]), [1, 99.9]) for name in names} if shared_columns else {}
    )
    for row, sample in enumerate(samples, start=1):
        image = _downsample(sample.image, max_side)
        mask = sample.mask if sample.mask is not None else np.zeros(sample.image.shape[:2], bool)
        figure.add_trace(go.Image(source=png_data_uri(image)), row, 1)
        mask_rgb = np.repeat(_downsample(mask, max_side)[..., None], 3, -1).astype(np.uint8) * 255
        figure.add_trace(go.Image(source=png_data_uri(mask_rgb)), row, 2)
        for offset, name in enumerate(names):
            shown = resize_map(maps[name][row - 1], image.shape[:2])
            low, high = ranges.get(name, (None, None))
            figure.add_trace(
                go.Heatmap(z=np.round(shown[::-1], 4), zmin=low, zmax=high, colorscale="Inferno",
                           showscale=False, hovertemplate=f"{name}: %{{z}}<extra></extra>"),
                row, 3 + offset,
            )  # fmt: skip
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=150 * len(samples) + 90, margin=dict(l=10, r=30, t=80, b=10))
    return figure


def latency_accuracy(table: pd.DataFrame, title: str = "") -> go.Figure:
    """``table`` rows: method, category, i_auroc, predict_ms_per_image (category "mean" drawn larger)."""
    figure = go.Figure()
    for index, (method, rows) in enumerate(table.groupby("method", sort=False)):
        colour = qualitative.Plotly[index % len(qualitative.Plotly)]
        is_mean = rows["category"] == "mean"
        for subset, size, symbol in ((rows[~is_mean], 9, "circle"), (rows[is_mean], 18, "diamond")):
            figure.add_trace(
                go.Scatter(
                    x=subset["predict_ms_per_image"], y=subset["i_auroc"], mode="markers", name=method,
                    legendgroup=method, showlegend=bool(size == 18),
                    marker=dict(color=colour, size=size, symbol=symbol, line=dict(width=1, color="white")),
                    text=subset["category"],
                    hovertemplate=f"{method}, %{{text}}<br>%{{x:.1f}} ms / image<br>"
                    "I-AUROC %{y:.3f}<extra></extra>",
                )
            )  # fmt: skip
    figure.update_xaxes(title_text="predict time (ms / image, this machine)", type="log")
    figure.update_yaxes(title_text="image AUROC")
    figure.update_layout(title=title or "latency and accuracy (diamond: mean over categories)", height=380,
                         margin=dict(l=10, r=10, t=60, b=10))  # fmt: skip
    return figure
