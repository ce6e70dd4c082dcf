"""The curve figures draw exactly the metric they name; the threshold slider shows what it says."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from uiad_lite.metrics import aupro, pr_curve, roc_curve
from uiad_lite.metrics.diagnostics import size_biased_maps, thresholds_at_fpr
from uiad_lite.plots.curves import (
    CONFUSION_COLOURS,
    confusion_layer,
    confusion_overlay,
    curve_points,
    curves_figure,
    decimate_curve,
    step_area,
    threshold_slider,
    trapezoid_area,
)


def _decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _panel_traces(figure: go.Figure, column: int) -> list:
    axis = "x" if column == 1 else f"x{column}"
    return [trace for trace in figure.data if trace.xaxis == axis and trace.hoverinfo != "skip"]


@pytest.fixture(scope="module")
def pixel_case() -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((5, 32, 32), dtype=bool)
    masks[1, 4:8, 4:8] = True
    masks[2, 10:30, 12:28] = True
    masks[3, 2:4, 25:27] = True
    masks[3, 20:26, 3:9] = True
    return size_biased_maps(masks, np.random.default_rng(0), min_region_pixels=10, strength=2.0), masks


def test_drawn_image_roc_and_pr_areas_are_the_metrics():
    rng = np.random.default_rng(0)
    labels = rng.random(80) < 0.4
    scores = np.round(rng.normal(size=80) + labels, 1)  # rounding creates ties
    figure = curves_figure({"images": (scores, labels)}, kinds=("roc", "pr"))
    (roc,), (pr,) = _panel_traces(figure, 1), _panel_traces(figure, 2)
    assert trapezoid_area(roc.x, roc.y) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert step_area(pr.x, pr.y) == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
    assert pr.line.shape == "vh"  # drawn as the steps whose area is AP
    panel_values = [note.text for note in figure.layout.annotations if "images " in note.text]
    assert f"images {roc_auc_score(labels, scores):.3f}" in panel_values[0]
    assert f"chance {labels.mean():.3f}" in panel_values[1]


def test_drawn_pro_area_up_to_the_limit_is_aupro(pixel_case):
    maps, masks = pixel_case
    figure = curves_figure({"maps": (maps, masks)}, kinds=("pro",), fpr_limit=0.2, max_points=10**7)
    (pro,) = _panel_traces(figure, 1)
    fpr, overlap = np.asarray(pro.x), np.asarray(pro.y)
    inside = fpr <= 0.2
    cut = np.argmax(~inside)  # first vertex beyond the limit: interpolate back to 0.2
    share = (0.2 - fpr[cut - 1]) / (fpr[cut] - fpr[cut - 1])
    at_limit = overlap[cut - 1] + share * (overlap[cut] - overlap[cut - 1])
    area = trapezoid_area(np.append(fpr[inside], 0.2), np.append(overlap[inside], at_limit)) / 0.2
    assert area == pytest.approx(aupro(maps, masks, 0.2), abs=1e-5)
    assert any(f"maps {aupro(maps, masks, 0.2):.3f}" in a.text for a in figure.layout.annotations)


def test_thinned_pixel_curves_keep_their_area_and_ends(pixel_case):
    maps, masks = pixel_case
    figure = curves_figure({"maps": (maps, masks)}, kinds=("roc",), max_points=200)
    (roc,) = _panel_traces(figure, 1)
    assert len(roc.x) <= 202
    assert (roc.x[0], roc.y[0], roc.x[-1], roc.y[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert trapezoid_area(roc.x, roc.y) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=2e-3)


def test_decimate_keeps_original_vertices_only():
    x = np.linspace(0, 1, 5000) ** 3
    y = np.sqrt(np.linspace(0, 1, 5000))
    small_x, small_y = decimate_curve(x, y, 50)
    assert 2 <= len(small_x) <= 52
    positions = np.searchsorted(x, small_x)
    np.testing.assert_array_equal(x[positions], small_x)
    np.testing.assert_array_equal(y[positions], small_y)
    assert decimate_curve(x[:10], y[:10], 50)[0].size == 10
    with pytest.raises(ValueError, match="max_points"):
        decimate_curve(x, y, 1)


def test_curves_figure_rejects_unknown_kinds_and_empty_entries():
    with pytest.raises(ValueError, match="kinds"):
        curves_figure({"a": (np.array([0.1, 0.9]), np.array([0, 1]))}, kinds=("det",))
    with pytest.raises(ValueError, match="entry"):
        curves_figure({})


def test_confusion_overlay_colours_every_pixel_by_its_outcome():
    rng = np.random.default_rng(1)
    anomaly_map = rng.random((12, 10))
    mask = rng.random((12, 10)) < 0.3
    image = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    picture = confusion_overlay(anomaly_map, mask, 0.5, image=image, max_side=20)
    flagged = anomaly_map >= 0.5
    for kind, where in (("tp", flagged & mask), ("fp", flagged & ~mask), ("fn", ~flagged & mask)):
        assert (picture[where] == CONFUSION_COLOURS[kind]).all()
    normal = picture[~flagged & ~mask]
    assert (normal[:, 0] == normal[:, 1]).all() and (normal[:, 1] == normal[:, 2]).all()  # grey


def test_confusion_layer_is_transparent_on_true_negatives():
    anomaly_map = np.array([[0.9, 0.1], [0.8, 0.2]])
    mask = np.array([[True, True], [False, False]])
    layer = confusion_layer(anomaly_map, mask, 0.5)
    assert layer.shape == (2, 2, 4)
    assert tuple(layer[0, 0]) == (*CONFUSION_COLOURS["tp"], 255)
    assert tuple(layer[0, 1]) == (*CONFUSION_COLOURS["fn"], 255)
    assert tuple(layer[1, 0]) == (*CONFUSION_COLOURS["fp"], 255)
    assert layer[1, 1, 3] == 0


def _on_polyline(px: float, py: float, xs: np.ndarray, ys: np.ndarray) -> bool:
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
        eps = 1e-12
        inside = min(x0, x1) - eps <= px <= max(x0, x1) + eps and min(y0, y1) - eps <= py <= max(y0, y1) + eps
        if inside and abs((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)) < 1e-12:
            return True
    return False


def test_tally_curves_trace_the_same_polylines_as_the_metric_curves():
    rng = np.random.default_rng(5)
    labels = rng.random(60) < 0.3
    scores = np.round(rng.normal(size=60) + labels, 1)
    fpr, tpr, _ = roc_curve(scores, labels)
    x, y, _ = curve_points(scores, labels, "roc")
    assert all(_on_polyline(a, b, x, y) for a, b in zip(fpr, tpr, strict=True))
    assert all(_on_polyline(a, b, fpr, tpr) for a, b in zip(x, y, strict=True))
    precision, recall, _ = pr_curve(scores, labels)
    x, y, _ = curve_points(scores, labels, "pr")
    # the PR vertices are the points of pr_curve at which the recall grows (plus the start)
    grows = np.concatenate([[True], np.diff(recall) > 0])
    np.testing.assert_allclose(x, recall[grows])
    np.testing.assert_allclose(y, precision[grows])
    with pytest.raises(ValueError, match="kind"):
        curve_points(scores, labels, "det")


def test_downsampled_overlay_never_hides_a_missed_pixel():
    anomaly_map = np.zeros((90, 90))
    mask = np.zeros((90, 90), dtype=bool)
    mask[44, 44] = True  # one missed defect pixel
    picture = confusion_overlay(anomaly_map + 1.0, np.zeros_like(mask), 0.5, max_side=30)  # all FP
    assert picture.shape == (30, 30, 3) and (picture == CONFUSION_COLOURS["fp"]).all()
    picture = confusion_overlay(anomaly_map, mask, 0.5, max_side=30)
    blue = (picture == CONFUSION_COLOURS["fn"]).all(axis=-1)
    assert blue.sum() == 1 and blue[44 // 3, 44 // 3]


def test_threshold_slider_has_one_step_per_threshold_with_exact_counts(pixel_case):
    maps, masks = pixel_case
    budgets = [0.2, 0.05, 0.01, 0.002]
    thresholds = thresholds_at_fpr(maps, masks, budgets)
    shown = [0, 1, 3]
    figure = threshold_slider(maps, masks, shown, thresholds, names=["good", "one", "two"],
                              step_labels=[f"FPR {b:g}" for b in budgets], max_side=32)
    steps = figure.layout.sliders[0].steps
    assert len(steps) == len(thresholds)
    images = [index for index, trace in enumerate(figure.data) if trace.type == "image"]
    assert len(images) == 2 * len(shown)  # a fixed background under every replaceable layer
    overlays = images[1::2]
    for step, threshold in zip(steps, thresholds, strict=True):
        traces, layout, trace_ids = step.args
        assert list(trace_ids) == overlays
        texts = [a["text"] for a in layout["annotations"] if "TP " in a["text"]]
        for source, text, index in zip(traces["source"], texts, shown, strict=True):
            flagged, truth = maps[index] >= threshold, masks[index]
            np.testing.assert_array_equal(_decode(source), confusion_layer(maps[index], truth, threshold,
                                                                           max_side=32))
            tp, fp, fn = (np.sum(flagged & truth), np.sum(flagged & ~truth), np.sum(~flagged & truth))
            assert f"TP {tp} · FN {fn}<br>FP {fp}<br>" in text
            labelled, count = ndimage.label(truth, structure=np.ones((3, 3)))
            found = sum(flagged[labelled == k].mean() > 0.5 for k in range(1, count + 1))
            assert (f"regions found {found}/{count}" in text) if count else ("no defect" in text)
        normal_flagged = np.sum((maps >= threshold) & ~masks) / np.sum(~masks)
        pooled_fpr = float(re.search(r"all maps: FPR ([0-9.]+)", layout["title.text"]).group(1))
        assert pooled_fpr == pytest.approx(normal_flagged, abs=1e-4)
        assert layout["shapes"][0]["x0"] == pytest.approx(max(normal_flagged, 1e-5))
    # the figure opens on the first step
    assert figure.data[overlays[0]].source == steps[0].args[0]["source"][0]


def test_threshold_slider_rejects_bad_arguments(pixel_case):
    maps, masks = pixel_case
    with pytest.raises(ValueError, match="shown"):
        threshold_slider(maps, masks, [7], [0.5])
    with pytest.raises(ValueError, match="names"):
        threshold_slider(maps, masks, [0, 1], [0.5], names=["only one"])
    with pytest.raises(ValueError, match="threshold"):
        threshold_slider(maps, masks, [0], [])
