"""Figures for the datasets chapter: the survey's dataset table, sample galleries with their masks,
RGB-D samples as image + depth + 3D cloud, labelled point clouds, and defect statistics.

Payloads stay small on purpose: images are downsampled to at most ``max_side`` pixels (masks by
max-pooling, so a one-pixel scratch survives), 3D views keep at most ``max_points`` points, and
arrays travel as numpy arrays (plotly encodes them in binary, not as decimal text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import ndimage

from uiad_lite.data.sample import Sample
from uiad_lite.plots.maps import jpeg_data_uri

OUTLINE_COLOUR = np.array([0, 235, 255], dtype=np.float32)  # cyan: stands out on brown, red and grey
MISSING_DEPTH = np.array([0, 0, 0], dtype=np.uint8)
SETTING_COLOURS = {"RGB": "#1f77b4", "3D": "#2ca02c", "multimodal": "#d62728"}
#: Hover text for a dataset whose Table 2 row has 0 good test images (VisA, Real-IAD): see survey.ERRATA.
POOLED_NOTE = "0 (pooled: the survey counts the normal images under train)"
QUANTITIES = {  # survey column -> axis title, log axis?
    "n_total": ("samples in total", True),
    "n_train": ("training samples (normal only)", True),
    "n_test_good": ("normal test samples", True),
    "n_test_anomaly": ("anomalous test samples", True),
    "n_classes": ("categories", False),
    "n_anomaly_types": ("defect types", False),
}


def _step(shape: Sequence[int], max_side: int) -> int:
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1 pixel, got {max_side}")
    return max(1, int(np.ceil(max(shape[:2]) / max_side)))


def max_pool(mask: np.ndarray, step: int) -> np.ndarray:
    """Downsample a bool mask by `step`, keeping a cell True when any pixel in it is True."""
    mask = np.asarray(mask, dtype=bool)
    if step == 1:
        return mask
    rows, cols = -(-mask.shape[0] // step), -(-mask.shape[1] // step)
    padded = np.zeros((rows * step, cols * step), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(rows, step, cols, step).any(axis=(1, 3))


def overlay_mask(
    image: np.ndarray, mask: np.ndarray | None, max_side: int = 112, tint: float = 0.0
) -> np.ndarray:
    """The image downsampled to at most `max_side` px with the mask's outline drawn in cyan *around* it.

    The outline lies on the pixels just outside the (max-pooled) mask, so the defect itself stays
    as it is and the reader can judge whether it is visible; `tint` > 0 also blends the colour into it.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"overlay_mask expects an H×W×3 image, got shape {image.shape}")
    step = _step(image.shape, max_side)
    small = image[::step, ::step].astype(np.float32)
    if mask is not None and np.shape(mask) != image.shape[:2]:
        raise ValueError(f"mask of shape {np.shape(mask)} does not match image of shape {image.shape[:2]}")
    if mask is not None and np.any(mask):
        pooled = max_pool(mask, step)
        outline = ndimage.binary_dilation(pooled, structure=np.ones((3, 3), dtype=bool)) & ~pooled
        small[pooled] = (1 - tint) * small[pooled] + tint * OUTLINE_COLOUR
        small[outline] = OUTLINE_COLOUR
    return np.clip(small, 0, 255).astype(np.uint8)


def _colour_map(values: np.ndarray, scale: Sequence[str] = plotly.colors.sequential.Viridis) -> np.ndarray:
    """Map values in [0, 1] to RGB float32 through a plotly colour scale."""
    anchors = np.array([plotly.colors.hex_to_rgb(colour) for colour in scale], dtype=np.float32)
    positions = np.linspace(0.0, 1.0, len(anchors))
    flat = np.clip(values, 0.0, 1.0).ravel()
    channels = [np.interp(flat, positions, anchors[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).reshape(*values.shape, 3).astype(np.float32)


def depth_rendering(xyz: np.ndarray, max_side: int = 112, relief: float = 0.5) -> np.ndarray:
    """An organised cloud as an RGB picture: height (−z) in Viridis, shaded by the surface slope.

    Height is scaled between its 2nd and 98th percentile over valid points. With `relief` > 0 the
    colour is darkened where the surface faces away from a light in the upper left (hill shading),
    which makes millimetre dents and bumps visible that the height colours alone would hide.
    Missing points (all-zero xyz) are black.
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    if xyz.ndim != 3 or xyz.shape[2] != 3:
        raise ValueError(f"depth_rendering expects an H×W×3 organised cloud, got shape {xyz.shape}")
    step = _step(xyz.shape, max_side)
    small = xyz[::step, ::step]
    valid = np.any(small != 0, axis=-1)
    picture = np.zeros((*small.shape[:2], 3), dtype=np.uint8)
    if valid.sum() < 2:
        return picture
    height = -small[..., 2]
    low, high = np.percentile(height[valid], [2, 98])
    colours = _colour_map((height - low) / max(high - low, 1e-12))
    if relief > 0:
        filled = np.where(valid, height, np.median(height[valid]))
        pitch = float(np.median(np.abs(np.diff(small[..., 0], axis=1))[valid[:, 1:] & valid[:, :-1]])) or 1.0
        slope_rows, slope_cols = np.gradient(filled, pitch)
        normal = np.stack([-slope_cols, -slope_rows, np.ones_like(filled)], axis=-1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        light = np.array([-1.0, -1.0, 1.5]) / np.linalg.norm([-1.0, -1.0, 1.5])
        shade = np.clip(normal @ light, 0.0, 1.0)
        colours *= (1 - relief) + relief * shade[..., None] / max(float(shade[valid].max()), 1e-6)
    picture[valid] = np.clip(colours[valid], 0, 255).astype(np.uint8)
    picture[~valid] = MISSING_DEPTH
    return picture


def datasets_explorer(table: pd.DataFrame) -> go.Figure:
    """The survey's Table 2 as bars, one per dataset, grouped by setting and sorted by year.

    Colour = setting, hatched bars = synthetic datasets; the menu switches the quantity shown
    (samples in total, training / test counts, categories, defect types). Hover for every column;
    a count of 0 good test images (the survey's pooling, see ``survey.ERRATA``) says so in the hover,
    as its bar cannot show on the log axis.
    """
    needed = {"name", "setting", "year", "type", "modality", *QUANTITIES}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"datasets_explorer: the table lacks columns {sorted(missing)}")
    order = table.sort_values(
        ["setting", "year", "name"],
        key=lambda c: c.map({"RGB": 0, "3D": 1, "multimodal": 2}) if c.name == "setting" else c,
    )
    figure = go.Figure()
    groups = list(order.groupby(["setting", "type"], sort=False))
    hover = (
        "<b>%{x}</b> (%{customdata[0]}, %{customdata[1]})<br>modality: %{customdata[2]}<br>"
        "train %{customdata[3]}, test good %{customdata[4]}, test anomalous %{customdata[5]}<br>"
        "categories %{customdata[6]}, defect types %{customdata[7]}<extra></extra>"
    )
    for (setting, kind), group in groups:
        counts = {
            column: group[column].astype("object").where(group[column].notna(), "-").astype(str)
            for column in ("n_train", "n_test_good", "n_test_anomaly", "n_classes", "n_anomaly_types")
        }
        counts["n_test_good"] = counts["n_test_good"].where(counts["n_test_good"] != "0", POOLED_NOTE)
        custom = np.column_stack(
            [group["year"].astype(str), group["type"], group["modality"], *counts.values()]
        )
        figure.add_trace(
            go.Bar(
                x=group["name"].tolist(),
                y=group["n_total"].astype(float).to_numpy(),
                name=f"{setting}, {kind}",
                marker=dict(
                    color=SETTING_COLOURS.get(setting, "#7f7f7f"),
                    pattern=dict(shape="/" if kind == "synthetic" else ""),
                ),
                customdata=custom,
                hovertemplate=hover,
            )
        )
    buttons = []
    for column, (label, log) in QUANTITIES.items():
        buttons.append(
            dict(
                label=label,
                method="update",
                args=[
                    {"y": [group[column].astype(float).to_numpy() for _, group in groups]},
                    {"yaxis.title.text": label, "yaxis.type": "log" if log else "linear"},
                ],
            )
        )
    figure.update_layout(
        title="The survey's datasets (Table 2): choose the quantity in the menu",
        barmode="overlay",
        height=460,
        yaxis=dict(title=QUANTITIES["n_total"][0], type="log"),
        xaxis=dict(categoryorder="array", categoryarray=order["name"].tolist(), tickangle=-40),
        updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.15, yanchor="top")],
        legend=dict(title="setting, type"),
        margin=dict(t=90),
    )
    return figure


def _area_label(sample: Sample) -> str:
    if sample.mask is None or not np.any(sample.mask):
        return sample.defect
    return f"{sample.defect} · {100 * np.mean(sample.mask):.2g}%"


def _resized_mask(mask: np.ndarray | None, xyz: np.ndarray, max_side: int) -> np.ndarray | None:
    """The mask pooled to the depth rendering's grid (same step as :func:`depth_rendering`)."""
    if mask is None:
        return None
    if np.shape(mask) != np.shape(xyz)[:2]:
        raise ValueError(f"mask of shape {np.shape(mask)} does not match xyz of shape {np.shape(xyz)[:2]}")
    return max_pool(mask, _step(np.shape(xyz), max_side))


def sample_gallery(
    rows: Mapping[str, Sequence[Sample]], max_side: int = 96, show_depth: bool = False, title: str = ""
) -> go.Figure:
    """A grid of samples: one row per key of `rows` (a defect type), each defect outlined in cyan.

    Cell titles give the defect and its share of the image. With `show_depth`, each sample takes two
    cells: the image and its depth rendering (:func:`depth_rendering`, black = no measurement).
    """
    rows = {key: list(value) for key, value in rows.items() if len(value)}
    if not rows:
        raise ValueError("sample_gallery: no samples to show")
    per_sample = 2 if show_depth else 1
    n_rows, n_cols = len(rows), per_sample * max(len(v) for v in rows.values())
    titles, cells = [], []
    for row, samples in enumerate(rows.values(), start=1):
        row_titles = [""] * n_cols
        for k, sample in enumerate(samples):
            sample.require("image")
            if show_depth:
                sample.require("xyz")
            column = per_sample * k + 1
            row_titles[column - 1] = _area_label(sample)
            cells.append((row, column, overlay_mask(sample.image, sample.mask, max_side)))
            if show_depth:
                row_titles[column] = "depth"
                depth = depth_rendering(sample.xyz, max_side)
                cells.append(
                    (
                        row,
                        column + 1,
                        overlay_mask(
                            depth, _resized_mask(sample.mask, sample.xyz, max_side), max_side=max(depth.shape)
                        ),
                    )
                )
        titles += row_titles
    figure = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=min(0.05, 0.3 / max(n_rows - 1, 1)),
    )
    for row, column, picture in cells:
        figure.add_trace(go.Image(source=jpeg_data_uri(picture), hoverinfo="skip"), row, column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=11)
    figure.update_layout(
        title=title or "Samples by defect type (each defect outlined in cyan)",
        height=150 * n_rows + 70,
        margin=dict(l=10, r=10, t=70, b=10),
    )
    return figure


def _subsample(
    count: int, max_points: int, rng: np.random.Generator, keep: np.ndarray | None = None
) -> np.ndarray:
    """At most `max_points` indices of `count`; the indices in `keep` go first (up to half the budget)."""
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    if count <= max_points:
        return np.arange(count)
    keep = np.zeros(0, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    if len(keep) > max_points // 2:
        keep = rng.choice(keep, max_points // 2, replace=False)
    rest = np.setdiff1d(np.arange(count), keep)
    chosen = rng.choice(rest, max_points - len(keep), replace=False)
    return np.sort(np.concatenate([keep, chosen]))


def _cloud_traces(
    points: np.ndarray, labels: np.ndarray, scene: str, normal_colour: np.ndarray | str, show_legend: bool
) -> list[go.Scatter3d]:
    traces = [
        go.Scatter3d(
            x=points[~labels, 0],
            y=points[~labels, 1],
            z=points[~labels, 2],
            mode="markers",
            scene=scene,
            name="normal",
            legendgroup="normal",
            showlegend=show_legend,
            marker=dict(
                size=1.6,
                color=normal_colour if isinstance(normal_colour, str) else normal_colour[~labels],
                colorscale="Viridis",
            ),
            hoverinfo="skip",
        )
    ]
    if labels.any():
        traces.append(
            go.Scatter3d(
                x=points[labels, 0],
                y=points[labels, 1],
                z=points[labels, 2],
                mode="markers",
                scene=scene,
                name="defect (ground truth)",
                legendgroup="defect",
                showlegend=show_legend,
                marker=dict(size=2.6, color="rgb(235,30,30)"),
                hoverinfo="skip",
            )
        )
    return traces


def rgbd_view(sample: Sample, max_side: int = 112, max_points: int = 5000, seed: int = 0) -> go.Figure:
    """One RGB-D sample three ways: on top the image (defect outlined in cyan) and the z map as a heat
    map (hover for values, the defect's outline in red); below, the organised cloud in 3D (missing
    points dropped, at most `max_points`, ground-truth points in red).
    """
    sample.require("image", "xyz")
    xyz = np.asarray(sample.xyz, dtype=np.float32)
    mask = np.zeros(xyz.shape[:2], dtype=bool) if sample.mask is None else np.asarray(sample.mask, dtype=bool)
    figure = make_subplots(
        rows=2,
        cols=2,
        row_heights=[0.42, 0.58],
        horizontal_spacing=0.04,
        vertical_spacing=0.08,
        specs=[[{"type": "xy"}, {"type": "xy"}], [{"type": "scene", "colspan": 2}, None]],
        subplot_titles=[
            "RGB image",
            "z per pixel (blank = missing)",
            "organised cloud in 3D (drag to rotate)",
        ],
    )
    figure.add_trace(
        go.Image(source=jpeg_data_uri(overlay_mask(sample.image, mask, max_side)), hoverinfo="skip"), 1, 1
    )
    step = _step(xyz.shape, max_side)
    small = xyz[::step, ::step]
    z = np.where(np.any(small != 0, axis=-1), small[..., 2], np.nan).astype(np.float32)
    figure.add_trace(
        go.Heatmap(
            z=z,
            colorscale="Viridis_r",
            showscale=False,
            hovertemplate="row %{y}, column %{x}<br>z %{z:.5g}<extra></extra>",
        ),
        1,
        2,
    )
    if mask.any():
        figure.add_trace(
            go.Contour(
                z=max_pool(mask, step).astype(np.uint8),
                showscale=False,
                contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                line=dict(color="red", width=2),
                hoverinfo="skip",
                name="defect outline",
            ),
            1,
            2,
        )
    valid = np.any(xyz != 0, axis=-1)
    cloud, labels = xyz[valid], mask[valid]
    rng = np.random.default_rng(seed)
    grid_step = max(1, int(np.floor(np.sqrt(len(cloud) / max_points))))
    on_grid = np.flatnonzero((valid & _grid(valid.shape, grid_step))[valid])
    kept = on_grid[_subsample(len(on_grid), max_points, rng, np.flatnonzero(labels[on_grid]))]
    cloud, labels = cloud[kept], labels[kept]
    for trace in _cloud_traces(cloud, labels, "scene", -cloud[:, 2], show_legend=True):
        figure.add_trace(trace, 2, 1)
    figure.update_yaxes(autorange="reversed", scaleanchor="x2", row=1, col=2)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        title=f"{sample.category} / {sample.defect}: colour, depth and 3D",
        height=760,
        margin=dict(l=10, r=10, t=70, b=10),
        legend=dict(orientation="h", y=-0.05),
        scene=dict(
            aspectmode="data",
            camera=dict(eye=dict(x=0.0, y=-1.2, z=-1.6), up=dict(x=0, y=-1, z=0)),
            xaxis_visible=False,
            yaxis_visible=False,
            zaxis_visible=False,
        ),
    )
    return figure


def _grid(shape: tuple[int, int], step: int) -> np.ndarray:
    keep = np.zeros(shape, dtype=bool)
    keep[::step, ::step] = True
    return keep


def point_clouds(
    samples: Sequence[Sample], max_points: int = 5000, seed: int = 0, title: str = "", columns: int = 2
) -> go.Figure:
    """Point clouds in a grid of `columns` panels per row, coloured by ground truth (defect points red).

    Each panel keeps at most `max_points` points: every defect point first (up to half the budget),
    then a random share of the normal ones, so a small defect is not thinned away.
    """
    if not samples:
        raise ValueError("point_clouds: no samples to show")
    rng = np.random.default_rng(seed)
    titles = []
    for sample in samples:
        sample.require("points")
        labels = (
            np.zeros(len(sample.points), bool)
            if sample.point_labels is None
            else np.asarray(sample.point_labels, dtype=bool)
        )
        titles.append(f"{sample.defect} · {labels.mean():.1%} of points" if labels.any() else sample.defect)
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    n_cols = min(columns, len(samples))
    n_rows = -(-len(samples) // n_cols)
    figure = make_subplots(
        rows=n_rows,
        cols=n_cols,
        specs=[[{"type": "scene"}] * n_cols for _ in range(n_rows)],
        subplot_titles=titles,
        horizontal_spacing=0.02,
        vertical_spacing=0.06,
    )
    legend_shown: set[str] = set()
    for panel, sample in enumerate(samples, start=1):
        points = np.asarray(sample.points, dtype=np.float32)
        labels = (
            np.zeros(len(points), bool)
            if sample.point_labels is None
            else np.asarray(sample.point_labels, dtype=bool)
        )
        if labels.shape != (len(points),):
            raise ValueError(f"sample {sample.path!r}: {len(points)} points but {labels.shape} labels")
        kept = _subsample(len(points), max_points, rng, np.flatnonzero(labels))
        scene = "scene" if panel == 1 else f"scene{panel}"
        for trace in _cloud_traces(points[kept], labels[kept], scene, "rgb(150,165,190)", show_legend=False):
            trace.showlegend = trace.name not in legend_shown
            legend_shown.add(trace.name)
            figure.add_trace(trace, (panel - 1) // n_cols + 1, (panel - 1) % n_cols + 1)
        figure.update_layout(
            {scene: dict(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False)}
        )
    figure.update_layout(
        title=title or "Point clouds coloured by ground truth (drag to rotate)",
        height=340 * n_rows + 90,
        margin=dict(l=10, r=10, t=70, b=10),
        legend=dict(orientation="h", y=-0.05),
    )
    return figure


def defect_sizes(statistics: pd.DataFrame, regions: pd.DataFrame) -> go.Figure:
    """Top: defect area (% of the image or of the cloud) per defect type, one box per type with every
    sample as a dot. Bottom: cumulative share of defect pixels against cumulative share of regions,
    regions sorted from small to large, one line per category. The further a line sags below the
    diagonal, the more regions hold few pixels: what AU-PRO weighs and pixel AUROC hardly sees.
    """
    anomalous = statistics[statistics["label"] == 1]
    if anomalous.empty or regions.empty:
        raise ValueError("defect_sizes: no anomalous samples with defect regions")
    figure = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.5, 0.5],
        vertical_spacing=0.14,
        subplot_titles=["defect area per sample", "share of defect pixels vs share of regions (small first)"],
    )
    for defect, group in anomalous.groupby("defect", sort=True):
        figure.add_trace(
            go.Box(
                x=(100 * group["area_fraction"]).to_numpy(),
                name=defect,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                orientation="h",
                marker=dict(size=4),
                showlegend=False,
                text=[
                    f"{c} #{p}, {r} region(s)"
                    for c, p, r in zip(group["category"], group["position"], group["regions"], strict=True)
                ],
                hovertemplate="%{text}<br>area %{x:.3g}%<extra>" + defect + "</extra>",
            ),
            1,
            1,
        )
    for category, group in regions.groupby("category", sort=False):
        sizes = np.sort(group["units"].to_numpy(dtype=np.float64))
        share_regions = np.arange(0, len(sizes) + 1) / len(sizes)
        share_units = np.concatenate([[0.0], np.cumsum(sizes) / sizes.sum()])
        figure.add_trace(
            go.Scatter(
                x=share_regions,
                y=share_units,
                mode="lines",
                name=category,
                line_shape="hv",
                hovertemplate="smallest %{x:.0%} of regions hold %{y:.1%} of the defect "
                f"{group['unit'].iloc[0]}<extra>{category}</extra>",
            ),
            2,
            1,
        )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line=dict(dash="dot", color="grey"),
            name="all regions equal",
            hoverinfo="skip",
        ),
        2,
        1,
    )
    figure.update_xaxes(type="log", title_text="defect area (% of the sample, log)", row=1, col=1)
    figure.update_xaxes(title_text="share of regions", tickformat=".0%", row=2, col=1)
    figure.update_yaxes(title_text="share of defect pixels / points", tickformat=".0%", row=2, col=1)
    figure.update_layout(
        title="How big are the defects?", height=820, legend=dict(title="category"), margin=dict(t=80)
    )
    return figure


def modality_scatter(contrast: pd.DataFrame, threshold: float = 3.0, floor: float = 0.01) -> go.Figure:
    """Colour contrast against depth contrast, one dot per anomalous RGB-D sample, coloured by defect type.

    The dotted lines at `threshold` split the plane into "visible in colour only", "depth only",
    "both" and "neither". Values below `floor` are drawn at `floor` (log axes).
    """
    if contrast.empty:
        raise ValueError("modality_scatter: no samples")
    figure = go.Figure()
    for defect, group in contrast.groupby("defect", sort=True):
        figure.add_trace(
            go.Scatter(
                x=np.maximum(group["colour_contrast"].to_numpy(float), floor),
                y=np.maximum(group["depth_contrast"].to_numpy(float), floor),
                mode="markers",
                name=defect,
                marker=dict(size=8, opacity=0.8),
                text=[f"{c} #{p}" for c, p in zip(group["category"], group["position"], strict=True)],
                hovertemplate="%{text}<br>colour %{x:.3g}, depth %{y:.3g}<extra>" + defect + "</extra>",
            )
        )
    for axis in ("x", "y"):
        line = dict(
            type="line",
            line=dict(dash="dot", color="grey"),
            xref="x" if axis == "x" else "paper",
            yref="paper" if axis == "x" else "y",
        )
        if axis == "x":
            figure.add_shape(**line, x0=threshold, x1=threshold, y0=0, y1=1)
        else:
            figure.add_shape(**line, x0=0, x1=1, y0=threshold, y1=threshold)
    for text, x, y in (
        ("depth only", 0.02, 0.98),
        ("both", 0.98, 0.98),
        ("colour only", 0.98, 0.02),
        ("neither", 0.02, 0.02),
    ):
        figure.add_annotation(
            text=text,
            x=x,
            y=y,
            xref="paper",
            yref="paper",
            showarrow=False,
            xanchor="left" if x < 0.5 else "right",
            yanchor="top" if y > 0.5 else "bottom",
            font=dict(color="grey"),
        )
    figure.update_xaxes(type="log", title_text="colour contrast (defect vs its surroundings, log)")
    figure.update_yaxes(type="log", title_text="depth contrast (log)")
    figure.update_layout(title="Where does each RGB-D defect show?", height=460, legend=dict(title="defect"))
    return figure
