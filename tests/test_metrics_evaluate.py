"""evaluate(): the flat metric dict on a small Prediction / Sample set, and what it skips."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.metrics import (
    MetricReport,
    aupro,
    best_iou,
    evaluate,
    f1_max,
    iap_at_recall,
    instance_ap,
    pixel_ap,
    pixel_auroc,
)

ALL_KEYS = ["i_auroc", "i_f1_max", "i_ap", "p_auroc", "aupro", "p_ap", "iou", "iap", "iap90"]
ALL_KEYS += ["pt_auroc", "pt_ap"]


def make_set(seed: int = 0, n_good: int = 4, n_bad: int = 4, size: int = 12):
    """Good samples with all-false masks, anomalous ones with a random rectangle, plus point clouds."""
    rng = np.random.default_rng(seed)
    samples, maps, point_scores = [], [], []
    for index in range(n_good + n_bad):
        label = int(index >= n_good)
        mask = np.zeros((size, size), dtype=bool)
        if label:
            top, left = rng.integers(0, size - 4, size=2)
            mask[top : top + rng.integers(1, 5), left : left + rng.integers(1, 5)] = True
        n_points = int(rng.integers(20, 40))
        point_labels = np.zeros(n_points, dtype=bool)
        if label:
            point_labels[: rng.integers(1, 6)] = True
        samples.append(
            Sample(
                category="toy",
                split="test",
                label=label,
                defect="bad" if label else "good",
                path=f"toy/{index}.png",
                mask=mask,
                points=rng.random((n_points, 3), dtype=np.float32),
                point_labels=point_labels,
            )
        )
        maps.append(np.round(rng.normal(size=(size, size)) + 1.5 * mask, 1))
        point_scores.append(rng.normal(size=n_points) + point_labels)
    maps = np.stack(maps)
    scores = maps.reshape(len(maps), -1).max(axis=1) + rng.normal(scale=0.5, size=len(maps))
    return samples, Prediction(scores=scores, maps=maps, point_scores=point_scores)


def test_evaluate_matches_the_individual_metrics():
    samples, prediction = make_set()
    report = evaluate(prediction, samples)
    assert isinstance(report, MetricReport) and isinstance(report, dict)
    assert list(report) == ALL_KEYS and report.skipped == {}
    labels = np.array([s.label for s in samples])
    masks = np.stack([s.mask for s in samples])
    maps = prediction.maps
    assert report["i_auroc"] == pytest.approx(sk.roc_auc_score(labels, prediction.scores), abs=1e-12)
    assert report["i_ap"] == pytest.approx(sk.average_precision_score(labels, prediction.scores), abs=1e-12)
    assert report["i_f1_max"] == f1_max(prediction.scores, labels)[0]
    assert report["p_auroc"] == pytest.approx(sk.roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert (
        report["p_ap"]
        == pixel_ap(maps, masks)
        == pytest.approx(sk.average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12)
    )
    assert report["p_auroc"] == pixel_auroc(maps, masks)
    assert report["aupro"] == aupro(maps, masks, fpr_limit=0.3)
    assert report["iou"] == best_iou(maps, masks)[0]
    assert report["iap"] == instance_ap(maps, masks)
    assert report["iap90"] == iap_at_recall(maps, masks, k=0.9)
    point_labels = np.concatenate([s.point_labels for s in samples])
    point_scores = np.concatenate(prediction.point_scores)
    assert report["pt_auroc"] == pytest.approx(sk.roc_auc_score(point_labels, point_scores), abs=1e-12)
    assert report["pt_ap"] == pytest.approx(sk.average_precision_score(point_labels, point_scores), abs=1e-12)
    assert all(0.0 <= value <= 1.0 for value in report.values())
    assert evaluate(prediction, samples, fpr_limit=0.05)["aupro"] == aupro(maps, masks, fpr_limit=0.05)


def test_threshold_picking_metrics_equal_plain_counting():
    """i_f1_max and iou choose their threshold on the test set: check both by trying every threshold."""
    samples, prediction = make_set(seed=3)
    report = evaluate(prediction, samples)
    labels = np.array([s.label for s in samples], dtype=bool)
    masks = np.stack([s.mask for s in samples])

    def best_over_thresholds(scores, truth, score):
        return max(
            score(np.sum((scores >= t) & truth), np.sum((scores >= t) & ~truth), np.sum((scores < t) & truth))
            for t in np.unique(scores)
        )

    f1 = best_over_thresholds(prediction.scores, labels, lambda tp, fp, fn: 2 * tp / (2 * tp + fp + fn))
    iou = best_over_thresholds(prediction.maps.ravel(), masks.ravel(), lambda tp, fp, fn: tp / (tp + fp + fn))
    assert report["i_f1_max"] == pytest.approx(f1, abs=1e-12)
    assert report["iou"] == pytest.approx(iou, abs=1e-12)


def test_evaluate_does_not_depend_on_sample_order_and_leaves_inputs_alone():
    samples, prediction = make_set(seed=1)
    report = evaluate(prediction, samples)
    kept_maps, kept_scores = prediction.maps.copy(), prediction.scores.copy()
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    shuffled = Prediction(
        scores=prediction.scores[order],
        maps=prediction.maps[order],
        point_scores=[prediction.point_scores[i] for i in order],
    )
    again = evaluate(shuffled, [samples[i] for i in order])
    assert again.keys() == report.keys()
    for key, value in report.items():
        assert again[key] == pytest.approx(value, abs=1e-12), key
    np.testing.assert_array_equal(prediction.maps, kept_maps)
    np.testing.assert_array_equal(prediction.scores, kept_scores)


def test_missing_maps_and_points_are_skipped_with_reasons():
    samples, prediction = make_set()
    report = evaluate(Prediction(scores=prediction.scores), samples)
    assert list(report) == ["i_auroc", "i_f1_max", "i_ap"]
    assert set(report.skipped) == set(ALL_KEYS[3:])
    assert report.skipped["aupro"] == "prediction has no anomaly maps"
    assert report.skipped["pt_ap"] == "prediction has no point scores"
    assert "skipped=" in repr(report)


def test_anomalous_sample_without_mask_or_point_labels_skips_those_metrics():
    samples, prediction = make_set()
    samples[-1].mask = None
    samples[0].point_labels = None
    report = evaluate(prediction, samples)
    assert list(report) == ["i_auroc", "i_f1_max", "i_ap"]
    assert "anomalous sample 'toy/7.png' has no mask" in report.skipped["p_auroc"]
    assert "have no point_labels, e.g. 'toy/0.png'" in report.skipped["pt_auroc"]


def test_good_sample_without_mask_counts_as_all_normal():
    samples, prediction = make_set()
    with_masks = evaluate(prediction, samples)
    samples[0].mask = None
    assert evaluate(prediction, samples) == with_masks


def test_one_class_only_skips_the_undefined_metrics():
    samples, prediction = make_set(n_bad=0)
    report = evaluate(prediction, samples)
    assert report == {}
    assert "needs both normal and anomalous images" in report.skipped["i_auroc"]
    assert "needs both normal and anomalous pixels" in report.skipped["p_auroc"]
    assert "at least one ground-truth region" in report.skipped["aupro"]
    assert "at least one ground-truth region" in report.skipped["iap90"]
    assert "needs both normal and anomalous points" in report.skipped["pt_ap"]


def test_malformed_inputs_raise():
    samples, prediction = make_set()
    with pytest.raises(ValueError, match="prediction has 8 scores but 7 samples"):
        evaluate(prediction, samples[:7])
    with pytest.raises(ValueError, match="samples is empty"):
        evaluate(Prediction(scores=np.zeros(0)), [])
    broken = prediction.maps.copy()
    broken[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="prediction.maps contains 1 NaN/inf"):
        evaluate(Prediction(prediction.scores, broken), samples)
    samples[1].mask = np.zeros((6, 6), dtype=bool)
    with pytest.raises(ValueError, match=r"mask of sample 'toy/1.png' has shape \(6, 6\)"):
        evaluate(prediction, samples)
