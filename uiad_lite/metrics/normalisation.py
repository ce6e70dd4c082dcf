"""Post-processing that changes metric values: min-max normalisation with clamping, 8-bit
quantisation, and the reduction of an anomaly map to one image score (max or top-k mean).

None of these change *which* pixel is most anomalous, yet all of them can change AUROC, AU-PRO and
AP: ranking metrics only see the order of the scores, and clamping or quantising turns distinct
scores into ties (a tie between a normal and an anomalous item counts one half in AUROC). The
chapter ``02_metrics`` measures the effect on real predictions.

* min-max with clamping: ``(s - low) / (high - low)`` clipped to [0, 1], with ``low``/``high``
  estimated on reference data (anomalib's min-max normaliser clips the same way after shifting
  its threshold to 0.5);
* per-image min-max: every map rescaled by its own minimum and maximum (a common plotting habit
  that, used for evaluation, makes every image's maximum equal 1);
* top-k mean: the image score as the mean of the k largest map values; k = 1 is the maximum used by
  most methods (e.g. PatchCore, Roth et al., CVPR 2022), large k approaches the mean of the map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from uiad_lite.metrics.image import image_auroc
from uiad_lite.metrics.inputs import as_binary, as_scores, check_finite


def _finite_scores(values: Any, name: str) -> np.ndarray:
    array = as_scores(values, name)
    check_finite(array, name)
    return array


def normalisation_bounds(
    normal_scores: Any, low_percentile: float = 0.0, high_percentile: float = 100.0
) -> tuple[float, float]:
    """``(low, high)``: percentiles of scores measured on normal data (0 and 100 = min and max)."""
    scores = _finite_scores(normal_scores, "normal_scores")
    for name, value in (("low_percentile", low_percentile), ("high_percentile", high_percentile)):
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"{name} must lie in [0, 100], got {value}")
    if low_percentile >= high_percentile:
        raise ValueError(
            f"low_percentile ({low_percentile}) must be below high_percentile ({high_percentile})"
        )
    low, high = np.percentile(scores.reshape(-1), [low_percentile, high_percentile])
    return float(low), float(high)


def min_max_normalise(values: Any, low: float, high: float, clamp: bool = True) -> np.ndarray:
    """``(values - low) / (high - low)`` as float64, clipped to [0, 1] when ``clamp``.

    Without clamping this is a strictly increasing map and leaves every ranking metric unchanged;
    with clamping all values <= ``low`` become 0 and all values >= ``high`` become 1 (ties).
    """
    array = _finite_scores(values, "values").astype(np.float64)
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise ValueError(f"need finite bounds with low < high, got low={low}, high={high}")
    scaled = (array - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0) if clamp else scaled


def per_image_min_max(maps: Any) -> np.ndarray:
    """Rescale each (H, W) map of an (N, H, W) stack to [0, 1] by its own min and max.

    A constant map becomes all zeros. Every non-constant map then has maximum exactly 1.
    """
    stack = _finite_scores(maps, "maps").astype(np.float64)
    if stack.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {stack.shape}")
    low = stack.min(axis=(1, 2), keepdims=True)
    span = stack.max(axis=(1, 2), keepdims=True) - low
    return np.divide(stack - low, span, out=np.zeros_like(stack), where=span > 0)


def quantise(values: Any, levels: int = 256) -> np.ndarray:
    """Round values in [0, 1] to ``levels`` evenly spaced steps (256 = an 8-bit PNG heat map)."""
    array = _finite_scores(values, "values").astype(np.float64)
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels}")
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(
            f"values must lie in [0, 1] (normalise first), got range [{array.min():.4g}, {array.max():.4g}]"
        )
    steps = int(levels) - 1
    return np.round(array * steps) / steps


def top_k_count(k: int | float, pixels_per_map: int) -> int:
    """Number of pixels averaged: an int ``k >= 1`` as given, a float in (0, 1) as that share of the map."""
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise ValueError(f"k must be a positive int or a fraction in (0, 1), got {k!r}")
    if isinstance(k, (float, np.floating)) and not float(k).is_integer():
        if not 0.0 < k < 1.0:
            raise ValueError(f"a fractional k must lie in (0, 1), got {k}")
        return max(1, math.ceil(k * pixels_per_map))
    count = int(k)
    if not 1 <= count <= pixels_per_map:
        raise ValueError(f"k must lie in [1, {pixels_per_map}] (pixels per map), got {count}")
    return count


def top_k_mean(maps: Any, k: int | float = 1) -> np.ndarray:
    """Image scores (N,): the mean of the ``k`` largest values of each (H, W) map.

    ``k=1`` is the maximum of the map; ``k`` equal to H*W is its mean; a float ``k`` in (0, 1) is
    a share of the pixels (rounded up).
    """
    stack = _finite_scores(maps, "maps")
    if stack.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {stack.shape}")
    flat = stack.reshape(len(stack), -1)
    count = top_k_count(k, flat.shape[1])
    if count == 1:
        return flat.max(axis=1).astype(np.float64)
    largest = np.partition(flat, flat.shape[1] - count, axis=1)[:, flat.shape[1] - count:]
    return largest.mean(axis=1, dtype=np.float64)


def normalisation_variants(
    maps: Any, reference_maps: Any, low_percentile: float = 99.0, levels: int = 256
) -> dict[str, np.ndarray]:
    """The post-processings compared in chapter 02, applied to ``maps`` (N, H, W), by name.

    Bounds come from ``reference_maps`` (maps of normal images, e.g. training or validation):

    * ``raw``: the maps as given;
    * ``min-max, clamped``: bounds = min and max of the reference maps;
    * ``min-max from p<low_percentile>, clamped``: lower bound at that percentile of the reference
      pixels, so most normal pixels become exactly 0;
    * ``per-image min-max``: :func:`per_image_min_max`;
    * ``8-bit of min-max, clamped``: the clamped min-max map stored with ``levels`` grey levels
      (256 levels = 8 bit, as in a PNG heat map).
    """
    low, high = normalisation_bounds(reference_maps)
    clamped = min_max_normalise(maps, low, high)
    raised_low = normalisation_bounds(reference_maps, low_percentile, 100.0)
    stored = "8-bit" if levels == 256 else f"{levels} levels"
    return {
        "raw": _finite_scores(maps, "maps").astype(np.float64),
        "min-max, clamped": clamped,
        f"min-max from p{low_percentile:g}, clamped": min_max_normalise(maps, *raised_low),
        "per-image min-max": per_image_min_max(maps),
        f"{stored} of min-max, clamped": quantise(clamped, levels),
    }


def top_k_sweep(
    maps: Any,
    labels: Any,
    ks: Sequence[int | float],
    defect_pixels: Any = None,
    small_below: int | None = None,
) -> pd.DataFrame:
    """I-AUROC of the top-k-mean image score for every k in ``ks``: one row per (k, image group).

    Group ``all`` uses every image. With ``defect_pixels`` (anomalous pixels per image) and
    ``small_below``, the defective images are also split into ``small defects`` (fewer than
    ``small_below`` pixels) and ``large defects``, each scored against all good images.
    Columns: ``k``, ``images``, ``i_auroc``.
    """
    stack = _finite_scores(maps, "maps")
    truth = as_binary(labels, "labels").reshape(-1)
    if truth.size != len(stack):
        raise ValueError(f"labels has {truth.size} entries but maps has {len(stack)} maps")
    groups = {"all": np.ones(truth.size, dtype=bool)}
    if (defect_pixels is None) != (small_below is None):
        raise ValueError("give defect_pixels and small_below together (or neither)")
    if defect_pixels is not None:
        sizes = np.asarray(defect_pixels).reshape(-1)
        if sizes.size != truth.size:
            raise ValueError(f"defect_pixels has {sizes.size} entries but maps has {len(stack)} maps")
        groups["small defects"] = ~truth | (sizes < small_below)
        groups["large defects"] = ~truth | (sizes >= small_below)
    rows = []
    for k in ks:
        scores = top_k_mean(stack, k)
        for name, keep in groups.items():
            rows.append({"k": k, "images": name, "i_auroc": image_auroc(scores[keep], truth[keep])})
    return pd.DataFrame(rows)
