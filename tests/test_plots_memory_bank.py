"""Figures of the memory-bank chapter: what each trace holds, the controls, and the projection maths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
import torch
from sklearn.decomposition import PCA

from uiad_lite.plots import memory_bank as plots


def payload_kb(figure) -> float:
    return len(pio.to_json(figure)) / 1024


def results_table() -> pd.DataFrame:
    rows = []
    for m, method in enumerate(["PaDiM", "PatchCore", "CFA"]):
        for c, category in enumerate(["brick", "grass", "mean"]):
            rows.append({"method": method, "category": category, "i_auroc": 0.5 + 0.1 * m + 0.01 * c,
                         "p_auroc": 0.9 - 0.01 * m, "aupro": 0.6 + 0.05 * c})  # fmt: skip
    return pd.DataFrame(rows)


def sweep_table(offset: float = 0.0) -> pd.DataFrame:
    ratios = [0.1, 0.01, 1.0]  # deliberately unsorted
    return pd.DataFrame({"ratio": ratios, "bank_size": [10, 1, 100], "bank_mb": [0.1, 0.01, 1.0],
                         "i_auroc": [0.9 + offset, 0.8, 0.95], "aupro": [0.7, 0.6, 0.75],
                         "predict_ms_per_image": [5.0, 4.0, 20.0]})  # fmt: skip


# ---------------------------------------------------------------- bar chart


def test_bar_chart_has_one_trace_per_method_and_metric_and_a_working_dropdown():
    table = results_table()
    metrics = ("i_auroc", "aupro")
    figure = plots.methods_bar_chart(table, metrics)
    assert len(figure.data) == 3 * len(metrics)
    assert [trace.visible for trace in figure.data] == [True] * 3 + [False] * 3
    buttons = figure.layout.updatemenus[0].buttons
    assert [button.label for button in buttons] == ["image AUROC", "AU-PRO (FPR ≤ 0.3)"]
    assert buttons[1].args[0]["visible"] == [False] * 3 + [True] * 3
    aupro_cfa = figure.data[5]
    assert aupro_cfa.name == "CFA" and list(aupro_cfa.x) == ["brick", "grass", "mean"]
    expected = table[table["method"] == "CFA"]["aupro"].round(4).tolist()
    assert list(aupro_cfa.y) == expected


def test_bar_chart_refuses_incomplete_tables():
    with pytest.raises(ValueError, match="lacks column"):
        plots.methods_bar_chart(results_table().drop(columns="aupro"))
    doubled = pd.concat([results_table(), results_table().iloc[:1]])
    with pytest.raises(ValueError, match="once"):
        plots.methods_bar_chart(doubled)


# ---------------------------------------------------------------- trade-off


def test_tradeoff_panels_hold_the_sweep_sorted_by_ratio():
    figure = plots.coreset_tradeoff({"brick": sweep_table(), "grass": sweep_table(0.01)})
    assert len(figure.data) == 2 * 4
    assert [trace.showlegend for trace in figure.data] == [True, False, False, False] * 2
    brick_memory = figure.data[3]
    assert brick_memory.name == "brick" and brick_memory.yaxis == "y4"
    assert list(brick_memory.x) == [0.01, 0.1, 1.0]
    assert list(brick_memory.y) == [0.01, 0.1, 1.0]
    grass_auroc = figure.data[4]
    assert list(grass_auroc.y) == [0.8, 0.91, 0.95]
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis4.type == "log"
    assert sum(1 for shape in figure.layout.shapes if shape.x0 == 0.1) == 4


def test_tradeoff_refuses_missing_columns():
    with pytest.raises(ValueError, match="bank_mb"):
        plots.coreset_tradeoff({"brick": sweep_table().drop(columns="bank_mb")})
    with pytest.raises(ValueError, match="no sweep"):
        plots.coreset_tradeoff({})


# ---------------------------------------------------------------- projection


def stretched_cloud(seed: int = 0, count: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Points with standard deviations 10, 3, 0.1, 0.1 along a random orthonormal basis."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    points = (rng.standard_normal((count, 4)) * [10.0, 3.0, 0.1, 0.1]) @ basis.T + 5.0
    return points.astype(np.float32), basis


def test_principal_plane_recovers_the_stretch_directions_and_matches_sklearn():
    points, basis = stretched_cloud()
    mean, directions = plots.principal_plane(points)
    np.testing.assert_allclose(mean, points.astype(np.float64).mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(directions.T @ directions, np.eye(2), atol=1e-9)
    assert abs(directions[:, 0] @ basis[:, 0]) > 0.999 and abs(directions[:, 1] @ basis[:, 1]) > 0.99
    reference = PCA(n_components=2).fit(points.astype(np.float64)).components_.T
    np.testing.assert_allclose(np.abs(directions.T @ reference), np.eye(2), atol=1e-6)
    for column in range(2):  # sign convention: the largest entry is positive
        assert directions[np.argmax(np.abs(directions[:, column])), column] > 0
    _, flipped = plots.principal_plane(-points)
    np.testing.assert_allclose(flipped, directions, atol=1e-9)


def test_patches_under_masks_picks_exactly_the_covered_cells():
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[1, 2:4, 4:6] = True  # exactly cell (1, 2) of the 4x4 grid of image 1
    masks[0, 0, 0] = True  # a quarter of cell (0, 0): below the default coverage
    picked = plots.patches_under_masks(features, masks)
    np.testing.assert_array_equal(picked, features[1, :, 1, 2].numpy()[None])
    loose = plots.patches_under_masks(features, masks, min_coverage=0.25)
    assert loose.shape == (2, 3)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.patches_under_masks(features, masks[:1])


def test_projection_slider_shows_the_greedy_prefix_and_a_random_subset_of_equal_size():
    points, _ = stretched_cloud(count=400)
    order = np.random.default_rng(1).permutation(400)[:200]
    ratios = [0.05, 0.25, 0.5]
    anomalous = points[:7] + 50.0
    figure = plots.coreset_projection(points, order, ratios, anomalous=anomalous, max_background=100, seed=0)
    assert [trace.name.split(" (")[0] for trace in figure.data] == [
        "normal patches", "random subset", "greedy coreset", "patches inside defects"]  # fmt: skip
    assert len(figure.data[0].x) == 100
    mean, directions = plots.principal_plane(points)
    steps = figure.layout.sliders[0].steps
    assert [step.label for step in steps] == ["5.0%", "25.0%", "50.0%"]
    for ratio, step in zip(ratios, steps, strict=True):
        size = int(400 * ratio)
        update, traces = step.args
        assert list(traces) == [1, 2]
        random_x, greedy_x = update["x"]
        assert len(random_x) == len(greedy_x) == size
        expected = ((points[order[:size]] - mean) @ directions)[:, 0]
        np.testing.assert_allclose(greedy_x, expected, atol=5e-3)
    np.testing.assert_allclose(figure.data[3].x, ((anomalous - mean) @ directions)[:, 0], atol=5e-3)
    assert payload_kb(figure) < 200
    # coordinates are rounded to 2 decimals and stay short in the JSON (no float32 noise digits)
    assert max(len(repr(value)) for trace in figure.data for value in trace.x) <= 8


def test_projection_caps_the_points_it_draws_and_refuses_bad_input():
    points, _ = stretched_cloud(count=400)
    order = np.arange(400)
    figure = plots.coreset_projection(points, order, [1.0], max_shown=50, max_background=50)
    assert len(figure.data[2].x) == 50 and "50 drawn" in figure.data[2].name
    subsampled = plots.coreset_projection(points, order, [0.1], max_fit=100, max_background=400)
    full = plots.coreset_projection(points, order, [0.1], max_background=400)
    # a plane fitted on 100 of the 400 points still finds the dominant direction of the cloud
    correlation = np.corrcoef(subsampled.data[0].x, full.data[0].x)[0, 1]
    assert abs(correlation) > 0.99
    with pytest.raises(ValueError, match=r"\(M, d\)"):
        plots.coreset_projection(points[None], order, [0.1])
    with pytest.raises(ValueError, match="order has only"):
        plots.coreset_projection(points, order[:10], [0.5])
    with pytest.raises(ValueError, match="indices"):
        plots.coreset_projection(points, np.array([0, 400]), [0.001])
    with pytest.raises(ValueError, match="ratio"):
        plots.coreset_projection(points, order, [0.0])
    with pytest.raises(ValueError, match="anomalous"):
        plots.coreset_projection(points, order, [0.1], anomalous=np.ones((3, 2)))
