"""Point-level AUROC and AP for unorganised point clouds (Real3D-AD style per-point labels).

Every point of every cloud goes into one pool, exactly like pixels in the pixel-level metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from uiad_lite.metrics.image import scores_and_labels
from uiad_lite.metrics.inputs import as_binary, as_scores, check_same_shape
from uiad_lite.metrics.tally import tally_scores


def concatenate_points(point_scores: Any, point_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """One flat (scores, labels) pair from per-cloud lists (or from two plain arrays)."""
    if isinstance(point_scores, Sequence) and not isinstance(point_scores, np.ndarray):
        if not isinstance(point_labels, Sequence) or len(point_scores) != len(point_labels):
            n_labels = len(point_labels) if isinstance(point_labels, Sequence) else "a non-list"
            raise ValueError(
                f"point_scores has {len(point_scores)} clouds but point_labels has {n_labels}; "
                "give one label array per score array"
            )
        if len(point_scores) == 0:
            raise ValueError("point_scores is empty; expected at least one point cloud")
        score_parts, label_parts = [], []
        for index, (scores, labels) in enumerate(zip(point_scores, point_labels, strict=True)):
            score_array = as_scores(scores, f"point_scores[{index}]").reshape(-1)
            label_array = as_binary(labels, f"point_labels[{index}]").reshape(-1)
            check_same_shape(score_array, label_array, f"point_scores[{index}]", f"point_labels[{index}]")
            score_parts.append(score_array)
            label_parts.append(label_array)
        point_scores, point_labels = np.concatenate(score_parts), np.concatenate(label_parts)
    return scores_and_labels(point_scores, point_labels, "point_scores", "point_labels")


def point_auroc(point_scores: Any, point_labels: Any) -> float:
    """Point-level AUROC over all points of all clouds (ties count one half)."""
    scores, labels = concatenate_points(point_scores, point_labels)
    return tally_scores(scores, labels, name="point_scores").auroc("point AUROC", "points")


def point_ap(point_scores: Any, point_labels: Any) -> float:
    """Point-level average precision sum_n (R_n - R_{n-1}) P_n over all points of all clouds."""
    scores, labels = concatenate_points(point_scores, point_labels)
    return tally_scores(scores, labels, name="point_scores").average_precision("point AP", "points")
