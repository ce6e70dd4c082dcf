"""Figures for the anomaly-simulation chapter: galleries with a seed/strength slider at every level
(image, depth, point cloud), real beside simulated defects, and the simulation-to-defect transfer map.

Every gallery takes ``simulations``: a mapping from a panel title to a function
``(data, rng, strength) -> (altered, truth)`` (truth = H x W mask or N point labels), and builds one
plotly frame per (seed, strength) pair, so the slider works in the static book as well as in JupyterLab.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import product

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import ndimage

from uiad_lite.data.sample import Sample
from uiad_lite.plots.maps import jpeg_data_uri

Simulation = Callable[[np.ndarray, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]
OUTLINE_COLOR = (255, 40, 40)


def _step(shape: Sequence[int], max_side: int) -> int:
    return max(1, int(np.ceil(max(shape[:2]) / max_side)))


def outlined(image: np.ndarray, mask: np.ndarray | None, max_side: int = 112) -> np.ndarray:
    """The image downsampled to at most ``max_side`` px with the outline of ``mask`` drawn in red just
    outside the mask, so that the changed pixels themselves stay visible."""
    step = _step(image.shape, max_side)
    small = np.ascontiguousarray(image[::step, ::step]).copy()
    if mask is not None and mask.any():
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask of shape {mask.shape} does not match image of shape {image.shape[:2]}")
        # max-pool the mask so defects thinner than the step stay visible
        pooled = ndimage.maximum_filter(mask, size=step)[::step, ::step]
        edge = ndimage.binary_dilation(pooled) & ~pooled
        small[edge] = OUTLINE_COLOR
    return small


def _check_settings(seeds: Sequence[int], strengths: Sequence[float], simulations: Mapping) -> list:
    if not simulations:
        raise ValueError("give at least one simulation to show")
    if len(seeds) == 0 or len(strengths) == 0:
        raise ValueError("give at least one seed and one strength")
    return list(product(seeds, strengths))


def _label(seed: int, strength: float, strengths: Sequence[float]) -> str:
    return f"seed {seed}" if len(strengths) == 1 else f"seed {seed}, strength {strength:g}"


def _value(trace: go.BaseTraceType, path: str):
    """``trace.<path>`` as plain JSON data (``marker.color`` style paths), None when unset."""
    value = trace.to_plotly_json()
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value.tolist() if isinstance(value, np.ndarray) else value


def _with_slider(figure: go.Figure, steps: list[list[go.BaseTraceType]], labels: list[str],
                 trace_ids: list[int], keys: Sequence[str]) -> go.Figure:
    """A slider whose step i restyles traces ``trace_ids`` with the ``keys`` of ``steps[i]``.

    The data of every step lives in ``layout.sliders`` (restyle calls, not animation frames), so the
    slider works wherever the figure's JSON goes: JupyterLab's plotly renderer and the static book.
    """
    slider_steps = []
    for traces, label in zip(steps, labels, strict=True):
        update = {key: [_value(trace, key) for trace in traces] for key in keys}
        slider_steps.append(dict(method="restyle", label=label, args=[update, trace_ids]))
    figure.update_layout(sliders=[dict(active=0, steps=slider_steps, pad={"t": 30}, len=1.0, x=0.0,
                                       currentvalue={"prefix": ""})])
    return figure


def image_gallery(
    image: np.ndarray,
    simulations: Mapping[str, Simulation],
    seeds: Sequence[int] = (0, 1, 2, 3),
    strengths: Sequence[float] = (1.0,),
    max_side: int = 112,
    title: str = "Image-level simulations (red: the exact changed pixels)",
) -> go.Figure:
    """Columns: the original image, then one simulation each; slider over (seed, strength)."""
    settings = _check_settings(seeds, strengths, simulations)
    names = list(simulations)
    figure = make_subplots(rows=1, cols=len(names) + 1, subplot_titles=["original", *names],
                           horizontal_spacing=0.01)
    figure.add_trace(go.Image(source=jpeg_data_uri(outlined(image, None, max_side))), 1, 1)
    frames = []
    for seed, strength in settings:
        traces = []
        for name in names:
            altered, mask = simulations[name](image, np.random.default_rng(seed), strength)
            hover = f"{name}: {mask.mean():.1%} of pixels changed<extra></extra>"
            picture = jpeg_data_uri(outlined(altered, mask, max_side))
            traces.append(go.Image(source=picture, hovertemplate=hover))
        frames.append(traces)
    for column, trace in enumerate(frames[0], start=2):
        figure.add_trace(trace, 1, column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=330, margin=dict(l=10, r=10, t=70, b=10))
    labels = [_label(seed, strength, strengths) for seed, strength in settings]
    return _with_slider(figure, frames, labels, list(range(1, len(names) + 1)), ["source", "hovertemplate"])


def feature_gallery(
    features: np.ndarray,
    simulations: Mapping[str, Simulation],
    seeds: Sequence[int] = (0, 1),
    strengths: Sequence[float] = (1.0,),
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    title: str = "Feature-level simulations in the first two principal axes of the normal features",
) -> go.Figure:
    """One panel per simulation: the normal patch features (grey) and the simulated ones (red)
    projected on the two principal axes of the normal features; with ``score`` (rows -> one anomaly
    score per row) a last panel compares the score of normal and simulated features. Slider over
    (seed, strength)."""
    settings = _check_settings(seeds, strengths, simulations)
    rows = np.asarray(features, dtype=np.float64)
    if rows.ndim != 2 or len(rows) < 3:
        raise ValueError(f"features must be an (M, C) array with M >= 3, got shape {rows.shape}")
    names = list(simulations)
    centre = rows.mean(axis=0)
    _, _, axes = np.linalg.svd(rows - centre, full_matrices=False)
    project = axes[:2].T

    def to_plane(values: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(values, dtype=np.float64) - centre) @ project, 3)

    normal = to_plane(rows)
    panels = len(names) + (score is not None)
    titles = [*names, "score of each feature"] if score is not None else names
    figure = make_subplots(rows=1, cols=panels, subplot_titles=titles, horizontal_spacing=0.05)
    for column in range(1, len(names) + 1):
        figure.add_trace(go.Scattergl(x=normal[:, 0], y=normal[:, 1], mode="markers", name="normal",
                                      marker=dict(size=3, color="#9aa5b1"), showlegend=column == 1),
                         1, column)
    frames = []
    for seed, strength in settings:
        traces, scored = [], []
        for name in names:
            rng = np.random.default_rng(seed)
            altered, labels = simulations[name](rows.astype(np.float32), rng, strength)
            labels = np.asarray(labels, bool)
            moved = to_plane(np.asarray(altered)[labels])
            traces.append(go.Scattergl(x=moved[:, 0], y=moved[:, 1], mode="markers", name="simulated",
                                       marker=dict(size=3, color="#d62728"), showlegend=not traces))
            scored.append((name, np.asarray(altered)[labels]))
        if score is not None:
            groups = [("normal", rows.astype(np.float32)), *scored]
            traces += [go.Box(y=np.round(np.asarray(score(values), dtype=np.float64), 3), name=name,
                              boxpoints=False, showlegend=False) for name, values in groups]
        frames.append(traces)
    static = len(names)
    for column, trace in enumerate(frames[0][: len(names)], start=1):
        figure.add_trace(trace, 1, column)
    for trace in frames[0][len(names):]:
        figure.add_trace(trace, 1, panels)
    figure.update_layout(title=title, height=400, margin=dict(l=10, r=10, t=70, b=10),
                         legend=dict(orientation="h", y=-0.08))
    labels = [_label(seed, strength, strengths) for seed, strength in settings]
    trace_ids = list(range(static, static + len(frames[0])))
    return _with_slider(figure, frames, labels, trace_ids, ["x", "y"])


def _depth_view(xyz: np.ndarray, step: int) -> np.ndarray:
    z = np.asarray(xyz[..., 2] if xyz.ndim == 3 else xyz, dtype=np.float64)[::step, ::step]
    return np.where(z == 0, np.nan, z)


def _mask_contour(mask: np.ndarray, step: int) -> go.Contour:
    pooled = ndimage.maximum_filter(mask, size=step)[::step, ::step].astype(np.uint8)
    return go.Contour(z=pooled[::-1], showscale=False, contours=dict(start=0.5, end=0.5, coloring="lines"),
                      line=dict(color="red", width=1.5), hoverinfo="skip")


def depth_gallery(
    xyz: np.ndarray,
    simulations: Mapping[str, Simulation],
    seeds: Sequence[int] = (0, 1),
    strengths: Sequence[float] = (1.0,),
    max_side: int = 64,
    unit_scale: float = 1000.0,
    unit: str = "mm",
    title: str = "Depth-level simulations: z (top) and the change in z (bottom)",
) -> go.Figure:
    """Row 1: z of the altered map as a heat map (missing points blank, defect outlined); row 2: the
    change in z. One column per simulation; slider over (seed, strength). Values in ``unit``."""
    settings = _check_settings(seeds, strengths, simulations)
    names = list(simulations)
    step = _step(xyz.shape, max_side)
    original = _depth_view(xyz, step) * unit_scale
    low, high = np.nanpercentile(original, [1, 99])
    figure = make_subplots(rows=2, cols=len(names), subplot_titles=names, horizontal_spacing=0.04,
                           vertical_spacing=0.06)
    frames, largest = [], 0.0
    for seed, strength in settings:
        traces = []
        for name in names:
            altered, mask = simulations[name](xyz, np.random.default_rng(seed), strength)
            z = _depth_view(altered, step) * unit_scale
            change = np.nan_to_num(z - original)
            largest = max(largest, float(np.abs(change).max()))
            traces += [go.Heatmap(z=np.round(z[::-1], 2), coloraxis="coloraxis",
                                  hovertemplate=f"z %{{z}} {unit}<extra></extra>"),
                       _mask_contour(mask, step),
                       go.Heatmap(z=np.round(change[::-1], 2), coloraxis="coloraxis2",
                                  hovertemplate=f"change %{{z}} {unit}<extra></extra>")]
        frames.append(traces)
    for column in range(len(names)):
        z_map, contour, change = frames[0][3 * column:3 * column + 3]
        figure.add_trace(z_map, 1, column + 1)
        figure.add_trace(contour, 1, column + 1)
        figure.add_trace(change, 2, column + 1)
    largest = largest or 1.0
    figure.update_layout(
        coloraxis=dict(colorscale="Viridis", cmin=low, cmax=high,
                       colorbar=dict(title=f"z ({unit})", len=0.45, y=0.78)),
        coloraxis2=dict(colorscale="RdBu", cmin=-largest, cmax=largest,
                        colorbar=dict(title=f"dz ({unit})", len=0.45, y=0.22)),
        title=title, height=520, margin=dict(l=10, r=10, t=70, b=10))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    labels = [_label(seed, strength, strengths) for seed, strength in settings]
    return _with_slider(figure, frames, labels, list(range(3 * len(names))), ["z"])


def _point_subset(labels: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """Every labelled point plus a random subset of the others, ``max_points`` in all (sorted)."""
    chosen = np.flatnonzero(labels)
    others = np.flatnonzero(~labels)
    room = max(0, max_points - len(chosen))
    if len(others) > room:
        others = rng.choice(others, size=room, replace=False)
    return np.sort(np.concatenate([chosen, others]))


def _cloud_trace(points: np.ndarray, labels: np.ndarray, scene: str, decimals: int) -> go.Scatter3d:
    x, y, z = np.round(points, decimals).T
    return go.Scatter3d(
        x=x, y=y, z=z, mode="markers",
        marker=dict(size=2, color=labels.astype(np.uint8), colorscale=[[0, "#9aa5b1"], [1, "#d62728"]],
                    cmin=0, cmax=1),
        scene=scene, hovertemplate="x %{x}<br>y %{y}<br>z %{z}<extra></extra>", showlegend=False)


def point_gallery(
    points: np.ndarray,
    simulations: Mapping[str, Simulation],
    seeds: Sequence[int] = (0, 1),
    strengths: Sequence[float] = (1.0,),
    max_points: int = 1500,
    title: str = "Point-level simulations (red: displaced points)",
) -> go.Figure:
    """One 3D scene per simulation, points coloured by their simulated label; slider over (seed,
    strength). Shows every displaced point and a random subset of the others (``max_points`` in all)."""
    settings = _check_settings(seeds, strengths, simulations)
    names = list(simulations)
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.01,
                           specs=[[{"type": "scene"}] * len(names)])
    extent = float(np.ptp(points, axis=0).max()) or 1.0
    decimals = max(0, int(-np.floor(np.log10(extent / 2000.0))))  # about 1/2000 of the cloud's size
    frames = []
    for seed, strength in settings:
        traces = []
        for column, name in enumerate(names):
            altered, labels = simulations[name](points, np.random.default_rng(seed), strength)
            keep = _point_subset(np.asarray(labels, bool), max_points, np.random.default_rng(seed))
            traces.append(_cloud_trace(altered[keep], np.asarray(labels, bool)[keep],
                                       "scene" if column == 0 else f"scene{column + 1}", decimals))
        frames.append(traces)
    for column, trace in enumerate(frames[0], start=1):
        figure.add_trace(trace, 1, column)
    figure.update_scenes(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False)
    figure.update_layout(title=title, height=420, margin=dict(l=0, r=0, t=70, b=0))
    labels = [_label(seed, strength, strengths) for seed, strength in settings]
    return _with_slider(figure, frames, labels, list(range(len(names))), ["x", "y", "z", "marker.color"])


def real_vs_simulated(
    real: Sequence[Sample],
    simulated: Sequence[Sample],
    modality: str = "image",
    max_side: int = 112,
    title: str = "Real defects (top) and simulated ones (bottom), ground truth outlined in red",
) -> go.Figure:
    """Two rows of samples titled by their defect type: benchmark defects above, simulated below.

    ``modality`` "image" shows the RGB image; "xyz" shows the depth's fine relief, z minus a Gaussian
    blur of z (sigma = 8 px, so the part's overall shape is removed and dents and bumps stand out),
    as a heat map in millimetres on one colour scale.
    """
    if modality not in ("image", "xyz"):
        raise ValueError(f"modality must be 'image' or 'xyz', got {modality!r}")
    if not real or not simulated:
        raise ValueError("give at least one real and one simulated sample")
    columns = max(len(real), len(simulated))
    titles = [s.defect for s in real] + [""] * (columns - len(real))
    titles += [s.defect.removeprefix("simulated_") for s in simulated] + [""] * (columns - len(simulated))
    figure = make_subplots(rows=2, cols=columns, subplot_titles=titles, horizontal_spacing=0.01,
                           vertical_spacing=0.08)
    for row, samples in ((1, real), (2, simulated)):
        for column, sample in enumerate(samples, start=1):
            sample.require(modality)
            mask = sample.mask if sample.mask is not None else None
            if modality == "image":
                picture = jpeg_data_uri(outlined(sample.image, mask, max_side))
                figure.add_trace(go.Image(source=picture), row, column)
                continue
            step = _step(sample.xyz.shape, max_side)
            z = sample.xyz[..., 2].astype(np.float64)
            valid = z != 0
            filled = np.where(valid, z, np.median(z[valid]))
            relief = np.where(valid, z - ndimage.gaussian_filter(filled, 8.0), np.nan)[::step, ::step]
            relief = relief * 1000.0
            figure.add_trace(go.Heatmap(z=np.round(relief[::-1], 2), coloraxis="coloraxis",
                                        hovertemplate="relief %{z} mm<extra></extra>"), row, column)
            if mask is not None and mask.any():
                figure.add_trace(_mask_contour(mask, step), row, column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    if modality == "xyz":
        figure.update_yaxes(scaleanchor="x")
        figure.update_layout(coloraxis=dict(colorscale="RdBu_r", cmid=0.0,
                                            colorbar=dict(title="relief (mm)")))
    figure.update_layout(title=title, height=400, margin=dict(l=10, r=10, t=70, b=10))
    return figure


def transfer_heatmap(
    tables: Mapping[str, pd.DataFrame],
    title: str = "Which simulation transfers to which real defect type",
) -> go.Figure:
    """Heat map simulation (rows) x defect type (columns), one per metric with buttons to switch;
    the best simulation of every column is printed in bold."""
    if not tables:
        raise ValueError("give at least one table (metric name -> simulation x defect DataFrame)")
    figure = go.Figure()
    for index, (metric, table) in enumerate(tables.items()):
        values = table.to_numpy(dtype=float)
        best = np.nanargmax(np.where(np.isnan(values), -np.inf, values), axis=0)
        text = [[("" if np.isnan(v) else (f"<b>{v:.2f}</b>" if r == best[c] else f"{v:.2f}"))
                 for c, v in enumerate(row)] for r, row in enumerate(values)]
        figure.add_trace(go.Heatmap(
            z=np.round(values, 4), x=list(table.columns), y=list(table.index), text=text,
            texttemplate="%{text}", colorscale="RdYlGn", zmin=0.5, zmax=1.0, visible=index == 0,
            colorbar=dict(title=metric), hovertemplate="%{y} on %{x}: %{z:.3f}<extra>" + metric + "</extra>"))
    buttons = [dict(label=metric, method="update",
                    args=[{"visible": [i == j for j in range(len(tables))]},
                          {"title": f"{title} ({metric})"}])
               for i, metric in enumerate(tables)]
    figure.update_layout(
        title=f"{title} ({next(iter(tables))})", height=360, margin=dict(l=10, r=10, t=90, b=10),
        xaxis_title="real defect type (benchmark)", yaxis_title="trained on", yaxis_autorange="reversed",
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=1.0, xanchor="right",
                          y=1.18, yanchor="top")] if len(tables) > 1 else [])
    return figure
