"""Figures of the memory-bank chapter: methods × categories, PatchCore's coreset trade-off, and a
2-D view of a memory bank with its coreset.

* :func:`methods_bar_chart` — grouped bars (one group per category, one bar per method) with a
  dropdown that switches the metric.
* :func:`coreset_tradeoff` — four panels sharing a logarithmic coreset-ratio axis: image AUROC,
  AU-PRO, predict time per image and memory of the bank; one line per category, clicking a legend
  entry hides that category in every panel.
* :func:`coreset_projection` — the normal patch features projected on their first two principal
  components, the greedy coreset and a random subset of the same size on top, a slider over the
  coreset ratio (the data of each step lives in the slider, so it works in the static book).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from torch.nn import functional as F

METRIC_LABELS = {
    "i_auroc": "image AUROC",
    "p_auroc": "pixel AUROC",
    "aupro": "AU-PRO (FPR ≤ 0.3)",
    "i_f1_max": "image F1-max (threshold picked on the test set)",
    "p_ap": "pixel AP",
}
TRADEOFF_PANELS = (
    ("i_auroc", "image AUROC"),
    ("aupro", "AU-PRO"),
    ("predict_ms_per_image", "predict time (ms / image)"),
    ("bank_mb", "memory bank (MB, float32)"),
)


def methods_bar_chart(
    table: pd.DataFrame,
    metrics: Sequence[str] = ("i_auroc", "p_auroc", "aupro"),
    title: str = "Memory-bank methods per category",
) -> go.Figure:
    """Grouped bars of ``table`` (long format: columns ``method``, ``category`` and the metrics), one
    group per category in order of appearance, one colour per method; a dropdown picks the metric."""
    missing = [column for column in ("method", "category", *metrics) if column not in table.columns]
    if missing:
        raise ValueError(f"methods_bar_chart: table lacks column(s) {missing}; it has {list(table.columns)}")
    if table.empty or not metrics:
        raise ValueError("methods_bar_chart: need at least one row and one metric")
    if table.duplicated(["method", "category"]).any():
        raise ValueError("methods_bar_chart: each (method, category) pair must appear once")
    methods = list(dict.fromkeys(table["method"]))
    categories = list(dict.fromkeys(table["category"]))
    figure = go.Figure()
    for metric_index, metric in enumerate(metrics):
        label = METRIC_LABELS.get(metric, metric)
        for method_index, method in enumerate(methods):
            rows = table[table["method"] == method].set_index("category").reindex(categories)
            values = rows[metric].astype(float)
            figure.add_trace(
                go.Bar(
                    x=categories,
                    y=np.round(values.to_numpy(), 4),
                    name=method,
                    marker_color=qualitative.Plotly[method_index % len(qualitative.Plotly)],
                    visible=metric_index == 0,
                    hovertemplate=f"{method}<br>%{{x}}: %{{y:.3f}}<extra>{label}</extra>",
                )
            )
    per_metric = len(methods)
    buttons = []
    for metric_index, metric in enumerate(metrics):
        visible = [
            metric_index * per_metric <= i < (metric_index + 1) * per_metric for i in range(len(figure.data))
        ]
        label = METRIC_LABELS.get(metric, metric)
        buttons.append(
            dict(label=label, method="update", args=[{"visible": visible}, {"yaxis.title.text": label}])
        )
    figure.update_layout(
        title=title,
        barmode="group",
        height=420,
        yaxis=dict(title=METRIC_LABELS.get(metrics[0], metrics[0]), range=[0, 1.02]),
        updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.15, yanchor="top")],
        legend=dict(orientation="h", y=-0.15),
        margin=dict(l=60, r=20, t=80, b=60),
    )
    return figure


def coreset_tradeoff(
    sweeps: Mapping[str, pd.DataFrame],
    reference_ratio: float | None = 0.1,
    title: str = "PatchCore: what the coreset ratio buys and costs",
) -> go.Figure:
    """Four panels over the coreset ratio (log axis): image AUROC, AU-PRO, predict ms/image and bank
    MB, one line per category (``sweeps`` maps a category to a :func:`uiad_lite.sweeps.coreset_sweep`
    table). A dotted line marks ``reference_ratio`` (the paper's 10 %)."""
    if not sweeps:
        raise ValueError("coreset_tradeoff: no sweep tables given")
    needed = ["ratio"] + [column for column, _ in TRADEOFF_PANELS]
    for category, sweep in sweeps.items():
        missing = [column for column in needed if column not in sweep.columns]
        if missing:
            raise ValueError(f"coreset_tradeoff: sweep of {category!r} lacks column(s) {missing}")
        if sweep.empty:
            raise ValueError(f"coreset_tradeoff: sweep of {category!r} has no rows")
    figure = make_subplots(
        rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.1,
        subplot_titles=[label for _, label in TRADEOFF_PANELS],
    )  # fmt: skip
    for index, (category, sweep) in enumerate(sweeps.items()):
        ordered = sweep.sort_values("ratio")
        colour = qualitative.Plotly[index % len(qualitative.Plotly)]
        for panel, (column, label) in enumerate(TRADEOFF_PANELS):
            figure.add_trace(
                go.Scatter(
                    x=ordered["ratio"].to_numpy(),
                    y=np.round(ordered[column].to_numpy(dtype=float), 4),
                    mode="lines+markers",
                    name=category,
                    legendgroup=category,
                    showlegend=panel == 0,
                    line=dict(color=colour),
                    customdata=ordered["bank_size"].to_numpy() if "bank_size" in ordered else None,
                    hovertemplate=(
                        f"{category}<br>ratio %{{x:.1%}}"
                        + (" (%{customdata} patches)" if "bank_size" in ordered else "")
                        + f"<br>{label}: %{{y:.4g}}<extra></extra>"
                    ),
                ),
                row=panel // 2 + 1,
                col=panel % 2 + 1,
            )
    figure.update_xaxes(type="log", tickformat=".0%")
    figure.update_xaxes(title_text="coreset ratio (log scale)", row=2)
    if reference_ratio is not None:
        for panel in range(len(TRADEOFF_PANELS)):
            figure.add_vline(
                x=reference_ratio, line_dash="dot", line_color="grey", row=panel // 2 + 1, col=panel % 2 + 1
            )
    figure.update_layout(title=title, height=560, margin=dict(l=60, r=20, t=80, b=50))
    return figure


# ---------------------------------------------------------------------------------------------
# 2-D projection


def principal_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and the first two principal directions (d, 2) of ``points`` (M, d), exact (eigen-
    decomposition of the covariance in float64). Each direction's sign is fixed so that its largest
    absolute entry is positive, so the same data always gives the same picture."""
    data = np.asarray(points, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 3 or data.shape[1] < 2:
        raise ValueError(f"need an (M, d) array with M >= 3 and d >= 2, got shape {data.shape}")
    mean = data.mean(axis=0)
    centred = data - mean
    covariance = centred.T @ centred / (len(data) - 1)
    _, vectors = np.linalg.eigh(covariance)
    directions = vectors[:, ::-1][:, :2].copy()
    for column in range(2):
        if directions[np.argmax(np.abs(directions[:, column])), column] < 0:
            directions[:, column] *= -1
    return mean, directions


def patches_under_masks(
    features: torch.Tensor | np.ndarray, masks: np.ndarray, min_coverage: float = 0.5
) -> np.ndarray:
    """Patch features (K, d) of the grid cells that a ground-truth mask covers by at least ``min_coverage``.

    features: (N, d, h, w) patch features of N images; masks: (N, H, W) bool at any resolution (the
    images were resized to a square before the backbone, so a cell maps to the same fraction of the mask).
    """
    grid = torch.as_tensor(features)
    if grid.ndim != 4:
        raise ValueError(f"features must be (N, d, h, w), got shape {tuple(grid.shape)}")
    stack = np.asarray(masks)
    if stack.ndim != 3 or stack.shape[0] != grid.shape[0]:
        raise ValueError(f"masks must be (N, H, W) with N = {grid.shape[0]}, got shape {stack.shape}")
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    coverage = F.adaptive_avg_pool2d(torch.from_numpy(stack.astype(np.float32))[:, None], grid.shape[-2:])[
        :, 0
    ]
    selected = coverage >= min_coverage  # (N, h, w)
    cells = grid.permute(0, 2, 3, 1)[selected.to(grid.device)]
    return cells.detach().cpu().numpy()


def _subsample(indices: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return indices if len(indices) <= limit else np.sort(rng.choice(indices, size=limit, replace=False))


def coreset_projection(
    patches: torch.Tensor | np.ndarray,
    order: np.ndarray,
    ratios: Sequence[float],
    anomalous: np.ndarray | None = None,
    max_background: int = 2000,
    max_shown: int = 1500,
    max_fit: int = 20000,
    seed: int = 0,
    title: str = "Memory bank on its first two principal components",
) -> go.Figure:
    """Scatter of the normal patch features (grey, a random subset of ``max_background``) in their
    principal plane, with the greedy coreset (``order[:floor(ratio·M)]``) and a uniformly random subset
    of the same size on top; a slider steps through ``ratios``. ``anomalous`` (K, d) patch features,
    e.g. from :func:`patches_under_masks`, are drawn as red crosses. At most ``max_shown`` points of
    each subset are drawn (a random subset of them, said in the legend). The principal plane is fitted
    on at most ``max_fit`` random patches, so a large bank (on a GPU) is never copied whole."""
    source = torch.as_tensor(patches).detach()
    if source.ndim != 2:
        raise ValueError(f"patches must be an (M, d) matrix, got shape {tuple(source.shape)}")
    total = source.shape[0]
    order = np.asarray(order, dtype=np.int64)
    if len(ratios) == 0:
        raise ValueError("coreset_projection: give at least one ratio")
    if order.ndim != 1 or len(order) == 0 or order.min() < 0 or order.max() >= total:
        raise ValueError(f"order must be a 1-D array of indices into the {total} patches")
    sizes = []
    for ratio in ratios:
        if not 0 < ratio <= 1:
            raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")
        size = total if ratio == 1 else max(1, int(total * ratio))
        if ratio < 1 and size > len(order):
            raise ValueError(f"ratio {ratio} needs {size} ordered points, order has only {len(order)}")
        sizes.append(size)
    rng = np.random.default_rng(seed)

    def rows(indices: np.ndarray) -> np.ndarray:
        return source[torch.from_numpy(indices).to(source.device)].cpu().numpy().astype(np.float64)

    mean, directions = principal_plane(rows(_subsample(np.arange(total), max_fit, rng)))

    def xy(indices: np.ndarray) -> tuple[list[float], list[float]]:
        plane = (rows(indices) - mean) @ directions  # float64: rounded values print short in the JSON
        return np.round(plane[:, 0], 2).tolist(), np.round(plane[:, 1], 2).tolist()

    background = _subsample(np.arange(total), max_background, rng)
    figure = go.Figure()
    bx, by = xy(background)
    figure.add_trace(
        go.Scattergl(
            x=bx,
            y=by,
            mode="markers",
            name=f"normal patches ({len(background)} of {total})",
            marker=dict(size=3, color="rgba(150,150,150,0.35)"),
            hoverinfo="skip",
        )
    )
    steps = []
    for ratio, size in zip(ratios, sizes, strict=True):
        greedy = np.arange(total) if ratio == 1 else order[:size]
        random = np.sort(rng.choice(total, size=size, replace=False))
        shown_greedy, shown_random = _subsample(greedy, max_shown, rng), _subsample(random, max_shown, rng)
        gx, gy = xy(shown_greedy)
        rx, ry = xy(shown_random)
        note = "" if len(shown_greedy) == size else f", {len(shown_greedy)} drawn"
        steps.append(
            dict(
                x=[rx, gx],
                y=[ry, gy],
                name=[f"random subset ({size}{note})", f"greedy coreset ({size}{note})"],
                label=f"{ratio:.1%}",
            )
        )
    first = steps[0]
    figure.add_trace(
        go.Scattergl(
            x=first["x"][0],
            y=first["y"][0],
            mode="markers",
            name=first["name"][0],
            marker=dict(size=5, color="#1f77b4", opacity=0.7),
            visible="legendonly",
        )
    )
    figure.add_trace(
        go.Scattergl(
            x=first["x"][1],
            y=first["y"][1],
            mode="markers",
            name=first["name"][1],
            marker=dict(size=5, color="#ff7f0e"),
        )
    )
    if anomalous is not None and len(anomalous):
        defect = np.asarray(anomalous, dtype=np.float32)
        if defect.ndim != 2 or defect.shape[1] != source.shape[1]:
            raise ValueError(f"anomalous must be (K, {source.shape[1]}), got shape {defect.shape}")
        defect = defect[_subsample(np.arange(len(defect)), max_shown, rng)]
        projected = (defect.astype(np.float64) - mean) @ directions
        figure.add_trace(
            go.Scattergl(
                x=np.round(projected[:, 0], 2).tolist(),
                y=np.round(projected[:, 1], 2).tolist(),
                mode="markers",
                name=f"patches inside defects ({len(defect)})",
                marker=dict(size=6, symbol="x", color="#d62728"),
            )
        )
    slider_steps = [
        dict(method="restyle", label=step["label"],
             args=[{"x": step["x"], "y": step["y"], "name": step["name"]}, [1, 2]])
        for step in steps
    ]  # fmt: skip
    figure.update_layout(
        title=title,
        height=540,
        xaxis_title="principal component 1",
        yaxis_title="principal component 2",
        sliders=[
            dict(active=0, steps=slider_steps, currentvalue=dict(prefix="coreset ratio: "), pad=dict(t=40))
        ],
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
        margin=dict(l=60, r=20, t=110, b=40),
    )
    return figure
