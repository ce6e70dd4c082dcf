"""Instance-level metrics IAP and IAP@k, as defined by DeSTSeg (Zhang et al., CVPR 2023).

Exact definitions used here:

* An **instance** is a maximal 8-connected ground-truth region C_k (k = 1..K, all images).
* At threshold t a pixel is predicted anomalous when ``score >= t``. Instance C_k is **detected**
  when more than 50% of its pixels are predicted anomalous: ``|{p in C_k : s_p >= t}| > |C_k|/2``.
  Hence C_k is detected exactly for ``t <= tau_k``, where ``tau_k`` is the
  ``(floor(|C_k|/2) + 1)``-th largest score inside C_k (its detection threshold).
* **Instance recall** R(t) = #{k : tau_k >= t} / K.
* **Precision** P(t) = TP / (TP + FP) counted over *pixels* of all images (good ones included).
* Order instances by decreasing tau (ties in any order) and let p_i = P(tau_(i)). With
  ``interpolate=True`` (DeSTSeg's released evaluation, PASCAL-VOC style) p_i is replaced by
  max_{j >= i} p_j, the best precision at the same or a higher recall.
* **IAP** = (1/K) sum_i p_i (survey Table 3: IAP = (1/N) sum_i P(i)).
* **IAP@k** = p_m with m = ceil(k K): the precision at the highest threshold at which instance
  recall first reaches k (DeSTSeg reports k = 0.9, "IAP90").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from uiad_lite.metrics.inputs import UndefinedMetricError, check_fraction
from uiad_lite.metrics.pixel import pixel_tally
from uiad_lite.metrics.regions import Regions, label_regions
from uiad_lite.metrics.tally import ScoreTally


def detection_thresholds_from_tally(tally: ScoreTally, regions: Regions) -> np.ndarray:
    """tau_k of every instance, as indices into ``tally.thresholds`` (smaller index = higher tau)."""
    if regions.count == 0:
        raise UndefinedMetricError(
            "instance metrics need at least one ground-truth region; masks are all normal"
        )
    # one sort groups anomalous pixels by region and, inside a region, by decreasing score
    # (increasing threshold index): key = region * J + threshold index
    n_thresholds = np.int64(tally.thresholds.size)
    keys = np.sort(regions.pixel_region * n_thresholds + tally.positive_index)
    region_starts = np.concatenate([[0], np.cumsum(regions.sizes)[:-1]])
    return keys[region_starts + regions.sizes // 2] % n_thresholds


def instance_precisions_from_tally(
    tally: ScoreTally, regions: Regions, interpolate: bool = True
) -> np.ndarray:
    """p_1..p_K of the module docstring (instances by decreasing detection threshold)."""
    detection_index = np.sort(detection_thresholds_from_tally(tally, regions))
    precisions = tally.precision()[detection_index]
    if interpolate:
        precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    return precisions


def instance_ap_from_tally(tally: ScoreTally, regions: Regions, interpolate: bool = True) -> float:
    """IAP from a pixel tally and labelled regions (see module docstring)."""
    return float(np.mean(instance_precisions_from_tally(tally, regions, interpolate)))


def iap_at_recall_from_tally(
    tally: ScoreTally, regions: Regions, k: float = 0.9, interpolate: bool = True
) -> float:
    """IAP@k from a pixel tally and labelled regions (see module docstring)."""
    recall = check_fraction(k, "k (instance recall level)")
    precisions = instance_precisions_from_tally(tally, regions, interpolate)
    needed = min(max(math.ceil(recall * precisions.size - 1e-9), 1), precisions.size)
    return float(precisions[needed - 1])


def instance_ap(maps: Any, masks: Any, interpolate: bool = True, device: str | None = None) -> float:
    """IAP (DeSTSeg, CVPR 2023): mean pixel precision at each instance's detection threshold."""
    tally, truth = pixel_tally(maps, masks, device)
    return instance_ap_from_tally(tally, label_regions(truth), interpolate)


def iap_at_recall(
    maps: Any, masks: Any, k: float = 0.9, interpolate: bool = True, device: str | None = None
) -> float:
    """IAP@k (DeSTSeg, CVPR 2023): pixel precision where instance recall first reaches ``k``.

    The precision is the interpolated one (best at the same or higher recall, as in DeSTSeg's
    code) unless ``interpolate=False``; see the module docstring for the exact definition.
    """
    recall = check_fraction(k, "k (instance recall level)")
    tally, truth = pixel_tally(maps, masks, device)
    return iap_at_recall_from_tally(tally, label_regions(truth), recall, interpolate)
