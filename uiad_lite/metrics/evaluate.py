"""``evaluate(prediction, samples)``: every applicable Table-3 metric in one flat dict.

Keys (all in [0, 1], higher is better):

===========  ==============================================================  ====================
key          metric                                                          needs
===========  ==============================================================  ====================
i_auroc      image AUROC                                                     both image labels
i_f1_max     best image F1 over thresholds                                   both image labels
i_ap         image average precision                                         both image labels
p_auroc      pixel AUROC                                                     maps, masks
aupro        AU-PRO up to ``fpr_limit`` (default 0.3), normalised             maps, masks
p_ap         pixel average precision                                         maps, masks
iou          best pooled IoU over thresholds                                 maps, masks
iap          instance AP (DeSTSeg)                                           maps, masks
iap90        instance precision at 90% instance recall (DeSTSeg)             maps, masks
pt_auroc     point AUROC over all points                                     point scores, labels
pt_ap        point average precision                                         point scores, labels
===========  ==============================================================  ====================

A metric that cannot be computed is **omitted** (never NaN) and listed with its reason in the
``skipped`` attribute of the returned :class:`MetricReport` (a ``dict`` subclass, so it stays a
flat ``{key: float}`` mapping for tables and CSV rows). Reasons for omission:

* only one class among the image labels (``i_*``), pixels (``p_auroc``, ``p_ap``) or points;
* ``prediction.maps`` is None (all pixel and instance keys);
* an anomalous sample (label 1) has no mask (all pixel and instance keys);
* no ground-truth region at all (``aupro``, ``iap``, ``iap90``, ``iou``);
* ``prediction.point_scores`` is None or a sample has no ``point_labels`` (``pt_*``).

A good sample (label 0) whose ``mask`` is None counts as all-normal pixels. Malformed inputs
(length mismatch, NaN/inf scores, a mask whose shape differs from its map) raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.metrics.image import scores_and_labels
from uiad_lite.metrics.inputs import UndefinedMetricError, as_binary, as_scores, check_fraction
from uiad_lite.metrics.instance import iap_at_recall_from_tally, instance_ap_from_tally
from uiad_lite.metrics.point import concatenate_points
from uiad_lite.metrics.pro import aupro_from_tally
from uiad_lite.metrics.regions import label_regions
from uiad_lite.metrics.tally import tally_scores

IMAGE_KEYS = ("i_auroc", "i_f1_max", "i_ap")
PIXEL_KEYS = ("p_auroc", "aupro", "p_ap", "iou", "iap", "iap90")
POINT_KEYS = ("pt_auroc", "pt_ap")


class MetricReport(dict):
    """Flat ``{metric key: value}`` plus ``skipped``: ``{metric key: reason it was left out}``."""

    def __init__(self, values: Mapping[str, float] = (), skipped: Mapping[str, str] | None = None):
        super().__init__(values)
        self.skipped: dict[str, str] = dict(skipped or {})

    def __repr__(self) -> str:
        shown = dict.__repr__(self)
        return f"{shown} skipped={self.skipped!r}" if self.skipped else shown


def _sample_name(sample: Sample, index: int) -> str:
    return sample.path or f"#{index} ({sample.category}/{sample.split}/{sample.defect})"


def _stack_masks(maps: np.ndarray, samples: Sequence[Sample]) -> tuple[np.ndarray | None, str | None]:
    """(N, H, W) bool masks aligned with ``maps``, or (None, reason) when one is missing."""
    masks = np.zeros(maps.shape, dtype=bool)
    for index, sample in enumerate(samples):
        name = _sample_name(sample, index)
        if sample.mask is None:
            if sample.label:
                return None, f"anomalous sample {name!r} has no mask"
            continue  # a good sample without a mask: every pixel is normal
        mask = as_binary(sample.mask, f"mask of sample {name!r}")
        if mask.shape != maps.shape[1:]:
            raise ValueError(
                f"mask of sample {name!r} has shape {mask.shape} but its anomaly map has shape "
                f"{maps.shape[1:]}; maps must be at the masks' resolution"
            )
        masks[index] = mask
    return masks, None


def evaluate(
    prediction: Prediction,
    samples: Sequence[Sample],
    *,
    fpr_limit: float = 0.3,
    device: str | None = None,
) -> MetricReport:
    """All applicable metrics of ``prediction`` on ``samples`` (labels from ``sample.label``).

    ``device`` (e.g. ``"cuda"``) moves the pixel-level sorting to torch; ``fpr_limit`` is the
    AU-PRO integration limit. See the module docstring for the keys and for what gets skipped.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("samples is empty; expected the test samples the prediction was made on")
    if len(samples) != len(prediction.scores):
        raise ValueError(
            f"prediction has {len(prediction.scores)} scores but {len(samples)} samples were given"
        )
    limit = check_fraction(fpr_limit, "fpr_limit")
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}

    def attempt(key: str, compute: Callable[[], float]) -> None:
        try:
            values[key] = float(compute())
        except UndefinedMetricError as reason:
            skipped[key] = str(reason)

    labels = np.array([sample.label for sample in samples])
    image_scores, image_labels = scores_and_labels(prediction.scores, labels, "prediction.scores", "labels")
    image = tally_scores(image_scores, image_labels, name="prediction.scores")
    attempt("i_auroc", lambda: image.auroc("image AUROC", "images"))
    attempt("i_f1_max", lambda: image.best_f1("image F1-max", "images")[0])
    attempt("i_ap", lambda: image.average_precision("image AP", "images"))

    if prediction.maps is None:
        skipped.update(dict.fromkeys(PIXEL_KEYS, "prediction has no anomaly maps"))
    else:
        maps = as_scores(prediction.maps, "prediction.maps")
        masks, reason = _stack_masks(maps, samples)
        if masks is None:
            skipped.update(dict.fromkeys(PIXEL_KEYS, reason))
        else:
            pixels = tally_scores(maps, masks, name="prediction.maps", device=device)
            regions = label_regions(masks)
            attempt("p_auroc", lambda: pixels.auroc("pixel AUROC", "pixels"))
            attempt("aupro", lambda: aupro_from_tally(pixels, regions, limit))
            attempt("p_ap", lambda: pixels.average_precision("pixel AP", "pixels"))
            attempt("iou", lambda: pixels.best_iou("IoU", "pixels")[0])
            attempt("iap", lambda: instance_ap_from_tally(pixels, regions))
            attempt("iap90", lambda: iap_at_recall_from_tally(pixels, regions, 0.9))

    if prediction.point_scores is None:
        skipped.update(dict.fromkeys(POINT_KEYS, "prediction has no point scores"))
    else:
        unlabelled = [_sample_name(s, i) for i, s in enumerate(samples) if s.point_labels is None]
        if unlabelled:
            reason = f"{len(unlabelled)} sample(s) have no point_labels, e.g. {unlabelled[0]!r}"
            skipped.update(dict.fromkeys(POINT_KEYS, reason))
        else:
            point_scores, point_labels = concatenate_points(
                list(prediction.point_scores), [sample.point_labels for sample in samples]
            )
            points = tally_scores(point_scores, point_labels, name="prediction.point_scores")
            attempt("pt_auroc", lambda: points.auroc("point AUROC", "points"))
            attempt("pt_ap", lambda: points.average_precision("point AP", "points"))

    ordered = [key for key in IMAGE_KEYS + PIXEL_KEYS + POINT_KEYS if key in values]
    return MetricReport({key: values[key] for key in ordered}, skipped)
