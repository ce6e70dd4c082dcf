"""Per-region overlaps, thresholds at a false-positive budget, the size-biased detector, pixel_metrics."""

from __future__ import annotations

import numpy as np
import pytest

from uiad_lite.metrics import (
    UndefinedMetricError,
    aupro,
    best_iou,
    iap_at_recall,
    instance_ap,
    pixel_ap,
    pixel_auroc,
    threshold_stats,
)
from uiad_lite.metrics.diagnostics import (
    pixel_metrics,
    region_overlaps,
    region_table,
    size_biased_maps,
    thresholds_at_fpr,
)


def _two_images() -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, 0:2, 0:2] = True  # region A, 4 px
    masks[0, 2, 2] = True  # touches A diagonally: same 8-connected region (5 px)
    masks[0, 5:8, 5] = True  # region B, 3 px
    masks[1, 4, 1:5] = True  # region C, 4 px
    maps = np.zeros((2, 8, 8))
    maps[0, 0, 0:2] = 5.0  # 2 of A's 5 pixels high
    maps[0, 5:8, 5] = [5.0, 5.0, 1.0]  # 2 of B's 3
    maps[1, 4, 1:5] = [5.0, 5.0, 5.0, 5.0]  # all of C
    return maps, masks


def test_region_overlaps_counts_each_8_connected_region():
    maps, masks = _two_images()
    sizes, overlaps = region_overlaps(maps, masks, threshold=2.0)
    np.testing.assert_array_equal(sizes, [5, 3, 4])
    np.testing.assert_allclose(overlaps, [2 / 5, 2 / 3, 1.0])
    # a lower threshold catches B's third pixel (score 1) and every normal pixel (score 0 >= 0)
    np.testing.assert_allclose(region_overlaps(maps, masks, 1.0)[1], [2 / 5, 1.0, 1.0])
    with pytest.raises(UndefinedMetricError, match="region"):
        region_overlaps(maps, np.zeros_like(masks), 1.0)


def test_thresholds_at_fpr_are_the_lowest_within_budget():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 16, 16))
    masks = np.zeros(maps.shape, dtype=bool)
    masks[1, 4:8, 4:8] = True
    maps[masks] += 2.0
    normal = np.sort(maps[~masks])[::-1]
    budgets = [0.0, 0.001, 0.01, 0.1, 0.5, 1.0]
    for budget, threshold in zip(budgets, thresholds_at_fpr(maps, masks, budgets), strict=True):
        fpr = threshold_stats(maps, masks, threshold)["fpr"]
        assert fpr <= budget
        flagged = int(round(fpr * normal.size))
        if flagged < normal.size:  # one notch lower flags the next normal pixel and breaks the budget
            assert threshold > normal[flagged]
            assert threshold_stats(maps, masks, normal[flagged])["fpr"] > budget
    assert thresholds_at_fpr(maps, masks, [1.0])[0] == maps.min()
    with pytest.raises(ValueError, match="FPR budget"):
        thresholds_at_fpr(maps, masks, [1.5])


def test_size_biased_maps_add_the_bump_only_to_large_enough_regions():
    masks = np.zeros((2, 20, 20), dtype=bool)
    masks[0, 2:4, 2:7] = True  # 10 px
    masks[1, 5:15, 5:10] = True  # 50 px
    every = size_biased_maps(masks, np.random.default_rng(3), min_region_pixels=0, strength=4.0, blur=0.0)
    large = size_biased_maps(masks, np.random.default_rng(3), min_region_pixels=20, strength=4.0, blur=0.0)
    expected = np.zeros(masks.shape)
    expected[0] = 4.0 * masks[0]
    np.testing.assert_allclose(every - large, expected, atol=1e-5)
    background = large[0]  # white noise scaled to unit standard deviation
    assert background.std() == pytest.approx(1.0, abs=1e-5)
    again = size_biased_maps(masks, np.random.default_rng(3), min_region_pixels=20, strength=4.0, blur=0.0)
    np.testing.assert_array_equal(large, again)


def test_size_biased_maps_reject_bad_arguments():
    masks = np.zeros((1, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="Generator"):
        size_biased_maps(masks, 0)
    with pytest.raises(ValueError, match=">= 0"):
        size_biased_maps(masks, np.random.default_rng(0), blur=-1.0)


def test_pixel_metrics_equal_the_single_metric_functions():
    rng = np.random.default_rng(4)
    masks = np.zeros((6, 24, 24), dtype=bool)
    masks[1, 3:9, 3:9] = True
    masks[2, 10:12, 15:20] = True
    masks[4, 18:23, 2:4] = True
    maps = size_biased_maps(masks, rng, strength=2.0, blur=1.0)
    values = pixel_metrics(maps, masks)
    assert values["p_auroc"] == pytest.approx(pixel_auroc(maps, masks))
    assert values["aupro"] == pytest.approx(aupro(maps, masks))
    assert values["p_ap"] == pytest.approx(pixel_ap(maps, masks))
    assert values["iou"] == pytest.approx(best_iou(maps, masks)[0])
    assert values["iap"] == pytest.approx(instance_ap(maps, masks))
    assert values["iap90"] == pytest.approx(iap_at_recall(maps, masks, 0.9))


def test_region_table_links_pro_and_pixel_tpr():
    maps, masks = _two_images()
    table = region_table(maps, masks, threshold=2.0)
    assert table["image"].tolist() == [0, 0, 1]
    assert table["region_pixels"].tolist() == [5, 3, 4]
    assert table["detected"].tolist() == [False, True, True]
    # PRO = plain mean of the overlaps; pixel TPR = their mean weighted by region size
    assert table["overlap"].mean() == pytest.approx((2 / 5 + 2 / 3 + 1) / 3)
    tpr = threshold_stats(maps, masks, 2.0)["tpr"]
    assert np.average(table["overlap"], weights=table["region_pixels"]) == pytest.approx(tpr)
    assert tpr == pytest.approx(8 / 12)
