"""Looking inside the pixel metrics: per-region overlap, thresholds at a chosen false-positive rate,
and a controlled detector that sees defects of some sizes only.

* :func:`region_overlaps` -- for every ground-truth region C_k (8-connected, as in AU-PRO and the
  DeSTSeg instance metrics) its size |C_k| and overlap |P_t intersect C_k| / |C_k| at threshold t. The
  mean overlap is PRO(t) (Bergmann et al., MVTec AD, IJCV 2021); overlap > 1/2 is DeSTSeg's rule
  for a detected instance (Zhang et al., CVPR 2023).
* :func:`region_table` -- the same per region as a table, with the image each region is in.
* :func:`thresholds_at_fpr` -- the lowest threshold whose pixel false-positive rate stays within a
  budget, i.e. where a point of the ROC / PRO curve lies on the FPR axis.
* :func:`size_biased_maps` -- anomaly maps of a constructed detector: smooth noise everywhere plus a
  blurred bump on every defect region of at least ``min_region_pixels`` pixels. It makes the contrast
  between pixel-weighted metrics (P-AUROC) and region-weighted ones (AU-PRO) controllable.
* :func:`pixel_metrics` -- the six pixel/instance metrics of :func:`uiad_lite.metrics.evaluate` for
  bare (maps, masks) arrays, e.g. constructed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from uiad_lite.metrics.inputs import UndefinedMetricError, check_finite, check_maps_and_masks
from uiad_lite.metrics.instance import iap_at_recall_from_tally, instance_ap_from_tally
from uiad_lite.metrics.pro import aupro_from_tally
from uiad_lite.metrics.regions import EIGHT_CONNECTED, label_regions
from uiad_lite.metrics.tally import tally_scores


def region_overlaps(maps: Any, masks: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, overlaps)`` of every ground-truth region, in :func:`label_regions` order.

    ``overlaps[k]`` is the share of region k's pixels with ``score >= threshold``.
    Raises ``UndefinedMetricError`` when the masks hold no region.
    """
    score_maps, truth = check_maps_and_masks(maps, masks)
    check_finite(score_maps, "maps")
    regions = label_regions(truth)
    if regions.count == 0:
        raise UndefinedMetricError(
            "region_overlaps needs at least one ground-truth region; masks are all normal"
        )
    hits = score_maps[truth] >= float(threshold)
    found = np.bincount(regions.pixel_region, weights=hits, minlength=regions.count)
    return regions.sizes.copy(), found / regions.sizes


def region_table(maps: Any, masks: Any, threshold: float) -> pd.DataFrame:
    """One row per ground-truth region: ``image`` index, ``region_pixels``, ``overlap``, ``detected``.

    ``detected`` is DeSTSeg's rule (overlap > 1/2). The plain mean of ``overlap`` is PRO(t); the
    mean weighted by ``region_pixels`` is the pixel true-positive rate TPR(t).
    """
    score_maps, truth = check_maps_and_masks(maps, masks)
    sizes, overlaps = region_overlaps(score_maps, truth, threshold)
    per_image = [ndimage.label(mask, structure=EIGHT_CONNECTED)[1] if mask.any() else 0 for mask in truth]
    return pd.DataFrame({
        "image": np.repeat(np.arange(len(truth)), per_image),
        "region_pixels": sizes,
        "overlap": overlaps,
        "detected": overlaps > 0.5,
    })


def thresholds_at_fpr(maps: Any, masks: Any, fprs: Sequence[float]) -> np.ndarray:
    """For each FPR budget f in [0, 1], the lowest threshold t with pixel FPR(t) <= f.

    FPR(t) is the share of normal pixels with ``score >= t``. Exact: with the normal scores sorted
    in decreasing order v_1 >= v_2 >= ..., t is the next float above v_(m+1), m = floor(f * n_normal)
    (or the smallest score of all when every normal pixel may be flagged).
    """
    score_maps, truth = check_maps_and_masks(maps, masks)
    check_finite(score_maps, "maps")
    normal = np.sort(score_maps[~truth])[::-1]
    if normal.size == 0:
        raise UndefinedMetricError("thresholds_at_fpr needs normal pixels; masks are all anomalous")
    thresholds = []
    for fpr in fprs:
        fpr = float(fpr)
        if not 0.0 <= fpr <= 1.0:
            raise ValueError(f"every FPR budget must lie in [0, 1], got {fpr}")
        allowed = int(np.floor(fpr * normal.size + 1e-9))
        if allowed >= normal.size:
            thresholds.append(float(score_maps.min()))
        else:
            thresholds.append(float(np.nextafter(normal[allowed], np.inf)))
    return np.array(thresholds)


def size_biased_maps(
    masks: Any,
    rng: np.random.Generator,
    *,
    min_region_pixels: int = 0,
    strength: float = 6.0,
    noise: float = 1.0,
    blur: float = 1.0,
) -> np.ndarray:
    """Maps (N, H, W) float32 of a detector that finds only regions of >= ``min_region_pixels`` pixels.

    map = G_blur * (noise * white noise) / its std + strength * G_blur * [pixel in a found region],
    with G_blur a Gaussian filter of sigma ``blur`` pixels (0 = none). Regions are the 8-connected
    components of each mask. ``min_region_pixels=0`` finds every defect.
    """
    truth = check_maps_and_masks(np.zeros(np.shape(masks), dtype=np.float32), masks)[1]
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if min_region_pixels < 0 or noise < 0 or blur < 0:
        raise ValueError(
            f"min_region_pixels, noise and blur must be >= 0, got {min_region_pixels}, {noise}, {blur}"
        )
    maps = np.empty(truth.shape, dtype=np.float32)
    for index, mask in enumerate(truth):
        found = np.zeros(mask.shape, dtype=np.float64)
        if mask.any():
            labelled, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
            sizes = np.bincount(labelled.reshape(-1), minlength=count + 1)
            keep = sizes >= min_region_pixels
            keep[0] = False
            found = keep[labelled].astype(np.float64)
        background = rng.standard_normal(mask.shape)
        if blur:
            background = ndimage.gaussian_filter(background, blur)
            found = ndimage.gaussian_filter(found, blur)
        background *= noise / max(float(background.std()), 1e-12)
        maps[index] = background + strength * found
    return maps


def pixel_metrics(maps: Any, masks: Any, fpr_limit: float = 0.3) -> dict[str, float]:
    """The pixel and instance keys of :func:`uiad_lite.metrics.evaluate` straight from arrays.

    One shared tally and one region labelling serve all six metrics (``p_auroc``, ``aupro``,
    ``p_ap``, ``iou`` = best IoU, ``iap``, ``iap90``).
    """
    score_maps, truth = check_maps_and_masks(maps, masks)
    tally = tally_scores(score_maps, truth, name="maps")
    regions = label_regions(truth)
    return {
        "p_auroc": tally.auroc("pixel AUROC", "pixels"),
        "aupro": aupro_from_tally(tally, regions, fpr_limit),
        "p_ap": tally.average_precision("pixel AP", "pixels"),
        "iou": tally.best_iou("IoU", "pixels")[0],
        "iap": instance_ap_from_tally(tally, regions),
        "iap90": iap_at_recall_from_tally(tally, regions, 0.9),
    }
