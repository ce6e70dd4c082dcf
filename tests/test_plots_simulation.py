"""Figures of the anomaly-simulation chapter: outlines, slider steps that carry the right data, bold best
cells, and clear errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from uiad_lite.data.sample import Sample
from uiad_lite.plots.simulation import (
    OUTLINE_COLOR,
    _point_subset,
    depth_gallery,
    feature_gallery,
    image_gallery,
    outlined,
    point_gallery,
    real_vs_simulated,
    transfer_heatmap,
)
from uiad_lite.simulation import cutpaste, depth_bump, gaussian_feature_noise, point_bulge


def _decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_outline_rings_the_mask_from_outside():
    image = np.random.default_rng(0).integers(0, 200, (20, 20, 3), dtype=np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:12, 4:15] = True
    drawn = outlined(image, mask, max_side=20)
    padded = np.pad(mask, 1)
    touching = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    boundary = touching & ~mask  # 4-neighbours of the mask, outside it
    assert boundary.sum() == 2 * (7 + 11)
    assert (drawn[boundary] == OUTLINE_COLOR).all()
    np.testing.assert_array_equal(drawn[~boundary], image[~boundary])
    with pytest.raises(ValueError, match="does not match"):
        outlined(image, mask[:10], max_side=20)


def test_image_gallery_slider_steps_hold_each_seed_and_strength():
    rows, cols = np.mgrid[0:48, 0:48]
    image = np.stack([rows * 5, cols * 5, (rows + cols) * 2], axis=-1).astype(np.uint8)  # smooth for JPEG
    simulations = {"cut": lambda img, rng, s: cutpaste(img, rng, area_ratio=(0.05 * s, 0.1 * s))}
    figure = image_gallery(image, simulations, seeds=(0, 3), strengths=(1.0, 2.0), max_side=48)
    steps = figure.layout.sliders[0].steps
    assert [step.label for step in steps] == ["seed 0, strength 1", "seed 0, strength 2",
                                             "seed 3, strength 1", "seed 3, strength 2"]
    update, trace_ids = steps[2].args
    assert list(trace_ids) == [1]  # trace 0 is the untouched original
    altered, mask = simulations["cut"](image, np.random.default_rng(3), 1.0)
    shown = _decode(update["source"][0]).astype(int)
    expected = outlined(altered, mask, 48).astype(int)
    other_altered, other_mask = simulations["cut"](image, np.random.default_rng(0), 1.0)
    other_seed = outlined(other_altered, other_mask, 48).astype(int)
    assert np.abs(shown - expected).mean() < 6  # JPEG: close, not exact
    where = mask | other_mask  # where the two seeds' pictures differ, the step must show seed 3's
    assert np.abs(shown - expected)[where].mean() < 0.5 * np.abs(shown - other_seed)[where].mean()
    assert figure.data[1].source == steps[0].args[0]["source"][0]
    assert f"{mask.mean():.1%}" in update["hovertemplate"][0]
    with pytest.raises(ValueError, match="at least one seed"):
        image_gallery(image, simulations, seeds=())


def test_depth_gallery_change_is_the_bump_inside_its_mask():
    xyz = np.zeros((40, 40, 3), np.float32)
    xyz[..., 2] = 0.25
    xyz[..., 0] = np.linspace(-1, 1, 40)[None, :]
    simulate = {"bump": lambda cloud, rng, s: depth_bump(cloud, rng, magnitude=s / 1000, direction="out")}
    figure = depth_gallery(xyz, simulate, seeds=(2,), strengths=(1.0, 2.0), max_side=40)
    steps = figure.layout.sliders[0].steps
    assert len(steps) == 2 and list(steps[0].args[1]) == [0, 1, 2]
    altered, mask = depth_bump(xyz, np.random.default_rng(2), magnitude=0.002, direction="out")
    change_mm = np.array(steps[1].args[0]["z"][2], dtype=float)[::-1]
    np.testing.assert_allclose(change_mm, np.round((altered[..., 2] - xyz[..., 2]) * 1000, 2), atol=1e-6)
    assert (change_mm[~mask] == 0).all() and (change_mm[mask] < 0).any()


def test_point_gallery_keeps_every_displaced_point():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3000, 3)).astype(np.float32)
    labels = np.zeros(3000, bool)
    labels[rng.choice(3000, 100, replace=False)] = True
    keep = _point_subset(labels, 500, np.random.default_rng(1))
    assert labels[keep].sum() == 100 and len(keep) == 500 and np.all(np.diff(keep) > 0)
    figure = point_gallery(points, {"bulge": lambda p, r, s: point_bulge(p, r, n_affected=int(50 * s))},
                           seeds=(0,), strengths=(1.0, 2.0), max_points=400)
    colours = [np.array(step.args[0]["marker.color"][0]) for step in figure.layout.sliders[0].steps]
    assert [int(c.sum()) for c in colours] == [50, 100]
    assert all(len(c) == 400 for c in colours)


def test_feature_gallery_projects_on_principal_axes_and_scores_groups():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 6)) * np.array([5.0, 2.0, 0.1, 0.1, 0.1, 0.1])
    simulate = {"noise": lambda f, r, s: gaussian_feature_noise(f, r, sigma=s, fraction=0.1)}
    figure = feature_gallery(rows, simulate, seeds=(0,), strengths=(0.5, 1.0),
                             score=lambda f: np.linalg.norm(f, axis=1))
    normal = np.array([figure.data[0].x, figure.data[0].y]) if figure.data[0].x is not None else None
    assert normal is not None and np.var(normal[0]) > np.var(normal[1])
    update, trace_ids = figure.layout.sliders[0].steps[1].args
    assert list(trace_ids) == [1, 2, 3]  # simulated scatter, then boxes for normal and "noise"
    assert len(update["x"][0]) == 20
    with pytest.raises(ValueError, match=r"\(M, C\)"):
        feature_gallery(rows[0], simulate)


def test_transfer_heatmap_bolds_the_best_simulation_per_defect():
    table = pd.DataFrame({"crack": [0.6, 0.9], "stain": [0.8, np.nan]}, index=["a", "b"])
    figure = transfer_heatmap({"i_auroc": table, "p_auroc": table * 0.9})
    text = np.array(figure.data[0].text)
    assert text[1, 0] == "<b>0.90</b>" and text[0, 1] == "<b>0.80</b>" and text[1, 1] == ""
    assert [button.label for button in figure.layout.updatemenus[0].buttons] == ["i_auroc", "p_auroc"]
    assert figure.data[0].visible and not figure.data[1].visible
    with pytest.raises(ValueError, match="at least one table"):
        transfer_heatmap({})


def test_real_vs_simulated_refuses_bad_input():
    image = np.zeros((16, 16, 3), np.uint8)
    with_image = Sample("c", "test", label=1, defect="hole", image=image, mask=np.zeros((16, 16), bool))
    with pytest.raises(ValueError, match="modality must be"):
        real_vs_simulated([with_image], [with_image], modality="points")
    with pytest.raises(ValueError, match="has no xyz"):
        real_vs_simulated([with_image], [with_image], modality="xyz")
    figure = real_vs_simulated([with_image], [with_image])
    assert [a.text for a in figure.layout.annotations] == ["hole", "hole"]
