"""Pixel, AU-PRO and instance metrics against naive loop references written here."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from sklearn import metrics as sk

from uiad_lite.metrics import (
    UndefinedMetricError,
    aupro,
    best_iou,
    iap_at_recall,
    instance_ap,
    iou,
    label_regions,
    pixel_ap,
    pixel_auroc,
    pro_curve,
)

# --------------------------------------------------------------------------- naive references


def naive_regions(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of one 2-D mask by breadth-first flood fill."""
    seen = np.zeros_like(mask, dtype=bool)
    height, width = mask.shape
    regions = []
    for row, col in zip(*np.nonzero(mask), strict=True):
        if seen[row, col]:
            continue
        region = np.zeros_like(mask, dtype=bool)
        queue = deque([(row, col)])
        seen[row, col] = True
        while queue:
            r, c = queue.popleft()
            region[r, c] = True
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < height and 0 <= cc < width and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        regions.append(region)
    return regions


def all_regions(masks: np.ndarray) -> list[tuple[int, np.ndarray]]:
    return [(index, region) for index, mask in enumerate(masks) for region in naive_regions(mask)]


def naive_aupro(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """For every distinct threshold: binarise, mean overlap over all regions, FPR over normal pixels;
    trapezoid from (0, 0) up to ``limit`` with linear interpolation there, divided by ``limit``."""
    regions = all_regions(masks)
    normal = ~masks
    points = [(0.0, 0.0)]
    for threshold in sorted(set(maps.ravel().tolist()), reverse=True):
        predicted = maps >= threshold
        fpr = (predicted & normal).sum() / normal.sum()
        pro = np.mean([(predicted[i] & region).sum() / region.sum() for i, region in regions])
        points.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def naive_iou(maps: np.ndarray, masks: np.ndarray, threshold: float) -> float:
    predicted = maps >= threshold
    return (predicted & masks).sum() / (predicted | masks).sum()


def naive_instance_metrics(
    maps: np.ndarray, masks: np.ndarray, k: float, interpolate: bool
) -> tuple[float, float]:
    """Walk all distinct thresholds downwards; an operating point wherever more instances (regions
    with > 50% of pixels >= t) become detected; precision = pixel precision at that threshold."""
    regions = all_regions(masks)
    detected_before, operating = 0, []
    for threshold in sorted(set(maps.ravel().tolist()), reverse=True):
        predicted = maps >= threshold
        detected = sum((predicted[i] & region).sum() > region.sum() / 2 for i, region in regions)
        if detected > detected_before:
            operating.append((detected / len(regions), (predicted & masks).sum() / predicted.sum()))
            detected_before = detected
    recalls = [recall for recall, _ in operating]
    precisions = [precision for _, precision in operating]
    if interpolate:
        precisions = [max(precisions[i:]) for i in range(len(precisions))]
    ap = sum((r - r0) * p for r, r0, p in zip(recalls, [0.0] + recalls[:-1], precisions, strict=True))
    at_k = next(p for r, p in zip(recalls, precisions, strict=True) if r >= k)
    return ap, at_k


def random_maps(seed: int, ties: bool, shape=(4, 9, 11), density=0.12) -> tuple[np.ndarray, np.ndarray]:
    """Speckled masks (many one-pixel and diagonal-touching regions), first image defect-free."""
    rng = np.random.default_rng(seed)
    masks = rng.random(shape) < density
    masks[0] = False
    masks[1, 0, 0] = True
    maps = rng.normal(size=shape) + 1.2 * masks
    return (np.round(maps, 1) if ties else maps), masks


CASES = [(seed, ties) for seed in range(4) for ties in (False, True)]

# --------------------------------------------------------------------------- pixel AUROC / AP / IoU


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_pixel_auroc_and_ap_match_sklearn(seed, ties):
    maps, masks = random_maps(seed, ties)
    assert pixel_auroc(maps, masks) == pytest.approx(sk.roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert pixel_ap(maps, masks) == pytest.approx(
        sk.average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12
    )


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_iou_and_best_iou_match_naive_loop(seed, ties):
    maps, masks = random_maps(seed, ties)
    thresholds = sorted(set(maps.ravel().tolist()))
    naive = [naive_iou(maps, masks, t) for t in thresholds]
    for threshold in thresholds[::7]:
        assert iou(maps, masks, threshold) == pytest.approx(naive_iou(maps, masks, threshold), abs=1e-12)
    value, threshold = best_iou(maps, masks)
    assert value == pytest.approx(max(naive), abs=1e-12)
    assert iou(maps, masks, threshold) == pytest.approx(value, abs=1e-12)


def test_pixel_metrics_accept_float32_single_map_and_torch_device():
    maps, masks = random_maps(5, ties=True)
    maps32 = maps.astype(np.float32)
    expected = sk.roc_auc_score(masks.ravel(), maps32.ravel())
    assert pixel_auroc(maps32, masks) == pytest.approx(expected, abs=1e-12)
    assert pixel_auroc(maps32, masks, device="cpu") == pytest.approx(expected, abs=1e-12)
    assert aupro(maps32, masks, device="cpu") == aupro(maps32, masks)
    assert pixel_auroc(maps[1], masks[1]) == pytest.approx(
        sk.roc_auc_score(masks[1].ravel(), maps[1].ravel()), abs=1e-12
    )


# --------------------------------------------------------------------------- regions and AU-PRO


@pytest.mark.parametrize("seed", range(4))
def test_label_regions_matches_flood_fill(seed):
    _, masks = random_maps(seed, ties=False, density=0.3)
    regions = label_regions(masks)
    expected = all_regions(masks)
    assert regions.count == len(expected)
    assert sorted(regions.sizes.tolist()) == sorted(int(r.sum()) for _, r in expected)
    ids = np.full(masks.shape, -1)
    ids[masks] = regions.pixel_region
    for image, region in expected:  # every naive region is exactly one labelled region
        assert len(set(ids[image][region].tolist())) == 1


def test_diagonal_pixels_are_one_region_and_regions_stop_at_image_borders():
    masks = np.zeros((2, 3, 3), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 2, 2] = True  # diagonal chain: 8-connected
    masks[1, 0, 0] = True  # same position in the next image: a different region
    regions = label_regions(masks)
    assert regions.count == 2
    assert regions.sizes.tolist() == [3, 1]


@pytest.mark.parametrize("limit", [0.3, 0.05, 1.0])
@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_aupro_matches_naive_reference(seed, ties, limit):
    maps, masks = random_maps(seed, ties)
    value = aupro(maps, masks, fpr_limit=limit)
    assert value == pytest.approx(naive_aupro(maps, masks, limit), abs=1e-12)
    assert 0.0 <= value <= 1.0


def test_aupro_hand_computed_case():
    # one region of two pixels (0.9, 0.4), four normal pixels (0.8, 0.1, 0.2, 0.3). Curve vertices:
    # (0,0) (0,.5) (.25,.5) (.25,1) (1,1) -> area to 1: .25*.5 + .75 = .875; to .3: .125 + .05 = .175
    maps = np.array([[[0.9, 0.4, 0.8], [0.1, 0.2, 0.3]]])
    masks = np.array([[[1, 1, 0], [0, 0, 0]]], dtype=bool)
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(0.875, abs=1e-15)
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.175 / 0.3, abs=1e-15)
    assert aupro(maps, masks, fpr_limit=0.2) == pytest.approx(0.5, abs=1e-15)
    fpr, pro = pro_curve(maps, masks, fpr_limit=0.3)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.25, 0.25, 0.3])
    np.testing.assert_allclose(pro, [0, 0, 0.5, 0.5, 1.0, 1.0])


def test_aupro_averages_regions_not_pixels():
    # a 4-pixel region found at no false positive, a 1-pixel region scored below every normal pixel:
    # PRO = 1/2 up to FPR 1 (pixel TPR would be 4/5)
    maps = np.array([[[0.9, 0.9, 0.5, 0.1], [0.9, 0.9, 0.5, 0.5]]])
    masks = np.array([[[1, 1, 0, 1], [1, 1, 0, 0]]], dtype=bool)
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.5)


@pytest.mark.parametrize("limit", [0.3, 0.05, 1.0])
def test_perfect_map_gives_one_and_inverted_map_gives_zero(limit):
    _, masks = random_maps(1, ties=False)
    perfect = masks.astype(float) + np.random.default_rng(0).random(masks.shape) * 0.5
    assert aupro(perfect, masks, fpr_limit=limit) == pytest.approx(1.0, abs=1e-12)
    assert aupro(-perfect, masks, fpr_limit=limit) == pytest.approx(0.0, abs=1e-12)
    assert pixel_auroc(perfect, masks) == 1.0


def test_pro_curve_runs_from_origin_to_one_and_never_decreases():
    maps, masks = random_maps(2, ties=True)
    fpr, pro = pro_curve(maps, masks)
    assert (fpr[0], pro[0]) == (0.0, 0.0)
    assert fpr[-1] == 1.0 and pro[-1] == pytest.approx(1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= 0)


# --------------------------------------------------------------------------- instance metrics


@pytest.mark.parametrize("interpolate", [True, False])
@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_instance_metrics_match_naive_reference(seed, ties, interpolate):
    maps, masks = random_maps(seed, ties, density=0.2)
    for k in (0.9, 0.5, 1.0):
        expected_ap, expected_at_k = naive_instance_metrics(maps, masks, k, interpolate)
        value = iap_at_recall(maps, masks, k=k, interpolate=interpolate)
        assert value == pytest.approx(expected_at_k, abs=1e-12)
    assert instance_ap(maps, masks, interpolate=interpolate) == pytest.approx(expected_ap, abs=1e-12)


def test_instance_needs_strictly_more_than_half_of_its_pixels():
    # region of 4 pixels: detected at 0.7 (3 of 4 pixels), not at 0.8 (only 2 of 4 = 50%)
    maps = np.array([[[0.9, 0.8, 0.7, 0.6, 0.75, 0.1]]])
    masks = np.array([[[1, 1, 1, 1, 0, 0]]], dtype=bool)
    assert instance_ap(maps, masks) == pytest.approx(3 / 4)  # precision at 0.7: 3 TP, 1 FP (0.75)


def test_instance_precision_interpolation_by_hand():
    # region A = one pixel 0.9, detected at 0.9 with precision 1/2 (a normal 0.95 is above it);
    # region B = two pixels 0.5, detected at 0.5 with precision 3/4.
    maps = np.array([[[0.9, 0.95, 0.0, 0.5, 0.5]]])
    masks = np.array([[[1, 0, 0, 1, 1]]], dtype=bool)
    assert instance_ap(maps, masks, interpolate=False) == pytest.approx((0.5 + 0.75) / 2)
    assert instance_ap(maps, masks, interpolate=True) == pytest.approx(0.75)
    assert iap_at_recall(maps, masks, k=0.5, interpolate=False) == pytest.approx(0.5)
    assert iap_at_recall(maps, masks, k=0.5) == pytest.approx(0.75)
    assert iap_at_recall(maps, masks, k=0.9) == pytest.approx(0.75)


# --------------------------------------------------------------------------- validation


def test_pixel_inputs_are_validated_with_clear_messages():
    maps, masks = random_maps(0, ties=False)
    with pytest.raises(ValueError, match=r"maps has shape \(4, 9, 11\) but masks has shape \(4, 9, 10\)"):
        aupro(maps, masks[..., :10])
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\) or \(H, W\)"):
        pixel_auroc(maps.ravel(), masks.ravel())
    for bad in (np.nan, np.inf, -np.inf):
        for where in (masks, ~masks):  # a bad value on an anomalous and on a normal pixel
            broken = maps.copy()
            broken[np.nonzero(where)[0][0], np.nonzero(where)[1][0], np.nonzero(where)[2][0]] = bad
            for metric in (pixel_auroc, aupro, pixel_ap, instance_ap):
                with pytest.raises(ValueError, match="maps contains 1 NaN/inf"):
                    metric(broken, masks)
    with pytest.raises(ValueError, match="fpr_limit must lie in"):
        aupro(maps, masks, fpr_limit=0.0)
    with pytest.raises(ValueError, match="k .instance recall level. must lie in"):
        iap_at_recall(maps, masks, k=1.5)
    with pytest.raises(ValueError, match="maps is empty"):
        pixel_auroc(np.zeros((0, 4, 4)), np.zeros((0, 4, 4), dtype=bool))


def test_masks_without_defects_or_without_normal_pixels_are_undefined():
    maps = np.random.default_rng(0).random((2, 4, 4))
    no_defect = np.zeros((2, 4, 4), dtype=bool)
    for metric in (pixel_auroc, pixel_ap, aupro, best_iou, instance_ap, iap_at_recall):
        with pytest.raises(UndefinedMetricError):
            metric(maps, no_defect)
    with pytest.raises(UndefinedMetricError, match="normal pixels"):
        aupro(maps, ~no_defect)
    with pytest.raises(UndefinedMetricError, match="needs both normal and anomalous pixels"):
        pixel_auroc(maps, ~no_defect)


@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_constant_maps_score_like_a_coin(limit):
    """A detector that says the same everywhere: one threshold flags all pixels at once, so the ROC and
    PRO curves are the diagonal (ties count half): P-AUROC 0.5, normalised AU-PRO limit / 2, and
    precision equals the share of defective pixels at every recall (scikit-learn agrees)."""
    rng = np.random.default_rng(0)
    masks = rng.random((4, 32, 32)) < 0.1
    maps = np.full(masks.shape, 0.7, dtype=np.float32)
    assert pixel_auroc(maps, masks) == pytest.approx(0.5)
    assert aupro(maps, masks, fpr_limit=limit) == pytest.approx(limit / 2)
    assert pixel_ap(maps, masks) == pytest.approx(sk.average_precision_score(masks.ravel(), maps.ravel()))
    assert pixel_ap(maps, masks) == pytest.approx(masks.mean())


def test_random_maps_score_chance_levels():
    """Noise that knows nothing of the masks: P-AUROC near 0.5, but AU-PRO near limit / 2 = 0.15 at
    the conventional limit 0.3 (not 0.5: only the first 30% of the FPR axis is integrated), and P-AP
    near the share of defect pixels."""
    rng = np.random.default_rng(11)
    masks = np.zeros((40, 64, 64), dtype=bool)
    for index in range(20):  # square defects of assorted sizes in half of the images
        top, left, side = *rng.integers(0, 40, size=2), int(rng.integers(3, 20))
        masks[index, top : top + side, left : left + side] = True
    maps = rng.random(masks.shape)
    assert pixel_auroc(maps, masks) == pytest.approx(0.5, abs=0.01)
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.15, abs=0.01)
    assert aupro(maps, masks, fpr_limit=0.3) < 0.2
    assert pixel_ap(maps, masks) == pytest.approx(masks.mean(), rel=0.1)
