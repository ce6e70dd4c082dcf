"""Image- and point-level metrics against scikit-learn, the exact tally, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from uiad_lite.metrics import (
    UndefinedMetricError,
    f1_max,
    image_ap,
    image_auroc,
    point_ap,
    point_auroc,
    pr_curve,
    roc_curve,
    tally_scores,
    threshold_stats,
)

CASES = [(seed, ties) for seed in range(6) for ties in (False, True)]


def random_scores(seed: int, ties: bool, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping normal/anomalous scores; with ``ties`` rounded so that many values repeat."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    labels[:2] = [True, False]
    scores = rng.normal(size=n) + 0.8 * labels
    return (np.round(scores, 1) if ties else scores), labels


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_auroc_and_ap_match_sklearn(seed, ties):
    scores, labels = random_scores(seed, ties)
    assert image_auroc(scores, labels) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert image_ap(scores, labels) == pytest.approx(sk.average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_f1_max_matches_sklearn_precision_recall_curve(seed, ties):
    scores, labels = random_scores(seed, ties)
    precision, recall, _ = sk.precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best, threshold = f1_max(scores, labels)
    assert best == pytest.approx(f1.max(), abs=1e-12)
    # the returned threshold really reaches that F1
    assert threshold_stats(scores, labels, threshold)["f1"] == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), CASES[:4])
def test_roc_curve_matches_sklearn(seed, ties):
    scores, labels = random_scores(seed, ties)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    sk_fpr, sk_tpr, sk_thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    np.testing.assert_array_equal(thresholds[1:], sk_thresholds[1:])
    assert thresholds[0] == np.inf


@pytest.mark.parametrize(("seed", "ties"), CASES[:4])
def test_pr_curve_matches_sklearn(seed, ties):
    scores, labels = random_scores(seed, ties)
    precision, recall, thresholds = pr_curve(scores, labels)
    sk_precision, sk_recall, sk_thresholds = sk.precision_recall_curve(labels, scores)
    # scikit-learn: ascending thresholds, artificial (precision 1, recall 0) point appended last
    np.testing.assert_allclose(precision, sk_precision[::-1], atol=1e-12)
    np.testing.assert_allclose(recall, sk_recall[::-1], atol=1e-12)
    np.testing.assert_array_equal(thresholds[1:], sk_thresholds[::-1])


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.7, 10.0])
def test_threshold_stats_matches_sklearn_confusion_matrix(threshold):
    scores, labels = random_scores(3, ties=True)
    stats = threshold_stats(scores, labels, threshold)
    tn, fp, fn, tp = sk.confusion_matrix(labels, scores >= threshold, labels=[False, True]).ravel()
    assert (stats["tp"], stats["fp"], stats["fn"], stats["tn"]) == (tp, fp, fn, tn)
    assert stats["recall"] == stats["tpr"] == pytest.approx(tp / (tp + fn))
    assert stats["fpr"] == pytest.approx(fp / (fp + tn))
    expected_precision = tp / (tp + fp) if tp + fp else 1.0
    assert stats["precision"] == pytest.approx(expected_precision)


def test_perfect_and_inverted_rankings():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert image_auroc(scores, labels) == 1.0
    assert image_ap(scores, labels) == 1.0
    assert f1_max(scores, labels) == (1.0, 0.7)
    assert image_auroc(-scores, labels) == 0.0
    assert image_auroc(np.zeros(6), labels) == 0.5  # all tied: one diagonal step


@pytest.mark.parametrize(("seed", "ties"), CASES[:6])
def test_tally_in_small_parts_and_threads_equals_single_pass(seed, ties):
    scores, labels = random_scores(seed, ties, n=503)
    labels[:40] = True  # the first parts hold no normal item at all
    whole = tally_scores(scores, labels)
    parted = tally_scores(scores, labels, part_size=7, workers=2)
    with_torch = tally_scores(scores, labels, device="cpu")
    for other in (parted, with_torch):
        for field in ("thresholds", "positive_counts", "negatives_ge", "negatives_gt", "positive_index"):
            np.testing.assert_array_equal(getattr(other, field), getattr(whole, field))
        assert (other.n_positive, other.n_negative) == (whole.n_positive, whole.n_negative)
    assert parted.auroc() == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)


def test_torch_tensors_lists_and_integer_labels_are_accepted():
    scores, labels = random_scores(1, ties=True)
    expected = image_auroc(scores, labels)
    assert image_auroc(torch.from_numpy(scores), torch.from_numpy(labels)) == expected
    assert image_auroc(scores.tolist(), labels.astype(int).tolist()) == expected
    assert image_auroc(scores.astype(np.float32), labels.astype(np.float64)) == pytest.approx(
        sk.roc_auc_score(labels, scores.astype(np.float32)), abs=1e-12
    )


def _brute_force_f1_max(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """F1 at every distinct score used as a threshold (flag s >= t), by plain counting."""
    best, best_threshold = -1.0, None
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        tp = int(np.sum(flagged & labels))
        fp, fn = int(np.sum(flagged & ~labels)), int(np.sum(~flagged & labels))
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 >= best:  # ascending thresholds: ">=" keeps the highest threshold reaching the best F1
            best, best_threshold = f1, float(threshold)
    return best, best_threshold


@pytest.mark.parametrize("seed, ties", CASES[:4])
def test_f1_max_and_ap_equal_plain_counting_and_ignore_order_and_leave_inputs_alone(seed, ties):
    scores, labels = random_scores(seed, ties)
    kept_scores, kept_labels = scores.copy(), labels.copy()
    best, threshold = f1_max(scores, labels)
    expected_best, expected_threshold = _brute_force_f1_max(scores, labels)
    assert best == pytest.approx(expected_best, abs=1e-12) and threshold == expected_threshold
    order = np.argsort(-np.arange(len(scores)) * 7919 % len(scores))  # a fixed shuffle
    assert f1_max(scores[order], labels[order]) == pytest.approx((best, threshold), abs=1e-12)
    assert image_ap(scores[order], labels[order]) == pytest.approx(image_ap(scores, labels), abs=1e-12)
    np.testing.assert_array_equal(scores, kept_scores)  # nothing sorted in place
    np.testing.assert_array_equal(labels, kept_labels)


def test_point_metrics_concatenate_clouds_and_match_sklearn():
    rng = np.random.default_rng(7)
    sizes = [50, 1, 120]
    labels = [rng.random(n) < 0.2 for n in sizes]
    labels[0][0] = True
    scores = [np.round(rng.normal(size=n) + lab, 1) for n, lab in zip(sizes, labels, strict=True)]
    flat_scores, flat_labels = np.concatenate(scores), np.concatenate(labels)
    assert point_auroc(scores, labels) == pytest.approx(sk.roc_auc_score(flat_labels, flat_scores), abs=1e-12)
    assert point_ap(scores, labels) == pytest.approx(
        sk.average_precision_score(flat_labels, flat_scores), abs=1e-12
    )
    assert point_auroc(flat_scores, flat_labels) == point_auroc(scores, labels)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([], [], "scores is empty"),
        ([0.1, 0.2], [0, 1, 1], r"shape \(2,\) but labels has shape \(3,\)"),
        ([0.1, np.nan, 0.3], [0, 1, 0], "scores contains 1 NaN/inf"),
        ([0.1, np.inf, 0.3], [0, 1, 0], "scores contains 1 NaN/inf"),
        ([0.1, 0.2, 0.3], [0, 2, 1], "only 0/1"),
        (["a", "b"], [0, 1], "real numbers"),
    ],
)
def test_malformed_inputs_raise_plain_value_error(scores, labels, message):
    for metric in (image_auroc, image_ap, f1_max):
        with pytest.raises(ValueError, match=message) as raised:
            metric(scores, labels)
        assert not isinstance(raised.value, UndefinedMetricError)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_one_class_only_raises_undefined_metric_error(labels):
    scores = [0.1, 0.5, 0.9]
    for metric in (image_auroc, image_ap, f1_max, roc_curve, pr_curve):
        with pytest.raises(UndefinedMetricError, match="needs both normal and anomalous"):
            metric(scores, labels)
    with pytest.raises(UndefinedMetricError):
        threshold_stats(scores, labels, 0.5)


def test_point_metrics_reject_mismatched_clouds():
    with pytest.raises(ValueError, match="2 clouds but point_labels has 1"):
        point_auroc([np.zeros(3), np.ones(2)], [np.zeros(3)])
    with pytest.raises(ValueError, match=r"point_scores\[1\] has shape \(2,\)"):
        point_auroc([np.zeros(3), np.ones(2)], [np.array([0, 1, 0]), np.array([1])])
