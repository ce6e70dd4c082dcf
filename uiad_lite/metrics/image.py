"""Image-level metrics of the survey's Table 3: I-AUROC, AP, F1-max, and the curves behind them.

Convention everywhere: a higher score means "more anomalous", an item is predicted anomalous
when ``score >= threshold``, label 1 (True) means anomalous. Scores/labels may be numpy arrays,
torch tensors or lists of any (equal) shape; they are flattened.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uiad_lite.metrics.inputs import (
    as_binary,
    as_scores,
    check_finite,
    check_same_shape,
    require_both_classes,
)
from uiad_lite.metrics.tally import ScoreTally, tally_scores


def scores_and_labels(
    scores: Any, labels: Any, score_name: str = "scores", label_name: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """Validated flat float scores and bool labels (same shape, finite, non-empty)."""
    score_array = as_scores(scores, score_name)
    label_array = as_binary(labels, label_name)
    check_same_shape(score_array, label_array, score_name, label_name)
    check_finite(score_array, score_name)
    return score_array.reshape(-1), label_array.reshape(-1)


def _tally(scores: Any, labels: Any) -> ScoreTally:
    score_array, label_array = scores_and_labels(scores, labels)
    return tally_scores(score_array, label_array)


def image_auroc(scores: Any, labels: Any) -> float:
    """I-AUROC = integral of TPR d(FPR) over the exact ROC curve (ties count one half).

    Raises ``UndefinedMetricError`` (a ``ValueError``) when only one class is present.
    """
    return _tally(scores, labels).auroc("image AUROC", "images")


def image_ap(scores: Any, labels: Any) -> float:
    """Average precision sum_n (R_n - R_{n-1}) P_n over all thresholds (the AUPR of Table 3)."""
    return _tally(scores, labels).average_precision("image AP", "images")


def f1_max(scores: Any, labels: Any) -> tuple[float, float]:
    """The best F1 = 2PR / (P + R) over all thresholds, and the (highest) threshold reaching it."""
    return _tally(scores, labels).best_f1("F1-max", "images")


def threshold_stats(scores: Any, labels: Any, threshold: float) -> dict[str, float]:
    """Confusion counts and rates when ``score >= threshold`` is predicted anomalous.

    Returns ``tp, fp, fn, tn`` (ints) and ``precision = tp / (tp + fp)``, ``recall = tpr =
    tp / (tp + fn)``, ``fpr = fp / (fp + tn)``, ``f1``. With no positive prediction, precision is
    1.0 (no false alarm was raised; the same convention as the first point of :func:`pr_curve`).
    """
    score_array, label_array = scores_and_labels(scores, labels)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    predicted = score_array >= threshold
    tp = int(np.count_nonzero(predicted & label_array))
    fp = int(np.count_nonzero(predicted & ~label_array))
    n_positive = int(np.count_nonzero(label_array))
    n_negative = label_array.size - n_positive
    require_both_classes(n_positive, n_negative, "threshold_stats", "items")
    fn, tn = n_positive - tp, n_negative - fp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / n_positive
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "tpr": recall,
        "fpr": fp / n_negative,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _cumulative_counts(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Distinct thresholds (descending) with TP and FP when predicting ``score >= t``."""
    score_array, label_array = scores_and_labels(scores, labels)
    values, inverse = np.unique(score_array, return_inverse=True)
    inverse = inverse.reshape(-1)
    per_value_total = np.bincount(inverse, minlength=values.size)
    per_value_positive = np.bincount(inverse[label_array], minlength=values.size)
    true_positives = np.cumsum(per_value_positive[::-1])
    false_positives = np.cumsum((per_value_total - per_value_positive)[::-1])
    n_positive = int(true_positives[-1])
    n_negative = int(false_positives[-1])
    return values[::-1].astype(np.float64), true_positives, false_positives, n_positive, n_negative


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)`` at every distinct score, thresholds descending.

    The first point is ``(0, 0)`` at threshold ``+inf`` (nothing predicted anomalous), the last
    is ``(1, 1)`` at the smallest score. Meant for plotting; the area is :func:`image_auroc`.
    """
    thresholds, tp, fp, n_positive, n_negative = _cumulative_counts(scores, labels)
    require_both_classes(n_positive, n_negative, "ROC curve", "items")
    fpr = np.concatenate([[0.0], fp / n_negative])
    tpr = np.concatenate([[0.0], tp / n_positive])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def pr_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve ``(precision, recall, thresholds)``, thresholds descending.

    The first point is ``(precision=1, recall=0)`` at threshold ``+inf``; after it, one point per
    distinct score. The step-rule area under it is :func:`image_ap`.
    """
    thresholds, tp, fp, n_positive, n_negative = _cumulative_counts(scores, labels)
    require_both_classes(n_positive, n_negative, "precision-recall curve", "items")
    precision = np.concatenate([[1.0], tp / (tp + fp)])
    recall = np.concatenate([[0.0], tp / n_positive])
    return precision, recall, np.concatenate([[np.inf], thresholds])
