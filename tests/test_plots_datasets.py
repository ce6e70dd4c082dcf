"""Figures of the datasets chapter: trace counts, what each trace holds, and small payloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from uiad_lite import survey
from uiad_lite.data import Sample
from uiad_lite.data import statistics as st
from uiad_lite.plots import datasets as plots


def payload_kb(figure) -> float:
    return len(pio.to_json(figure)) / 1024


def rgbd_sample(size: int = 80, defect: bool = True, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    xyz = np.stack([cols * 1e-3, rows * 1e-3, 0.25 + rng.normal(0, 1e-5, (size, size))], axis=-1).astype(
        np.float32
    )
    xyz[:3] = 0.0  # missing rows
    mask = np.zeros((size, size), dtype=bool)
    if defect:
        mask[40:45, 50:60] = True  # 50 pixels, all with valid depth
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Sample(
        category="toy",
        split="test",
        label=int(defect),
        defect="dent" if defect else "good",
        image=image,
        mask=mask,
        xyz=xyz,
    )


def scatter3d_points(figure) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trace in figure.data:
        if trace.type == "scatter3d":
            counts[trace.name] = counts.get(trace.name, 0) + len(trace.x)
    return counts


# ---------------------------------------------------------------- pixel helpers


def test_max_pool_keeps_a_single_defect_pixel():
    mask = np.zeros((5, 5), dtype=bool)
    mask[4, 4] = True
    pooled = plots.max_pool(mask, 2)
    expected = np.zeros((3, 3), dtype=bool)
    expected[2, 2] = True
    np.testing.assert_array_equal(pooled, expected)
    np.testing.assert_array_equal(plots.max_pool(mask, 1), mask)


def test_overlay_draws_the_outline_just_outside_the_mask():
    image = np.full((10, 10, 3), 100, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=bool)
    mask[4:6, 4:6] = True
    out = plots.overlay_mask(image, mask, max_side=10)
    red = np.all(out == plots.OUTLINE_COLOUR.astype(np.uint8), axis=-1)
    expected_ring = np.zeros((10, 10), dtype=bool)
    expected_ring[3:7, 3:7] = True
    expected_ring[4:6, 4:6] = False
    np.testing.assert_array_equal(red, expected_ring)
    assert (out[mask] == 100).all()  # the defect itself is left as it is
    assert plots.overlay_mask(np.zeros((300, 200, 3), np.uint8), None, max_side=100).shape == (100, 67, 3)
    with pytest.raises(ValueError, match="does not match"):
        plots.overlay_mask(image, np.zeros((4, 4), bool))


def test_depth_rendering_marks_missing_points_and_orders_heights():
    xyz = np.zeros((4, 4, 3), dtype=np.float32)
    xyz[..., 0], xyz[..., 1] = np.meshgrid(np.arange(4.0), np.arange(4.0))
    xyz[..., 2] = 10.0
    xyz[1, 1, 2] = 9.0  # closer to the sensor: higher
    xyz[0, 0] = 0.0  # missing
    picture = plots.depth_rendering(xyz, max_side=4, relief=0.0)
    assert picture.shape == (4, 4, 3)
    assert (picture[0, 0] == 0).all()
    # Viridis runs from dark purple (low) to yellow (high): the closer point is greener and redder
    assert picture[1, 1, 1] > picture[2, 2, 1] and picture[1, 1, 0] > picture[2, 2, 0]
    with pytest.raises(ValueError, match="organised cloud"):
        plots.depth_rendering(np.zeros((4, 4)))


# ---------------------------------------------------------------- figures


def test_datasets_explorer_has_one_trace_per_setting_and_type_and_a_menu():
    table = survey.datasets()
    figure = plots.datasets_explorer(table)
    groups = table.groupby(["setting", "type"]).ngroups
    assert len(figure.data) == groups
    assert sum(len(trace.x) for trace in figure.data) == len(table)
    buttons = figure.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [label for label, _ in plots.QUANTITIES.values()]
    for button in buttons:
        assert len(button.args[0]["y"]) == groups
    mvtec = next(trace for trace in figure.data if "MVTec AD" in list(trace.x))
    assert mvtec.y[list(mvtec.x).index("MVTec AD")] == 5354  # the survey's total for MVTec AD
    with pytest.raises(ValueError, match="lacks columns"):
        plots.datasets_explorer(table.drop(columns="n_classes"))


def test_sample_gallery_one_image_per_sample_and_depth_doubles_it():
    rows = {
        "good": [rgbd_sample(defect=False), rgbd_sample(defect=False, seed=1)],
        "dent": [rgbd_sample(seed=2)],
    }
    figure = plots.sample_gallery(rows, max_side=64)
    assert [trace.type for trace in figure.data] == ["image"] * 3
    assert all(trace.source.startswith("data:image/jpeg;base64,") for trace in figure.data)
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert "dent · 0.78%" in titles  # 50 of 6400 pixels
    with_depth = plots.sample_gallery(rows, max_side=64, show_depth=True)
    assert len(with_depth.data) == 6
    assert payload_kb(with_depth) < 60
    with pytest.raises(ValueError, match="no samples"):
        plots.sample_gallery({"good": []})
    flat = Sample(
        category="toy", split="test", image=np.zeros((8, 8, 3), np.uint8), mask=np.zeros((8, 8), bool)
    )
    with pytest.raises(ValueError, match="xyz"):
        plots.sample_gallery({"good": [flat]}, show_depth=True)


def test_rgbd_view_traces_and_points():
    sample = rgbd_sample()
    figure = plots.rgbd_view(sample, max_side=64, max_points=2000)
    assert [trace.type for trace in figure.data] == ["image", "heatmap", "contour", "scatter3d", "scatter3d"]
    counts = scatter3d_points(figure)
    assert counts == {"normal": 1950, "defect (ground truth)": 50}  # every defect point kept
    for trace in figure.data[3:]:
        assert not np.any((np.asarray(trace.x) == 0) & (np.asarray(trace.z) == 0))  # no missing point drawn
    heatmap = np.asarray(figure.data[1].z, dtype=float)
    assert np.isnan(heatmap[:2]).all() and not np.isnan(heatmap[2:]).any()  # rows 0-2 missing, step 2
    assert payload_kb(figure) < 120
    good = plots.rgbd_view(rgbd_sample(defect=False), max_side=64, max_points=2000)
    assert [trace.type for trace in good.data] == ["image", "heatmap", "scatter3d"]


def test_point_clouds_one_panel_per_sample_coloured_by_labels():
    rng = np.random.default_rng(0)
    good = Sample(
        category="panel",
        split="test",
        points=rng.normal(size=(6000, 3)).astype(np.float32),
        point_labels=np.zeros(6000, bool),
    )
    labels = np.zeros(7000, bool)
    labels[:120] = True
    bad = Sample(
        category="panel",
        split="test",
        label=1,
        defect="bulge",
        points=rng.normal(size=(7000, 3)).astype(np.float32),
        point_labels=labels,
    )
    figure = plots.point_clouds([good, bad], max_points=3000)
    assert [trace.name for trace in figure.data] == ["normal", "normal", "defect (ground truth)"]
    assert [trace.scene for trace in figure.data] == ["scene", "scene2", "scene2"]
    assert [len(trace.x) for trace in figure.data] == [3000, 2880, 120]
    assert [trace.showlegend for trace in figure.data] == [True, False, True]
    assert payload_kb(figure) < 160
    grid = plots.point_clouds([good, bad, good], max_points=500, columns=2)
    assert [trace.scene for trace in grid.data] == ["scene", "scene2", "scene2", "scene3"]
    third = grid.layout.scene3.domain
    assert third.x[0] == 0 and third.y[1] < grid.layout.scene.domain.y[0]  # second row, first column
    with pytest.raises(ValueError, match="no samples"):
        plots.point_clouds([])


def test_defect_sizes_boxes_per_type_and_one_curve_per_category():
    def sample(category, defect, region_sizes):
        mask = np.zeros((20, 20), bool)
        for row, size in enumerate(region_sizes):
            mask[2 * row, :size] = True
        return Sample(
            category=category,
            split="test",
            label=1,
            defect=defect,
            image=np.zeros((20, 20, 3), np.uint8),
            mask=mask,
        )

    samples = [sample("a", "scratch", [1, 3]), sample("a", "hole", [4]), sample("b", "scratch", [2])]
    statistics = st.defect_statistics(samples)
    figure = plots.defect_sizes(statistics, st.region_table(statistics))
    types = [trace.type for trace in figure.data]
    assert types == ["box", "box", "scatter", "scatter", "scatter"]  # hole, scratch; a, b; diagonal
    curve_a = figure.data[2]
    np.testing.assert_allclose(curve_a.x, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve_a.y, [0, 1 / 8, 4 / 8, 1])  # sizes 1, 3, 4 of 8 pixels
    with pytest.raises(ValueError, match="no anomalous"):
        plots.defect_sizes(statistics.iloc[0:0], st.region_table(statistics))


def test_modality_scatter_one_trace_per_defect_with_floor():
    table = pd.DataFrame(
        {
            "category": ["c"] * 3,
            "position": [0, 1, 2],
            "defect": ["dent", "stain", "dent"],
            "colour_contrast": [0.0, 20.0, 0.5],
            "depth_contrast": [12.0, 0.3, 8.0],
            "visible_in": ["depth", "colour", "depth"],
        }
    )
    figure = plots.modality_scatter(table, threshold=3.0)
    assert [trace.name for trace in figure.data] == ["dent", "stain"]
    np.testing.assert_allclose(figure.data[0].x, [0.01, 0.5])
    assert len(figure.layout.shapes) == 2
