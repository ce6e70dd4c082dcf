"""Pixel-level metrics of the survey's Table 3: P-AUROC, P-AP and IoU, pooled over all pixels.

``maps`` are (N, H, W) (or (H, W)) anomaly scores, ``masks`` the same-shape ground truth. All
pixels of all images form one pool (the usual MVTec AD practice), so good images contribute
normal pixels. The exact counts come from :mod:`uiad_lite.metrics.tally` (bounded memory, no N x
thresholds matrix); ``device`` optionally moves the sorting to torch (e.g. ``"cuda"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uiad_lite.metrics.inputs import UndefinedMetricError, check_finite, check_maps_and_masks
from uiad_lite.metrics.tally import ScoreTally, tally_scores


def pixel_tally(maps: Any, masks: Any, device: str | None = None) -> tuple[ScoreTally, np.ndarray]:
    """Validate ``maps``/``masks`` and return the exact pixel tally plus the bool (N, H, W) masks."""
    score_maps, truth = check_maps_and_masks(maps, masks)
    return tally_scores(score_maps, truth, name="maps", device=device), truth


def pixel_auroc(maps: Any, masks: Any, device: str | None = None) -> float:
    """P-AUROC: area under the pixel ROC curve, exact over all distinct scores (ties = one step)."""
    return pixel_tally(maps, masks, device)[0].auroc("pixel AUROC", "pixels")


def pixel_ap(maps: Any, masks: Any, device: str | None = None) -> float:
    """P-AP: pixel average precision sum_n (R_n - R_{n-1}) P_n (scikit-learn's definition)."""
    return pixel_tally(maps, masks, device)[0].average_precision("pixel AP", "pixels")


def iou(maps: Any, masks: Any, threshold: float) -> float:
    """IoU = TP / (TP + FP + FN) of ``maps >= threshold`` against ``masks``, pooled over all pixels."""
    score_maps, truth = check_maps_and_masks(maps, masks)
    check_finite(score_maps, "maps")
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    n_positive = int(np.count_nonzero(truth))
    if n_positive == 0:
        raise UndefinedMetricError("IoU needs at least one anomalous pixel in masks; got none")
    predicted = score_maps >= threshold
    true_positives = int(np.count_nonzero(predicted & truth))
    false_positives = int(np.count_nonzero(predicted)) - true_positives
    return true_positives / (n_positive + false_positives)


def best_iou(maps: Any, masks: Any, device: str | None = None) -> tuple[float, float]:
    """Largest pooled IoU over all thresholds and the (highest) threshold that reaches it."""
    return pixel_tally(maps, masks, device)[0].best_iou("IoU", "pixels")
