"""Every metric of the survey's Table 3, exact and vectorised (higher score = more anomalous).

* image level: :func:`image_auroc`, :func:`image_ap`, :func:`f1_max`, :func:`threshold_stats`,
  :func:`roc_curve`, :func:`pr_curve`
* pixel level: :func:`pixel_auroc`, :func:`aupro`, :func:`pro_curve`, :func:`pixel_ap`,
  :func:`iou`, :func:`best_iou`
* instance level (DeSTSeg): :func:`instance_ap`, :func:`iap_at_recall`
* point level: :func:`point_auroc`, :func:`point_ap`
* everything at once: :func:`evaluate` -> :class:`MetricReport`

Undefined metrics (e.g. one class only) raise :class:`UndefinedMetricError`, a ``ValueError``.
"""

from uiad_lite.metrics.evaluate import MetricReport, evaluate
from uiad_lite.metrics.image import f1_max, image_ap, image_auroc, pr_curve, roc_curve, threshold_stats
from uiad_lite.metrics.inputs import UndefinedMetricError
from uiad_lite.metrics.instance import iap_at_recall, instance_ap
from uiad_lite.metrics.pixel import best_iou, iou, pixel_ap, pixel_auroc
from uiad_lite.metrics.point import point_ap, point_auroc
from uiad_lite.metrics.pro import aupro, pro_curve
from uiad_lite.metrics.regions import label_regions
from uiad_lite.metrics.tally import ScoreTally, tally_scores

__all__ = [
    "MetricReport",
    "ScoreTally",
    "UndefinedMetricError",
    "aupro",
    "best_iou",
    "evaluate",
    "f1_max",
    "iap_at_recall",
    "image_ap",
    "image_auroc",
    "instance_ap",
    "iou",
    "label_regions",
    "pixel_ap",
    "pixel_auroc",
    "point_ap",
    "point_auroc",
    "pr_curve",
    "pro_curve",
    "roc_curve",
    "tally_scores",
    "threshold_stats",
]
