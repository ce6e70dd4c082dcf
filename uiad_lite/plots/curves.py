"""Figures for the metrics chapter: ROC, precision-recall and PRO curves, and a threshold slider that
colours true positive, false positive and false negative pixels on example maps.

The curves are built from the exact score tally of :mod:`uiad_lite.metrics.tally` (the same counts
behind every metric value), so the drawn area is the number in the legend; building them from the
tally is much faster than one point per distinct score over millions of pixels. Long curves are then
thinned to at most ``max_points`` of their vertices (evenly along the curve's length, both ends
kept) to keep the page small.

The slider uses plotly ``sliders`` whose steps call ``update`` (new overlay images, title, annotations
and marker line), so it needs no kernel: it works in the static book and in JupyterLab alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from uiad_lite.data.sample import Sample
from uiad_lite.metrics import threshold_stats
from uiad_lite.metrics.diagnostics import region_overlaps
from uiad_lite.metrics.image import scores_and_labels
from uiad_lite.metrics.inputs import check_maps_and_masks
from uiad_lite.metrics.pixel import pixel_tally
from uiad_lite.metrics.pro import aupro_from_tally, pro_curve_from_tally
from uiad_lite.metrics.regions import label_regions
from uiad_lite.metrics.tally import ScoreTally, tally_scores
from uiad_lite.plots.maps import png_data_uri

CONFUSION_COLOURS = {
    "fp": (230, 70, 50),  # normal pixel flagged: red
    "tp": (40, 190, 90),  # defect pixel flagged: green
    "fn": (50, 130, 240),  # defect pixel missed: blue
}
COLOUR_KEY = (
    "<span style='color:rgb(40,190,90)'>TP</span> defect flagged · "
    "<span style='color:rgb(230,70,50)'>FP</span> normal flagged · "
    "<span style='color:rgb(50,130,240)'>FN</span> defect missed"
)
CURVE_KINDS = ("roc", "pr", "pro")
LOG_FPR_FLOOR = 1e-5


def trapezoid_area(x: Any, y: Any) -> float:
    """Area under the polyline through the points (x_i, y_i), x non-decreasing."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)


def step_area(recall: Any, precision: Any) -> float:
    """sum_i (R_i - R_(i-1)) P_i: the step-rule area that defines average precision."""
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    return float(np.sum(np.diff(recall) * precision[1:]))


def decimate_curve(
    x: Any, y: Any, max_points: int = 500, log_x: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` of the curve's vertices, evenly spaced along its length.

    The length is measured with both axes scaled to [0, 1] (x on a log scale when ``log_x``); the
    first and last vertices are always kept and no new point is invented.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of one length, got shapes {x.shape} and {y.shape}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if x.size <= max_points:
        return x, y
    u = np.log10(np.maximum(x, LOG_FPR_FLOOR)) if log_x else x
    spans = [max(float(np.ptp(values)), 1e-12) for values in (u, y)]
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(u) / spans[0], np.diff(y) / spans[1]))])
    picked = np.searchsorted(length, np.linspace(0.0, length[-1], max_points))
    keep = np.unique(np.concatenate([[0], np.minimum(picked, x.size - 1), [x.size - 1]]))
    return x[keep], y[keep]


def roc_vertices(tally: ScoreTally) -> tuple[np.ndarray, np.ndarray]:
    """Every corner of the exact ROC curve, (0, 0) to (1, 1), from a :class:`ScoreTally`.

    Between two distinct anomalous scores only normal items are added (a horizontal run), so two
    vertices per anomalous score -- just above it and at it -- trace the same polyline as one point
    per distinct score (what :func:`uiad_lite.metrics.roc_curve` returns), in far less time.
    """
    tpr_at = tally.positives_ge / tally.n_positive
    fpr = np.empty(2 * tpr_at.size + 2)
    tpr = np.empty_like(fpr)
    fpr[0], tpr[0], fpr[-1], tpr[-1] = 0.0, 0.0, 1.0, 1.0
    fpr[1:-1:2], tpr[1:-1:2] = tally.negatives_gt / tally.n_negative, np.concatenate([[0.0], tpr_at[:-1]])
    fpr[2:-1:2], tpr[2:-1:2] = tally.negatives_ge / tally.n_negative, tpr_at
    return fpr, tpr


def pr_vertices(tally: ScoreTally) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at (0, 1) and at every distinct anomalous score; drawn as "vh" steps.

    The step area of these points is average precision; the thresholds left out only lower the
    precision at an unchanged recall, i.e. they lie on the vertical parts of the steps.
    """
    recall = np.concatenate([[0.0], tally.positives_ge / tally.n_positive])
    precision = np.concatenate([[1.0], tally.precision()])
    return recall, precision


def curve_points(
    scores: Any, labels: Any, kind: str, fpr_limit: float = 0.3
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(x, y, area metric)`` of one curve kind: "roc" (FPR, TPR, AUROC), "pr" (recall,
    precision, AP) or "pro" (FPR, PRO, AU-PRO up to ``fpr_limit``; needs (N, H, W) maps and masks)."""
    if kind == "pro":
        tally, truth = pixel_tally(scores, labels)
        regions = label_regions(truth)
        fpr, pro = pro_curve_from_tally(tally, regions)
        return fpr, pro, aupro_from_tally(tally, regions, fpr_limit)
    if kind not in ("roc", "pr"):
        raise ValueError(f"kind must be one of {CURVE_KINDS}, got {kind!r}")
    tally = tally_scores(*scores_and_labels(scores, labels))
    if kind == "roc":
        return (*roc_vertices(tally), tally.auroc())
    return (*pr_vertices(tally), tally.average_precision())


def _axis_refs(figure: go.Figure, row: int, column: int) -> tuple[str, str]:
    """("x3", "y3")-style references of a subplot's axes."""
    axes = figure.get_subplot(row, column)
    return axes.xaxis.plotly_name.replace("axis", ""), axes.yaxis.plotly_name.replace("axis", "")


def curves_figure(
    entries: Mapping[str, tuple[Any, Any]],
    kinds: Sequence[str] = CURVE_KINDS,
    fpr_limit: float = 0.3,
    max_points: int = 500,
    title: str = "",
) -> go.Figure:
    """One panel per kind ("roc", "pr", "pro"), one coloured curve per entry ``name -> (scores, labels)``.

    For image-level curves pass image scores and labels; for pixel-level curves (N, H, W) maps and
    masks (required for "pro"). Under each panel, the entries' metric values (AUROC, AP, AU-PRO up
    to ``fpr_limit``, the shaded band) in their colours; the PR panel adds the chance level (share
    of positives). Clicking a name in the legend hides that entry in every panel.
    """
    kinds = list(kinds)
    unknown = [kind for kind in kinds if kind not in CURVE_KINDS]
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty subset of {CURVE_KINDS}, got {kinds}")
    if not entries:
        raise ValueError("curves_figure needs at least one entry name -> (scores, labels)")
    panel_titles = {"roc": "ROC · AUROC", "pr": "precision-recall · AP", "pro": "PRO · AU-PRO (shaded)"}
    figure = make_subplots(
        rows=1, cols=len(kinds), subplot_titles=[panel_titles[k] for k in kinds], horizontal_spacing=0.07
    )
    palette = qualitative.Plotly
    for column, kind in enumerate(kinds, start=1):
        values = []
        for index, (name, (scores, labels)) in enumerate(entries.items()):
            x, y, value = curve_points(scores, labels, kind, fpr_limit)
            x, y = decimate_curve(x, y, max_points)
            colour = palette[index % len(palette)]
            text = f"{name} {value:.3f}"
            if kind == "pr":
                text += f" (chance {np.mean(np.asarray(labels, dtype=bool)):.3f})"
            values.append(f"<span style='color:{colour}'>{text}</span>")
            figure.add_trace(
                go.Scatter(
                    x=x.astype(np.float32),
                    y=y.astype(np.float32),
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=column == 1,
                    line=dict(color=colour, width=2, shape="vh" if kind == "pr" else "linear"),
                    hovertemplate=f"{text}<br>x %{{x:.4f}}<br>y %{{y:.4f}}<extra></extra>",
                ),
                1,
                column,
            )
        x_ref, y_ref = _axis_refs(figure, 1, column)  # the values go under the panel, in the curves' colours
        figure.add_annotation(
            text="<br>".join(values),
            xref=f"{x_ref} domain",
            yref=f"{y_ref} domain",
            x=0.5,
            y=-0.2,
            xanchor="center",
            yanchor="top",
            align="center",
            showarrow=False,
            font=dict(size=10),
        )
        axis_titles = {
            "roc": ("false positive rate", "true positive rate"),
            "pr": ("recall", "precision"),
            "pro": ("false positive rate", "mean overlap per region"),
        }[kind]
        figure.update_xaxes(title_text=axis_titles[0], range=[0, 1], row=1, col=column)
        figure.update_yaxes(title_text=axis_titles[1], range=[0, 1.02], row=1, col=column)
        if kind == "roc":
            figure.add_trace(
                go.Scatter(
                    x=[0, 1],
                    y=[0, 1],
                    mode="lines",
                    showlegend=False,
                    hoverinfo="skip",
                    line=dict(color="grey", dash="dot", width=1),
                ),
                1,
                column,
            )
        if kind == "pro":
            figure.add_vrect(
                x0=0, x1=fpr_limit, fillcolor="grey", opacity=0.15, line_width=0, row=1, col=column
            )
    bottom = 70 + 14 * len(entries)
    figure.update_layout(
        title=title or None,
        height=340 + bottom,
        margin=dict(l=50, r=10, t=90, b=bottom),
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.02, yanchor="bottom"),
    )
    return figure


def _pool(mask: np.ndarray, step: int) -> np.ndarray:
    """Block maximum over aligned step x step blocks (the same grid as ``array[::step, ::step]``)."""
    if step == 1:
        return mask
    rows, columns = -(-mask.shape[0] // step), -(-mask.shape[1] // step)
    padded = np.zeros((rows * step, columns * step), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(rows, step, columns, step).any(axis=(1, 3))


def _step_for(shape: tuple[int, ...], max_side: int) -> int:
    return max(1, int(np.ceil(max(shape[:2]) / max_side)))


def confusion_layer(anomaly_map: Any, mask: Any, threshold: float, max_side: int = 96) -> np.ndarray:
    """RGBA uint8 layer of ``anomaly_map >= threshold`` against ``mask``: TP green, FP red, FN blue,
    true negatives transparent.

    Downsampled to at most ``max_side`` pixels by aligned blocks; a block takes the colour of any FN
    pixel in it, else any TP, else any FP, so that missed defects never vanish from the picture.
    """
    score_map, truth = check_maps_and_masks(anomaly_map, mask)
    if score_map.shape[0] != 1:
        raise ValueError(f"one (H, W) map expected, got shape {np.shape(anomaly_map)}")
    score_map, truth = score_map[0], truth[0]
    flagged = score_map >= float(threshold)
    step = _step_for(truth.shape, max_side)
    layer = np.zeros((*truth[::step, ::step].shape, 4), dtype=np.uint8)
    for kind, selected in (("fp", flagged & ~truth), ("tp", flagged & truth), ("fn", ~flagged & truth)):
        layer[_pool(selected, step)] = (*CONFUSION_COLOURS[kind], 255)
    return layer


def _background(shape: tuple[int, int], image: np.ndarray | None, max_side: int) -> np.ndarray:
    """The image in dimmed grey (dark grey without an image), on the grid of :func:`confusion_layer`."""
    step = _step_for(shape, max_side)
    if image is None:
        return np.full((-(-shape[0] // step), -(-shape[1] // step), 3), 60, dtype=np.uint8)
    image = np.asarray(image)
    if image.shape[:2] != tuple(shape):
        raise ValueError(f"image of shape {image.shape} does not match map of shape {tuple(shape)}")
    grey = image.reshape(*shape, -1).mean(axis=-1)[::step, ::step]
    return np.repeat((30 + 0.45 * grey)[..., None], 3, axis=-1).astype(np.uint8)


def confusion_overlay(
    anomaly_map: Any, mask: Any, threshold: float, image: np.ndarray | None = None, max_side: int = 96
) -> np.ndarray:
    """RGB uint8 picture: :func:`confusion_layer` painted over the image in dimmed grey (or dark grey)."""
    layer = confusion_layer(anomaly_map, mask, threshold, max_side)
    picture = _background(np.shape(anomaly_map), image, max_side)
    opaque = layer[..., 3] > 0
    picture[opaque] = layer[opaque, :3]
    return picture


def _confusion_counts(anomaly_map: np.ndarray, mask: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """TP, FP, FN pixel counts of ``anomaly_map >= threshold`` against ``mask``."""
    flagged = anomaly_map >= threshold
    return tuple(int(np.count_nonzero(where)) for where in (flagged & mask, flagged & ~mask, ~flagged & mask))


def _panel_note(anomaly_map: np.ndarray, mask: np.ndarray, threshold: float, refs: tuple[str, str]) -> dict:
    """Annotation under one overlay: its TP / FP / FN pixel counts and regions found (> half flagged)."""
    counts = _confusion_counts(anomaly_map, mask, threshold)
    regions = "no defect"
    if mask.any():
        overlaps = region_overlaps(anomaly_map, mask, threshold)[1]
        regions = f"regions found {int(np.count_nonzero(overlaps > 0.5))}/{overlaps.size}"
    return dict(
        text=f"TP {counts[0]} · FN {counts[2]}<br>FP {counts[1]}<br>{regions}",
        xref=f"{refs[0]} domain",
        yref=f"{refs[1]} domain",
        x=0.5,
        y=-0.03,
        xanchor="center",
        yanchor="top",
        showarrow=False,
        font=dict(size=10),
    )


def _pooled_heading(maps: np.ndarray, masks: np.ndarray, threshold: float, label: str) -> tuple[str, float]:
    """Title text with the pooled FPR, TPR, PRO, IoU and regions found; and the pooled FPR."""
    pooled = threshold_stats(maps, masks, threshold)
    iou = pooled["tp"] / (pooled["tp"] + pooled["fp"] + pooled["fn"])
    overlaps = region_overlaps(maps, masks, threshold)[1] if masks.any() else np.zeros(0)
    pro_value = float(overlaps.mean()) if overlaps.size else float("nan")
    heading = (
        f"threshold {threshold:.4g} ({label}) · all maps: FPR {pooled['fpr']:.4f}, "
        f"TPR {pooled['tpr']:.3f}, PRO {pro_value:.3f}, IoU {iou:.3f}, "
        f"regions found {int(np.count_nonzero(overlaps > 0.5))}/{overlaps.size}"
    )
    return heading, pooled["fpr"]


def threshold_slider(
    maps: Any,
    masks: Any,
    shown: Sequence[int],
    thresholds: Sequence[float],
    images: Sequence[np.ndarray] | None = None,
    names: Sequence[str] | None = None,
    step_labels: Sequence[str] | None = None,
    max_side: int = 96,
    title: str = "",
) -> go.Figure:
    """Slide a threshold over the maps ``shown`` (indices into ``maps``); one slider step per threshold.

    Top row: the anomaly maps, one colour scale from the lowest to the highest threshold. Bottom
    row: :func:`confusion_layer` at the step's threshold over ``images`` in grey (when given) with
    that map's TP / FP / FN counts and regions found (more than half flagged, the DeSTSeg rule).
    Right: the pooled pixel ROC and PRO curves over *all* maps (log FPR axis) with a line at the
    step's FPR; the title gives the pooled FPR, TPR, PRO and IoU.
    """
    score_maps, truth = check_maps_and_masks(maps, masks)
    shown = [int(i) for i in shown]
    if not shown or not all(0 <= i < len(score_maps) for i in shown):
        raise ValueError(f"shown must list indices into the {len(score_maps)} maps, got {shown}")
    thresholds = [float(t) for t in thresholds]
    if not thresholds or not np.all(np.isfinite(thresholds)):
        raise ValueError(f"give at least one finite threshold, got {thresholds}")
    names = list(names) if names is not None else [f"map {i}" for i in shown]
    step_labels = list(step_labels) if step_labels is not None else [f"{t:.3g}" for t in thresholds]
    if len(names) != len(shown) or len(step_labels) != len(thresholds):
        raise ValueError("names must match shown and step_labels must match thresholds in length")
    if images is not None and len(images) != len(shown):
        raise ValueError(f"images must hold one image per shown map ({len(shown)}), got {len(images)}")
    pictures = list(images) if images is not None else [None] * len(shown)

    n = len(shown)
    figure = make_subplots(
        rows=2,
        cols=n + 1,
        specs=[[{}] * n + [{"rowspan": 2}], [{}] * n + [None]],
        subplot_titles=[*names, "pooled ROC and PRO", *[""] * n],
        column_widths=[1.0] * n + [1.6],
        horizontal_spacing=0.03,
        vertical_spacing=0.12,
    )
    step = _step_for(truth.shape[1:], max_side)
    low, high = min(thresholds), max(thresholds)  # the colour scale spans the slider's range
    if low == high:
        low, high = np.percentile(score_maps[shown], [1, 99.9])
    for column, index in enumerate(shown, start=1):
        small = score_maps[index][::step, ::step][::-1].astype(np.float32)
        figure.add_trace(
            go.Heatmap(
                z=small,
                zmin=low,
                zmax=high,
                colorscale="Inferno",
                showscale=False,
                hovertemplate="score %{z}<extra></extra>",
            ),
            1,
            column,
        )
        figure.update_yaxes(scaleanchor=_axis_refs(figure, 1, column)[0], row=1, col=column)
    overlay_ids = []  # per panel: a fixed background image, and above it the layer each step replaces
    for column, picture in enumerate(pictures, start=1):
        background = _background(truth.shape[1:], picture, max_side)
        figure.add_trace(go.Image(source=png_data_uri(background), hoverinfo="skip"), 2, column)
        overlay_ids.append(len(figure.data))
        figure.add_trace(
            go.Image(source=png_data_uri(np.zeros((2, 2, 4), np.uint8)), hoverinfo="skip"), 2, column
        )
    for kind, name, colour in (("roc", "ROC: pixel TPR", "#636efa"), ("pro", "PRO", "#ef553b")):
        x, y, _ = curve_points(score_maps, truth, kind)
        x, y = decimate_curve(x, y, 300, log_x=True)
        kept = x > 0  # a log axis cannot show FPR 0
        figure.add_trace(
            go.Scatter(
                x=x[kept].astype(np.float32),
                y=y[kept].astype(np.float32),
                mode="lines",
                name=name,
                line=dict(color=colour),
            ),
            1,
            n + 1,
        )
    figure.update_xaxes(
        type="log", range=[np.log10(LOG_FPR_FLOOR), 0], title_text="pixel FPR (log)", row=1, col=n + 1
    )
    figure.update_yaxes(range=[0, 1.02], row=1, col=n + 1)
    for row in (1, 2):
        for column in range(1, n + 1):
            figure.update_xaxes(visible=False, row=row, col=column)
            figure.update_yaxes(visible=False, row=row, col=column)

    fixed = [annotation.to_plotly_json() for annotation in figure.layout.annotations]
    curve_refs = _axis_refs(figure, 1, n + 1)
    steps = []
    for threshold, step_label in zip(thresholds, step_labels, strict=True):
        sources, notes = [], []
        for column, index in enumerate(shown, start=1):
            layer = confusion_layer(score_maps[index], truth[index], threshold, max_side)
            sources.append(png_data_uri(layer))
            refs = _axis_refs(figure, 2, column)
            notes.append(_panel_note(score_maps[index], truth[index], threshold, refs))
        heading, pooled_fpr = _pooled_heading(score_maps, truth, threshold, step_label)
        line_x = max(pooled_fpr, LOG_FPR_FLOOR)  # shapes on a log axis take data values
        marker = dict(
            type="line",
            xref=curve_refs[0],
            yref=curve_refs[1],
            x0=line_x,
            x1=line_x,
            y0=0,
            y1=1.02,
            line=dict(color="black", dash="dash", width=1),
        )
        layout = {
            "title.text": f"{title + '<br>' if title else ''}{heading}<br>{COLOUR_KEY}",
            "annotations": fixed + notes,
            "shapes": [marker],
        }
        steps.append(dict(method="update", label=step_label, args=[{"source": sources}, layout, overlay_ids]))
    first_traces, first_layout, _ = steps[0]["args"]
    for trace_id, source in zip(overlay_ids, first_traces["source"], strict=True):
        figure.data[trace_id].source = source
    top = (3 if title else 2) * 18 + 30 + 14 * max(name.count("<br>") + 1 for name in names)
    figure.update_layout(
        title=dict(
            text=first_layout["title.text"],
            font=dict(size=13),
            y=1.0,
            yanchor="top",
            yref="container",
            pad=dict(t=8),
        ),
        annotations=first_layout["annotations"],
        shapes=first_layout["shapes"],
        sliders=[
            dict(
                active=0,
                steps=steps,
                currentvalue=dict(prefix="threshold at "),
                pad=dict(t=60),
                x=0.0,
                len=1.0,
            )
        ],
        height=520 + top,
        margin=dict(l=10, r=10, t=top, b=40),
        legend=dict(x=1.0, xanchor="right", y=0.02, yanchor="bottom"),
    )
    return figure


def map_inspection(
    sample: Sample, anomaly_map: Any, threshold: float, score: float | None = None, max_side: int = 160
) -> go.Figure:
    """One test image at one threshold: the image, its ground truth, the anomaly map and the
    :func:`confusion_overlay` (TP green, FP red, FN blue); the title gives the image score and the
    pixel counts and IoU at ``threshold``."""
    score_map, truth = check_maps_and_masks(
        anomaly_map, sample.mask if sample.mask is not None else np.zeros(np.shape(anomaly_map), bool)
    )
    score_map, truth = score_map[0], truth[0]
    tp, fp, fn = _confusion_counts(score_map, truth, float(threshold))
    iou = tp / (tp + fp + fn) if tp + fp + fn else float("nan")
    step = _step_for(truth.shape, max_side)
    figure = make_subplots(
        rows=1,
        cols=4,
        horizontal_spacing=0.02,
        subplot_titles=["image", "ground truth", "anomaly map", "at the threshold"],
    )
    if sample.image is not None:
        figure.add_trace(go.Image(source=png_data_uri(sample.image[::step, ::step]), hoverinfo="skip"), 1, 1)
    figure.add_trace(go.Image(source=png_data_uri(truth[::step, ::step]), hoverinfo="skip"), 1, 2)
    figure.add_trace(
        go.Heatmap(
            z=score_map[::step, ::step][::-1].astype(np.float32),
            colorscale="Inferno",
            colorbar=dict(x=0.74, len=0.8, thickness=10),
            hovertemplate="score %{z}<extra></extra>",
        ),
        1,
        3,
    )
    figure.update_yaxes(scaleanchor=_axis_refs(figure, 1, 3)[0], row=1, col=3)
    overlay = confusion_overlay(score_map, truth, threshold, sample.image, max_side)
    figure.add_trace(go.Image(source=png_data_uri(overlay), hoverinfo="skip"), 1, 4)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    scored = f" · image score {score:.4g}" if score is not None else ""
    figure.update_layout(
        title=(f"{sample.path or sample.defect} ({sample.defect}){scored}<br>threshold {threshold:.4g}: "
               f"TP {tp} · FP {fp} · FN {fn} pixels · IoU {iou:.3f}"),
        height=330, margin=dict(l=10, r=10, t=80, b=10),
    )  # fmt: skip
    return figure
