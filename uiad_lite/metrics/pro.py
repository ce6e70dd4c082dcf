"""AU-PRO: area under the per-region-overlap curve (Bergmann et al., MVTec AD, IJCV 2021).

Definition (survey Table 3), for a threshold t with binary prediction P_t = {score >= t}:

    PRO(t) = (1/K) sum_k |P_t intersect C_k| / |C_k|       over all K ground-truth regions C_k
    FPR(t) = |P_t intersect normal pixels| / |normal pixels|  over all images, good ones included

with C_k the 8-connected components of the masks. The curve (FPR(t), PRO(t)) is taken at every
distinct score (tied scores are one threshold, hence one straight step), starting at (0, 0) for
t = +inf. AU-PRO is its trapezoid area from FPR 0 to ``fpr_limit`` -- the curve is linearly
interpolated exactly at the limit -- divided by ``fpr_limit`` so that a perfect map scores 1.
This follows the MVTec AD evaluation code's definition, but the computation is our own: PRO only
changes at anomalous scores, so two curve points per distinct anomalous score are enough; all
other thresholds lie on horizontal segments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uiad_lite.metrics.inputs import UndefinedMetricError, check_fraction
from uiad_lite.metrics.pixel import pixel_tally
from uiad_lite.metrics.regions import Regions, label_regions
from uiad_lite.metrics.tally import ScoreTally


def pro_curve_from_tally(tally: ScoreTally, regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """Exact PRO curve vertices ``(fpr, pro)`` from (0, 0) to (1, 1), FPR non-decreasing."""
    if regions.count == 0:
        raise UndefinedMetricError("AU-PRO needs at least one ground-truth region; masks are all normal")
    if tally.n_negative == 0:
        raise UndefinedMetricError("AU-PRO needs normal pixels to measure the FPR; masks are all anomalous")
    weights = 1.0 / regions.sizes[regions.pixel_region]
    gain = np.bincount(tally.positive_index, weights=weights, minlength=tally.thresholds.size)
    pro_at = np.minimum(np.cumsum(gain) / regions.count, 1.0)
    pro_before = np.concatenate([[0.0], pro_at[:-1]])
    n_negative = float(tally.n_negative)
    # vertex pair per anomalous value u_j: just above u_j (only normal pixels > u_j added), then at u_j
    fpr = np.empty(2 * pro_at.size + 2)
    pro = np.empty_like(fpr)
    fpr[0], pro[0] = 0.0, 0.0
    fpr[1:-1:2], pro[1:-1:2] = tally.negatives_gt / n_negative, pro_before
    fpr[2:-1:2], pro[2:-1:2] = tally.negatives_ge / n_negative, pro_at
    fpr[-1], pro[-1] = 1.0, pro_at[-1]
    return fpr, pro


def truncate_curve(fpr: np.ndarray, values: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of a piecewise-linear curve with FPR <= ``limit``, ending exactly at ``limit``."""
    last = int(np.searchsorted(fpr, limit, side="right")) - 1
    fpr_kept, values_kept = fpr[: last + 1], values[: last + 1]
    if fpr_kept[-1] < limit:
        step = (limit - fpr[last]) / (fpr[last + 1] - fpr[last])
        value_at_limit = values[last] + step * (values[last + 1] - values[last])
        fpr_kept = np.append(fpr_kept, limit)
        values_kept = np.append(values_kept, value_at_limit)
    return fpr_kept, values_kept


def aupro_from_tally(tally: ScoreTally, regions: Regions, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (see module docstring)."""
    limit = check_fraction(fpr_limit, "fpr_limit")
    fpr, pro = truncate_curve(*pro_curve_from_tally(tally, regions), limit)
    area = float(np.sum(np.diff(fpr) * (pro[1:] + pro[:-1]))) / (2.0 * limit)
    return min(max(area, 0.0), 1.0)


def pro_curve(
    maps: Any, masks: Any, fpr_limit: float | None = None, device: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """PRO curve ``(fpr, pro)`` for plotting; cut at ``fpr_limit`` (interpolated there) if given."""
    tally, truth = pixel_tally(maps, masks, device)
    fpr, pro = pro_curve_from_tally(tally, label_regions(truth))
    if fpr_limit is None:
        return fpr, pro
    return truncate_curve(fpr, pro, check_fraction(fpr_limit, "fpr_limit"))


def aupro(maps: Any, masks: Any, fpr_limit: float = 0.3, device: str | None = None) -> float:
    """AU-PRO in [0, 1]: PRO-curve area up to ``fpr_limit`` / ``fpr_limit`` (MVTec AD, IJCV 2021).

    Exact over all distinct scores, 8-connected regions, FPR over every normal pixel of every
    image. Raises ``UndefinedMetricError`` without any ground-truth region or normal pixel.
    """
    limit = check_fraction(fpr_limit, "fpr_limit")
    tally, truth = pixel_tally(maps, masks, device)
    return aupro_from_tally(tally, label_regions(truth), limit)
