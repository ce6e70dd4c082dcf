"""Exact confusion counts at every useful threshold, in bounded memory.

Every threshold metric here predicts "anomalous" when ``score >= t``. Between two consecutive
distinct scores of *anomalous* items, lowering ``t`` only adds false positives, so ROC-AUC, AP,
the best F1, the best IoU, the PRO curve and the instance curve are all determined by the counts
at the distinct anomalous scores ``u_1 > u_2 > ... > u_J``:

* ``positive_counts[j]``  anomalous items with score == u_j,
* ``negatives_ge[j]``     normal items with score >= u_j,
* ``negatives_gt[j]``     normal items with score >  u_j.

The normal items are never sorted as a whole: they are cut into parts, each part is sorted on
its own (in worker threads; numpy releases the GIL while sorting) and ``searchsorted`` of the
J anomalous values into it gives that part's counts, which are summed. Peak extra memory is
about ``workers * part_size`` scores plus O(anomalous items) -- never N x thresholds.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from uiad_lite.metrics.inputs import UndefinedMetricError, check_finite, require_both_classes

DEFAULT_PART_SIZE = 1 << 25  # at most 33.5M scores per sorted part (128 MiB of float32)
MIN_PART_SIZE = 1 << 20  # below this, one thread sorts faster than several


@dataclass(frozen=True)
class ScoreTally:
    """Counts at the distinct scores of the anomalous items (descending), see module docstring.

    ``positive_index[i]`` is, for the i-th anomalous item in input (C) order, the index j with
    ``score == thresholds[j]``; the PRO and instance metrics use it to group pixels by region.
    """

    thresholds: np.ndarray
    positive_counts: np.ndarray
    negatives_ge: np.ndarray
    negatives_gt: np.ndarray
    positive_index: np.ndarray
    n_positive: int
    n_negative: int

    @property
    def positives_ge(self) -> np.ndarray:
        """Anomalous items with score >= thresholds[j] (true positives at that threshold)."""
        return np.cumsum(self.positive_counts)

    def precision(self) -> np.ndarray:
        """TP / (TP + FP) at every threshold (never 0/0: thresholds are anomalous scores)."""
        true_positives = self.positives_ge
        return true_positives / (true_positives + self.negatives_ge)

    def auroc(self, metric: str = "AUROC", unit: str = "items") -> float:
        """Area under the ROC curve = P(score_anomalous > score_normal) + 0.5 P(tie).

        The trapezoid rule over the exact ROC curve (tied scores form one diagonal step) equals
        this Mann-Whitney form, which is what scikit-learn's ``roc_auc_score`` computes.
        """
        require_both_classes(self.n_positive, self.n_negative, metric, unit)
        below = self.n_negative - self.negatives_ge
        ties = self.negatives_ge - self.negatives_gt
        pairs = np.dot(self.positive_counts.astype(np.float64), below + 0.5 * ties)
        return float(pairs / (float(self.n_positive) * float(self.n_negative)))

    def average_precision(self, metric: str = "AP", unit: str = "items") -> float:
        """AP = sum_n (R_n - R_{n-1}) P_n over thresholds (step rule, no interpolation).

        Recall only changes at anomalous scores, so only those thresholds contribute; this is
        scikit-learn's ``average_precision_score`` definition.
        """
        require_both_classes(self.n_positive, self.n_negative, metric, unit)
        return float(np.dot(self.positive_counts, self.precision()) / self.n_positive)

    def best_f1(self, metric: str = "F1-max", unit: str = "items") -> tuple[float, float]:
        """Largest F1 = 2TP / (TP + FP + TP + FN) over all thresholds, and the highest threshold
        reaching it (an optimum always sits at an anomalous score, see module docstring)."""
        require_both_classes(self.n_positive, self.n_negative, metric, unit)
        true_positives = self.positives_ge
        f1 = 2.0 * true_positives / (true_positives + self.negatives_ge + self.n_positive)
        best = int(np.argmax(f1))
        return float(f1[best]), float(self.thresholds[best])

    def best_iou(self, metric: str = "IoU", unit: str = "pixels") -> tuple[float, float]:
        """Largest IoU = TP / (TP + FP + FN) over all thresholds and the highest threshold reaching it."""
        if self.n_positive == 0:
            raise UndefinedMetricError(
                f"{metric} needs at least one anomalous item among the {unit}; got none"
            )
        iou = self.positives_ge / (self.negatives_ge + self.n_positive)
        best = int(np.argmax(iou))
        return float(iou[best]), float(self.thresholds[best])


def tally_scores(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    name: str = "scores",
    device: str | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    workers: int | None = None,
) -> ScoreTally:
    """Build the :class:`ScoreTally` of flat-able ``scores`` against bool ``labels`` (same shape).

    ``device=None`` uses numpy: the scores are cut into parts of at most ``part_size`` (and into at
    least ``workers`` parts when large), sorted in ``workers`` threads (default: all CPU cores);
    ``device="cuda"`` / ``"cpu"`` runs the sort and search in torch on that device instead.
    Raises ``ValueError`` when a score is NaN or infinite.
    """
    flat_scores = scores.reshape(-1)
    flat_labels = labels.reshape(-1)
    if device is not None:
        return _tally_torch(flat_scores, flat_labels, name, device)

    positives = flat_scores[flat_labels]
    check_finite(positives, name)
    ascending, inverse, counts = np.unique(positives, return_inverse=True, return_counts=True)
    max_workers = max(1, workers or os.cpu_count() or 1)
    n_parts = max(-(-flat_scores.size // part_size), min(max_workers, -(-flat_scores.size // MIN_PART_SIZE)))
    part_length = -(-flat_scores.size // n_parts)

    def count_part(part: int) -> tuple[int, np.ndarray, np.ndarray, bool]:
        window = slice(part * part_length, (part + 1) * part_length)
        negatives = flat_scores[window][~flat_labels[window]]
        negatives.sort()
        finite = negatives.size == 0 or bool(np.isfinite(negatives[[0, -1]]).all())
        below = np.searchsorted(negatives, ascending, side="left")
        at_or_below = np.searchsorted(negatives, ascending, side="right")
        return negatives.size, below, at_or_below, finite

    n_negative = 0
    below = np.zeros(ascending.size, dtype=np.int64)
    at_or_below = np.zeros(ascending.size, dtype=np.int64)
    with ThreadPoolExecutor(max_workers=min(n_parts, max_workers)) as pool:
        for size, part_below, part_at_or_below, finite in pool.map(count_part, range(n_parts)):
            if not finite:
                check_finite(flat_scores[~flat_labels], name)
            n_negative += size
            below += part_below
            at_or_below += part_at_or_below
    return _from_ascending(ascending, counts, inverse, below, at_or_below, n_negative)


def _from_ascending(
    ascending: np.ndarray,
    counts: np.ndarray,
    inverse: np.ndarray,
    below: np.ndarray,
    at_or_below: np.ndarray,
    n_negative: int,
) -> ScoreTally:
    """Flip counts over ascending anomalous values into the descending-threshold tally."""
    n_distinct = ascending.size
    return ScoreTally(
        thresholds=ascending[::-1].astype(np.float64),
        positive_counts=counts[::-1].astype(np.int64),
        negatives_ge=(n_negative - below[::-1]).astype(np.int64),
        negatives_gt=(n_negative - at_or_below[::-1]).astype(np.int64),
        positive_index=(n_distinct - 1 - inverse.reshape(-1)).astype(np.int64),
        n_positive=int(counts.sum()),
        n_negative=int(n_negative),
    )


def _tally_torch(flat_scores: np.ndarray, flat_labels: np.ndarray, name: str, device: str) -> ScoreTally:
    """The same counts with torch.sort / torch.unique / torch.searchsorted on ``device``."""
    import torch

    scores_t = torch.from_numpy(np.ascontiguousarray(flat_scores)).to(device)
    labels_t = torch.from_numpy(np.ascontiguousarray(flat_labels)).to(device)
    finite = torch.isfinite(scores_t)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} contains {bad} NaN/inf value(s); anomaly scores must be finite")
    del finite
    ascending, inverse, counts = torch.unique(
        scores_t[labels_t], sorted=True, return_inverse=True, return_counts=True
    )
    negatives = torch.sort(scores_t[~labels_t]).values
    below = torch.searchsorted(negatives, ascending, right=False)
    at_or_below = torch.searchsorted(negatives, ascending, right=True)
    return _from_ascending(
        ascending.cpu().numpy(),
        counts.cpu().numpy(),
        inverse.cpu().numpy(),
        below.cpu().numpy(),
        at_or_below.cpu().numpy(),
        int(negatives.numel()),
    )
