"""The Table 3 summary names only keys and functions that exist, and each function gives its key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uiad_lite import metrics
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.metrics.evaluate import IMAGE_KEYS, PIXEL_KEYS
from uiad_lite.metrics.summary import COLUMNS, TEST_SET_THRESHOLD, label_test_set_thresholds, metric_summary


def test_summary_covers_every_image_and_pixel_key_once():
    table = metric_summary()
    assert tuple(table.columns) == COLUMNS
    assert sorted(table["key"]) == sorted(IMAGE_KEYS + PIXEL_KEYS)
    assert set(table["level"]) == {"image", "pixel", "instance"}
    assert table.notna().all().all()


def _samples_and_prediction() -> tuple[list[Sample], Prediction]:
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 16, 16), dtype=bool)
    masks[1, 2:6, 2:6] = True
    masks[3, 8:15, 1:5] = True
    masks[4, 10:12, 10:12] = True
    maps = rng.normal(size=masks.shape) + 2.5 * masks
    samples = [Sample(category="toy", split="test", label=int(mask.any()),
                      defect="dent" if mask.any() else "good", mask=mask) for mask in masks]
    return samples, Prediction(scores=maps.reshape(6, -1).max(axis=1), maps=maps)


@pytest.mark.parametrize("row", metric_summary().to_dict("records"), ids=lambda row: row["key"])
def test_each_named_function_computes_its_evaluate_key(row):
    samples, prediction = _samples_and_prediction()
    report = metrics.evaluate(prediction, samples)
    function = getattr(metrics, row["function"])
    labels = np.array([sample.label for sample in samples])
    masks = np.stack([sample.mask for sample in samples])
    if row["level"] == "image":
        value = function(prediction.scores, labels)
    else:
        value = function(prediction.maps, masks)
    value = value[0] if isinstance(value, tuple) else value  # f1_max and best_iou also give the threshold
    assert value == pytest.approx(report[row["key"]])


def test_threshold_picking_metrics_are_labelled_as_such():
    """The functions that return a (value, threshold) pair pick that threshold on the data they grade:
    exactly those keys are renamed by label_test_set_thresholds and say so in the summary."""
    samples, prediction = _samples_and_prediction()
    labels = np.array([sample.label for sample in samples])
    masks = np.stack([sample.mask for sample in samples])
    picking = set()
    for row in metric_summary().to_dict("records"):
        function = getattr(metrics, row["function"])
        args = (prediction.scores, labels) if row["level"] == "image" else (prediction.maps, masks)
        if isinstance(function(*args), tuple):
            picking.add(row["key"])
        assert ("test set" in row["thresholds used"]) == (row["key"] in picking), row["key"]
    assert picking == set(TEST_SET_THRESHOLD) == {"i_f1_max", "iou"}
    table = pd.DataFrame([metrics.evaluate(prediction, samples)])
    renamed = label_test_set_thresholds(table)
    assert [c for c in renamed.columns if "test-set threshold" in c] == [TEST_SET_THRESHOLD[k] for k in
                                                                          table.columns if k in picking]
    assert renamed.drop(columns=list(TEST_SET_THRESHOLD.values())).equals(table.drop(columns=list(picking)))
