"""Min-max normalisation with clamping, per-image min-max, quantisation and top-k image scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from uiad_lite.metrics import image_auroc
from uiad_lite.metrics.normalisation import (
    min_max_normalise,
    normalisation_bounds,
    normalisation_variants,
    per_image_min_max,
    quantise,
    top_k_count,
    top_k_mean,
    top_k_sweep,
)


def test_unclamped_min_max_is_increasing_and_keeps_auroc():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    labels = rng.random(200) < 0.3
    scaled = min_max_normalise(scores, -1.0, 1.0, clamp=False)
    np.testing.assert_allclose(scaled, (scores + 1.0) / 2.0)
    assert image_auroc(scaled, labels) == pytest.approx(image_auroc(scores, labels), abs=1e-12)


def test_clamping_turns_scores_into_ties_and_changes_auroc_as_counted_by_hand():
    # normal 0.1, 0.2, 0.9; anomalous 0.5, 0.8: 4 of 6 pairs ordered correctly
    scores = np.array([0.1, 0.2, 0.9, 0.5, 0.8])
    labels = np.array([0, 0, 0, 1, 1])
    assert image_auroc(scores, labels) == pytest.approx(4 / 6)
    clamped = min_max_normalise(scores, low=0.6, high=1.0)
    np.testing.assert_allclose(clamped, [0.0, 0.0, 0.75, 0.0, 0.5])
    # 0.5 now ties with both low normals (2 x 1/2), loses to 0.75; 0.5 beats both zeros (2)
    assert image_auroc(clamped, labels) == pytest.approx(3 / 6)
    assert image_auroc(clamped, labels) == pytest.approx(roc_auc_score(labels, clamped))


def test_clamping_at_the_top_ties_everything_above_high():
    values = np.array([-5.0, 0.0, 1.0, 2.0, 9.0])
    np.testing.assert_allclose(min_max_normalise(values, 0.0, 2.0), [0.0, 0.0, 0.5, 1.0, 1.0])


def test_bounds_are_percentiles_of_the_normal_scores():
    normal = np.arange(101, dtype=float)
    assert normalisation_bounds(normal) == (0.0, 100.0)
    assert normalisation_bounds(normal, 10, 90) == pytest.approx((10.0, 90.0))


@pytest.mark.parametrize(
    ("low", "high"), [(1.0, 1.0), (2.0, 1.0), (float("nan"), 1.0), (0.0, float("inf"))]
)
def test_min_max_rejects_bad_bounds(low, high):
    with pytest.raises(ValueError, match="low < high"):
        min_max_normalise(np.ones(3), low, high)


def test_bounds_and_values_reject_bad_input():
    with pytest.raises(ValueError, match="low_percentile"):
        normalisation_bounds(np.ones(5), 50, 50)
    with pytest.raises(ValueError, match="high_percentile"):
        normalisation_bounds(np.ones(5), 0, 101)
    with pytest.raises(ValueError, match="NaN"):
        min_max_normalise(np.array([0.0, np.nan]), 0.0, 1.0)


def test_per_image_min_max_gives_every_map_maximum_one_so_image_auroc_is_one_half():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(12, 8, 9)) * rng.uniform(0.5, 5.0, size=(12, 1, 1))
    maps[3] = 7.0  # a constant map
    scaled = per_image_min_max(maps)
    for index in range(12):
        if index == 3:
            assert not scaled[index].any()
            continue
        reference = (maps[index] - maps[index].min()) / (maps[index].max() - maps[index].min())
        np.testing.assert_allclose(scaled[index], reference)
    labels = np.arange(12) % 2
    labels[3] = 0
    image_scores = np.delete(scaled.reshape(12, -1).max(axis=1), 3)
    assert image_auroc(image_scores, np.delete(labels, 3)) == 0.5
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        per_image_min_max(np.ones((4, 4)))


def test_quantise_rounds_to_the_nearest_level_and_creates_ties():
    values = np.array([0.0, 0.1, 0.1001, 0.5, 1.0])
    eight_bit = quantise(values, 256)
    np.testing.assert_allclose(eight_bit * 255, np.round(values * 255))
    assert eight_bit[1] == eight_bit[2]
    np.testing.assert_allclose(quantise(values, 2), [0.0, 0.0, 0.0, 0.0, 1.0])  # 0.5 rounds to even
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantise(np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match="levels"):
        quantise(values, 1)


def test_top_k_mean_matches_sorting():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(5, 6, 7)).astype(np.float32)
    flat = np.sort(maps.reshape(5, -1), axis=1)[:, ::-1]
    np.testing.assert_allclose(top_k_mean(maps, 1), flat[:, 0])
    np.testing.assert_allclose(top_k_mean(maps, 5), flat[:, :5].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(top_k_mean(maps, 42), maps.reshape(5, -1).mean(axis=1), rtol=1e-5)
    # a share of the pixels, rounded up: 10% of 42 -> 5 pixels
    np.testing.assert_allclose(top_k_mean(maps, 0.1), flat[:, :5].mean(axis=1), rtol=1e-6)
    assert top_k_count(0.1, 42) == 5 and top_k_count(3.0, 42) == 3


@pytest.mark.parametrize("k", [0, 43, 1.5, -0.2, True, "3"])
def test_top_k_rejects_impossible_k(k):
    with pytest.raises(ValueError, match="k"):
        top_k_mean(np.zeros((2, 6, 7)), k)


def test_top_k_mean_averages_out_a_single_hot_pixel_but_dilutes_a_small_defect():
    """The trade-off the chapter measures: one spike vs a small bright patch."""
    maps = np.zeros((2, 20, 20))
    maps[0, 3, 3] = 10.0  # a good image with one hot pixel
    maps[1, 5:7, 5:7] = 4.0  # a defect of 4 pixels
    labels = np.array([0, 1])
    assert image_auroc(top_k_mean(maps, 1), labels) == 0.0
    assert image_auroc(top_k_mean(maps, 4), labels) == 1.0  # 2.5 < 4
    assert top_k_mean(maps, 16)[1] == pytest.approx(1.0)  # the defect diluted 4x


def test_normalisation_variants_apply_the_documented_recipes():
    rng = np.random.default_rng(3)
    reference = rng.gamma(2.0, size=(4, 10, 10))
    maps = rng.gamma(2.0, size=(6, 10, 10)) * 1.2
    variants = normalisation_variants(maps, reference, low_percentile=90.0)
    assert list(variants) == ["raw", "min-max, clamped", "min-max from p90, clamped", "per-image min-max",
                              "8-bit of min-max, clamped"]
    np.testing.assert_array_equal(variants["raw"], maps)
    clamped = np.clip((maps - reference.min()) / (reference.max() - reference.min()), 0, 1)
    np.testing.assert_allclose(variants["min-max, clamped"], clamped)
    low = np.percentile(reference, 90)
    np.testing.assert_allclose(variants["min-max from p90, clamped"],
                               np.clip((maps - low) / (reference.max() - low), 0, 1))
    np.testing.assert_allclose(variants["per-image min-max"], per_image_min_max(maps))
    np.testing.assert_allclose(variants["8-bit of min-max, clamped"], np.round(clamped * 255) / 255)
    # raising the low bound sends most pixels to exactly 0
    assert np.mean(variants["min-max from p90, clamped"] == 0) > 0.8
    assert "16 levels" in list(normalisation_variants(maps, reference, levels=16))[-1]


def test_top_k_sweep_scores_each_group_against_all_good_images():
    maps = np.zeros((5, 10, 10))
    maps[1, 0, 0] = 9.0  # good image with one hot pixel
    maps[2, 0:2, 0:2] = 5.0  # small defect (4 px)
    maps[3, 0:8, 0:8] = 2.0  # large defect (64 px), faint
    maps[4, 0:8, 0:8] = 3.0  # large defect (64 px)
    labels = np.array([0, 0, 1, 1, 1])
    sizes = np.array([0, 0, 4, 64, 64])
    table = top_k_sweep(maps, labels, [1, 50], defect_pixels=sizes, small_below=10).set_index(["k", "images"])
    # k=1: max scores 0, 9 | 5, 2, 3 -> each defect beats 1 of 2 good images
    assert table.loc[(1, "all"), "i_auroc"] == pytest.approx(3 / 6)
    assert table.loc[(1, "small defects"), "i_auroc"] == pytest.approx(1 / 2)
    # k=50: top-50 means 0, 0.18 (good) and 0.4, 2, 3 (defects): every defect above every good image
    assert table.loc[(50, "all"), "i_auroc"] == 1.0
    assert table.loc[(50, "large defects"), "i_auroc"] == 1.0
    assert sorted(top_k_sweep(maps, labels, [1])["images"]) == ["all"]
    with pytest.raises(ValueError, match="together"):
        top_k_sweep(maps, labels, [1], defect_pixels=sizes)
    with pytest.raises(ValueError, match="labels"):
        top_k_sweep(maps, labels[:3], [1])
