"""Figures of the multimodal chapters (10, 11): the four fusion strategies as a diagram, map rows, the
strategy × defect-kind heat map, the early-fusion scale sweep and published numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from uiad_lite.plots.maps import _downsample, png_data_uri

#: (strategy, boxes left to right) of the diagram
_PIPELINES = [
    ("early", ["RGB features", "FPFH", "concatenate per patch", "one memory bank", "score"]),
    ("middle", ["RGB features", "FPFH", "learned mapping (normal patches)", "bank / mapping error", "score"]),
    ("late", ["RGB features", "FPFH", "one bank per modality", "normalise on held-back, combine", "score"]),
    ("hybrid", ["RGB features", "FPFH", "one bank per modality", "decision layer (one-class SVM)", "score"]),
]


def fusion_diagram(title: str = "Where the two modalities meet") -> go.Figure:
    """The four fusion strategies as pipelines: where RGB and 3D are joined (orange box)."""
    figure = go.Figure()
    join = {"early": 2, "middle": 2, "late": 3, "hybrid": 3}
    for row, (name, boxes) in enumerate(_PIPELINES):
        y = -row * 1.3
        figure.add_annotation(x=-0.4, y=y, text=f"<b>{name}</b>", showarrow=False, xanchor="right")
        positions = [(0, y + 0.3), (0, y - 0.3), (1.1, y), (2.3, y), (3.4, y)]
        for index, (text, (x, yy)) in enumerate(zip(boxes, positions, strict=True)):
            colour = "#f5a623" if index == join[name] else ("#dfe9f5" if index < 2 else "#eeeeee")
            figure.add_shape(type="rect", x0=x - 0.45, x1=x + 0.45, y0=yy - 0.13, y1=yy + 0.13,
                             fillcolor=colour, line_color="#555")  # fmt: skip
            figure.add_annotation(x=x, y=yy, text=text, showarrow=False, font_size=10)
        for start, end in ((0, 2), (1, 2), (2, 3), (3, 4)):
            (x0, y0), (x1, y1) = positions[start], positions[end]
            figure.add_annotation(x=x1 - 0.45, y=y1, ax=x0 + 0.45, ay=y0, xref="x", yref="y", axref="x",
                                  ayref="y", showarrow=True, arrowhead=2, arrowsize=1, text="")  # fmt: skip
    figure.update_xaxes(visible=False, range=[-1.2, 4.0])
    figure.update_yaxes(visible=False, range=[-4.4, 0.6])
    figure.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white")
    return figure


def map_row(image: np.ndarray | None, mask: np.ndarray | None, maps: Mapping[str, np.ndarray],
            title: str = "", max_side: int = 112) -> go.Figure:  # fmt: skip
    """One sample: its image, its ground truth and several named maps side by side (each its own scale)."""
    panels = (["image"] if image is not None else []) + ["ground truth", *maps]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, horizontal_spacing=0.01)
    column = 1
    if image is not None:
        figure.add_trace(go.Image(source=png_data_uri(_downsample(image, max_side * 2))), 1, column)
        column += 1
    shape = next(iter(maps.values())).shape if maps else (max_side, max_side)
    truth = mask if mask is not None else np.zeros(shape, bool)
    picture = np.repeat(_downsample(truth, max_side * 2)[..., None], 3, -1).astype(np.uint8) * 255
    figure.add_trace(go.Image(source=png_data_uri(picture)), 1, column)
    for name, values in maps.items():
        column += 1
        small = _downsample(np.asarray(values, dtype=np.float32), max_side)
        figure.add_trace(go.Heatmap(z=np.round(small[::-1], 4), colorscale="Inferno", showscale=False,
                                    hovertemplate=f"{name}: %{{z}}<extra></extra>"), 1, column)  # fmt: skip
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=260, margin=dict(l=10, r=10, t=60, b=10))
    return figure


def strategy_heatmap(table: pd.DataFrame, title: str = "", value_name: str = "image AUROC") -> go.Figure:
    """Strategies (rows) × defect kinds (columns) with the value written in each cell."""
    z = table.to_numpy(dtype=float)
    text = [[("" if np.isnan(v) else f"{v:.2f}") for v in row] for row in z]
    figure = go.Figure(go.Heatmap(z=z, x=list(table.columns), y=list(table.index), text=text,
                                  texttemplate="%{text}", zmin=0.5, zmax=1.0, colorscale="Viridis",
                                  colorbar_title=value_name,
                                  hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>"))  # fmt: skip
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title=title, height=120 + 32 * len(table), margin=dict(l=10, r=10, t=50, b=10))
    return figure


def kind_heatmap(auroc: pd.DataFrame, aupro: pd.DataFrame, title: str = "") -> go.Figure:
    """Strategies × defect kinds; image AUROC and AU-PRO switchable with a dropdown."""
    figure = go.Figure()
    for visible, (table, name) in enumerate(((auroc, "image AUROC"), (aupro, "AU-PRO"))):
        z = table.to_numpy(dtype=float)
        text = [[("" if np.isnan(v) else f"{v:.2f}") for v in row] for row in z]
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=list(table.columns),
                y=list(table.index),
                text=text,
                texttemplate="%{text}",
                zmin=0.5,
                zmax=1.0,
                colorscale="Viridis",
                visible=visible == 0,
                colorbar_title=name,
                name=name,
                hovertemplate=f"%{{y}}<br>%{{x}}: %{{z:.3f}} ({name})<extra></extra>",
            )
        )
    buttons = [
        dict(label=name, method="update", args=[{"visible": [i == k for i in range(2)]}])
        for k, name in enumerate(("image AUROC", "AU-PRO"))
    ]
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(
        title=title,
        height=140 + 32 * len(auroc),
        margin=dict(l=10, r=10, t=80, b=10),
        updatemenus=[dict(buttons=buttons, x=1.0, y=1.15, xanchor="right")],
    )
    return figure  # fmt: skip


def table_figure(table: pd.DataFrame, title: str = "", digits: int = 3) -> go.Figure:
    """A scrollable plotly table (index included) that keeps working in the static book."""
    frame = table.reset_index()
    cells = [[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in frame[c]] for c in frame.columns]
    figure = go.Figure(go.Table(header=dict(values=[f"<b>{c}</b>" for c in frame.columns], align="left"),
                                cells=dict(values=cells, align="left")))  # fmt: skip
    figure.update_layout(
        title=title, height=min(120 + 28 * len(frame), 640), margin=dict(l=10, r=10, t=50, b=10)
    )
    return figure


def cost_bars(table: pd.DataFrame, title: str = "Cost per strategy") -> go.Figure:
    """Fit seconds, predict seconds per image and peak fit memory (MB) per strategy (index = strategy)."""
    columns = [("fit_s", "fit (s)"), ("predict_s_per_image", "predict (s / image)"),
               ("peak_memory_mb", "peak memory during fit (MB)")]  # fmt: skip
    figure = make_subplots(rows=1, cols=3, subplot_titles=[name for _, name in columns])
    for column, (key, name) in enumerate(columns, start=1):
        figure.add_trace(go.Bar(x=list(table.index), y=table[key], name=name, showlegend=False), 1, column)
    figure.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=70, b=10))
    return figure


def scale_sweep(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Image AUROC per defect kind (lines) against the 3D scale factor (log x); columns scale_3d, kind,
    i_auroc."""
    figure = go.Figure()
    for kind, rows in table.groupby("kind", sort=False):
        rows = rows.sort_values("scale_3d")
        figure.add_trace(go.Scatter(x=rows["scale_3d"], y=rows["i_auroc"], mode="lines+markers", name=kind))
    figure.add_vline(x=1.0, line_dash="dot", line_color="grey", annotation_text="balanced")
    figure.update_xaxes(type="log", title="scale of the 3D part after per-modality normalisation")
    figure.update_layout(title=title, yaxis_title="image AUROC", yaxis_range=[0.3, 1.02], height=360)
    return figure


def published_bars(table: pd.DataFrame, title: str = "Published MVTec 3D-AD means (published)") -> go.Figure:
    """Grouped bars of published image AUROC and AU-PRO (columns method, i_auroc, aupro)."""
    figure = go.Figure()
    for column, name in (("i_auroc", "image AUROC"), ("aupro", "AU-PRO")):
        figure.add_trace(go.Bar(x=table["method"], y=table[column], name=f"{name} (published)"))
    figure.update_layout(title=title, barmode="group", yaxis_range=[0.5, 1.0], height=360)
    return figure


__all__: Sequence[str] = [
    "fusion_diagram", "map_row", "strategy_heatmap", "kind_heatmap", "table_figure", "cost_bars",
    "scale_sweep", "published_bars",
]  # fmt: skip
