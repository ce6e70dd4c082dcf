"""Which simulation transfers to which real defect: evaluation per defect type, and the experiment.

:func:`per_defect_metrics` evaluates one prediction separately on each defect type (the good test
images against that type's images), and :func:`run_transfer` trains one
:class:`~uiad_lite.methods.one_class.simulation_trained.SimulationTrainedHead` per (category, simulation),
evaluates it per defect type and records every run in the results registry (chapter 14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from uiad_lite import data, metrics, results
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Detector, Prediction

PER_DEFECT_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]] = {
    "i_auroc": lambda scores, labels, maps, masks: metrics.image_auroc(scores, labels),
    "i_ap": lambda scores, labels, maps, masks: metrics.image_ap(scores, labels),
    "p_auroc": lambda scores, labels, maps, masks: metrics.pixel_auroc(maps, masks),
    "aupro": lambda scores, labels, maps, masks: metrics.aupro(maps, masks),
    "p_ap": lambda scores, labels, maps, masks: metrics.pixel_ap(maps, masks),
}


def per_defect_metrics(
    prediction: Prediction, samples: Sequence[Sample], keys: Sequence[str] = ("i_auroc", "p_auroc"),
) -> pd.DataFrame:
    """One row per defect type, computed on the good samples plus that type's samples only: image
    AUROC / AP = good vs this defect; pixel AUROC, AU-PRO, pixel AP over the pixels of those images
    (a good sample without a mask counts as all-normal). Columns: ``defect``, ``n_images`` (of that
    type) and ``keys`` (any of :data:`PER_DEFECT_METRICS`)."""
    unknown = [key for key in keys if key not in PER_DEFECT_METRICS]
    if unknown:
        raise ValueError(f"unknown per-defect metric(s) {unknown}; choose from {list(PER_DEFECT_METRICS)}")
    samples = list(samples)
    if len(samples) != len(prediction.scores):
        raise ValueError(f"prediction has {len(prediction.scores)} scores but {len(samples)} samples "
                         "were given")
    good = [i for i, sample in enumerate(samples) if sample.label == 0]
    if not good:
        raise ValueError("per_defect_metrics needs good (label 0) samples to compare each defect type "
                         "against")
    defects = sorted({sample.defect for sample in samples if sample.label == 1})
    if not defects:
        raise ValueError("per_defect_metrics needs anomalous (label 1) samples")
    pixel_keys = [key for key in keys if key in ("p_auroc", "aupro", "p_ap")]
    if pixel_keys and prediction.maps is None:
        raise ValueError(f"{pixel_keys} need anomaly maps, but the prediction has none")
    rows = []
    for defect in defects:
        chosen = good + [i for i, s in enumerate(samples) if s.label == 1 and s.defect == defect]
        labels = np.array([samples[i].label for i in chosen])
        maps = masks = None
        if pixel_keys:
            maps = prediction.maps[chosen]
            masks = np.zeros(maps.shape, dtype=bool)
            for row, index in enumerate(chosen):
                if samples[index].mask is not None:
                    masks[row] = samples[index].mask
                elif samples[index].label == 1:
                    raise ValueError(f"anomalous sample {samples[index].path or index!r} has no mask")
        values = {key: float(PER_DEFECT_METRICS[key](prediction.scores[chosen], labels, maps, masks))
                  for key in keys}
        rows.append({"defect": defect, "n_images": len(chosen) - len(good), **values})
    return pd.DataFrame(rows)


@dataclass
class TransferResult:
    """``summary``: one row per (simulation, category) with the overall metrics and timings;
    ``per_defect``: one row per (simulation, category, defect); ``detectors``/``predictions`` by
    (simulation, category); ``test``: the test samples per category."""

    summary: pd.DataFrame
    per_defect: pd.DataFrame
    detectors: dict[tuple[str, str], Detector] = field(default_factory=dict)
    predictions: dict[tuple[str, str], Prediction] = field(default_factory=dict)
    test: dict[str, list[Sample]] = field(default_factory=dict)

    def transfer_table(self, metric: str = "i_auroc") -> pd.DataFrame:
        """Simulation x defect type: ``metric`` averaged over the categories that have that defect."""
        if metric not in self.per_defect.columns:
            raise ValueError(f"unknown metric {metric!r}; per_defect has {list(self.per_defect.columns)}")
        order = list(dict.fromkeys(self.per_defect["simulation"]))
        table = self.per_defect.pivot_table(index="simulation", columns="defect", values=metric,
                                            aggfunc="mean")
        return table.reindex(order)


def run_transfer(
    make_detector: Callable[[str], Detector],
    simulations: Sequence[str],
    *,
    chapter: str,
    dataset: str = "synthetic",
    categories: Sequence[str],
    root: str | None = None,
    quick: bool = True,
    seed: int = 0,
    device: str = "cpu",
    backbone: str = "",
    method_prefix: str = "SimulationTrained",
    progress: bool = True,
) -> TransferResult:
    """For every category (loaded once) and simulation: fit ``make_detector(simulation)`` on the
    normal training images, predict the test set, evaluate overall and per defect type, and record
    the run with :func:`uiad_lite.results.record` as method ``"<method_prefix>[<simulation>]"``, the
    per-defect image / pixel AUROC as extra columns ``i_auroc@<defect>`` and ``p_auroc@<defect>``."""
    if not categories:
        raise ValueError("run_transfer: no categories given")
    if not simulations:
        raise ValueError("run_transfer: no simulations given")
    size = "quick" if quick else "full"
    summary, per_defect = [], []
    outcome = TransferResult(pd.DataFrame(), pd.DataFrame())
    jobs = [(category, simulation) for category in categories for simulation in simulations]
    split = None
    for category, simulation in tqdm(jobs, desc="simulation x category", disable=not progress, leave=False):
        if split is None or split.category != category:
            split = data.load(dataset, root=root, category=category, size=size)
            train, test = list(split.train), list(split.test)
            outcome.test[category] = test
        detector = make_detector(simulation)
        with results.measure(device) as fit_time:
            detector.fit(train)
        prediction, ms_per_image = results.timed_predict(
            lambda detector=detector, test=test: detector.predict(test), len(test))
        scores = metrics.evaluate(prediction, test)
        defects = per_defect_metrics(prediction, test)
        extra = {f"{key}@{row.defect}": getattr(row, key) for row in defects.itertuples()
                 for key in ("i_auroc", "p_auroc")}
        method = f"{method_prefix}[{simulation}]"
        results.record(chapter, method, dataset, category, scores, fit_seconds=fit_time.seconds,
                       predict_ms_per_image=ms_per_image, peak_memory_mb=fit_time.peak_mb, device=device,
                       seed=seed, quick=quick, backbone=backbone, extra={"simulation": simulation, **extra})
        summary.append({"simulation": simulation, "category": category, **scores, "fit_s": fit_time.seconds,
                        "predict_ms_per_image": ms_per_image, "peak_memory_mb": fit_time.peak_mb})
        per_defect += [{"simulation": simulation, "category": category, **row}
                       for row in defects.to_dict("records")]
        outcome.detectors[simulation, category] = detector
        outcome.predictions[simulation, category] = prediction
    outcome.summary = pd.DataFrame(summary)
    outcome.per_defect = pd.DataFrame(per_defect)
    return outcome
