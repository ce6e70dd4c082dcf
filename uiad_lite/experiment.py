"""The loop every chapter runs: load → fit → predict → evaluate → record, over several categories."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from uiad_lite import data, metrics, results
from uiad_lite.methods.base import Detector, Prediction


@dataclass
class CategoryRun:
    """What one (method, category) run produced, kept for the figures that follow."""

    dataset: Any  # uiad_lite.data DatasetSplits
    detector: Detector
    prediction: Prediction
    scores: dict[str, float]


@dataclass
class Experiment:
    """A results table (one row per category plus a mean row) and the runs behind it."""

    method: str
    table: pd.DataFrame
    runs: dict[str, CategoryRun] = field(default_factory=dict)


def run_detector(
    make_detector: Callable[[], Detector],
    *,
    chapter: str,
    method: str,
    dataset: str = "synthetic",
    categories: Sequence[str],
    root: str | None = None,
    quick: bool = True,
    seed: int = 0,
    device: str = "cpu",
    backbone: str = "",
    progress: bool = True,
    load_options: Mapping[str, Any] | None = None,
) -> Experiment:
    """Fit a fresh detector per category on its normal training samples and evaluate it on the test set.

    Every run is recorded with :func:`uiad_lite.results.record` (metrics, fit seconds, predict ms per
    image, peak memory during fit). ``load_options`` go to :func:`uiad_lite.data.load` (e.g.
    ``image_size=256, center_crop=224``). Returns the table and, per category, the data, detector
    and prediction.
    """
    if not categories:
        raise ValueError("run_detector: no categories given")
    size = "quick" if quick else "full"
    rows, runs = [], {}
    for category in tqdm(categories, desc=method, disable=not progress, leave=False):
        split = data.load(dataset, root=root, category=category, size=size, **(load_options or {}))
        detector = make_detector()
        with results.measure(device) as fit_time:
            detector.fit(split.train)
        prediction, ms_per_image = results.timed_predict(
            lambda detector=detector, split=split: detector.predict(split.test), len(split.test)
        )
        scores = metrics.evaluate(prediction, split.test)
        results.record(
            chapter,
            method,
            dataset,
            category,
            scores,
            fit_seconds=fit_time.seconds,
            predict_ms_per_image=ms_per_image,
            peak_memory_mb=fit_time.peak_mb,
            device=device,
            seed=seed,
            quick=quick,
            backbone=backbone,
        )
        runs[category] = CategoryRun(split, detector, prediction, scores)
        rows.append(
            {
                "method": method,
                "category": category,
                **scores,
                "fit_s": fit_time.seconds,
                "predict_ms_per_image": ms_per_image,
                "peak_memory_mb": fit_time.peak_mb,
            }
        )
    table = pd.DataFrame(rows).set_index("category")
    mean = table.mean(numeric_only=True)
    table.loc["mean"] = mean
    table.loc["mean", "method"] = method
    return Experiment(method, table, runs)
