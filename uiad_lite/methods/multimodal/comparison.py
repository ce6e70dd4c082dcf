"""The fusion comparison shared by chapters 10 and 11 and ``benchmarks/fusion_bench.py``.

Features are extracted once per category (:func:`category_data`, memoised in the process) and every
strategy is fit and scored on the same grids with ``fit_grids`` / ``predict_grids``; the times reported
add each strategy's share of the extraction (train extraction to fit, test extraction per image to
predict), so they are what a stand-alone ``fit`` / ``predict`` would cost. Neither chapter depends on the
other having run: each builds what it needs through these functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from uiad_lite import data, metrics, results
from uiad_lite.data.synthetic_depth import CHANGES
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids, RGBDFeatures
from uiad_lite.methods.one_class.transfer import per_defect_metrics
from uiad_lite.methods.registry import create, preset_settings

#: label -> (registry name, overrides); the first two are the single-modality reference rows
STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "rgb_alone": ("fusion_late", {"branches": ("rgb",)}),
    "fpfh_alone": ("fusion_late", {"branches": ("xyz",)}),
    "early_raw": ("fusion_early", {"normalise": "none"}),
    "early_unit": ("fusion_early", {"normalise": "unit"}),
    "middle": ("fusion_middle", {}),
    "late_max": ("fusion_late", {"combine": "max"}),
    "late_sum": ("fusion_late", {"combine": "sum"}),
    "late_product": ("fusion_late", {"combine": "product"}),
    "hybrid": ("fusion_hybrid", {}),
    "cfm": ("cfm", {}),
}
DESCRIPTIONS = {
    "rgb_alone": "RGB memory bank only (reference)",
    "fpfh_alone": "FPFH memory bank only (reference)",
    "early_raw": "early: BTF raw concatenation",
    "early_unit": "early: per-modality normalised concatenation",
    "middle": "middle: M3DM contrastive fusion + bank",
    "late_max": "late: z-scored banks, max",
    "late_sum": "late: z-scored banks, sum",
    "late_product": "late: product of score ratios",
    "hybrid": "hybrid: M3DM one-class SVM decision layer",
    "cfm": "middle: CFM crossmodal mapping error",
}
KINDS = ("geometry only", "colour only", "both")
_CACHE: dict[tuple, CategoryData] = {}
_BACKBONES: dict[tuple, Backbone] = {}


def shared_backbone(preset: str = "quick", device: str = "cpu") -> Backbone:
    """One frozen backbone per (preset, device), passed to every strategy instead of a name."""
    key = (preset, str(device))
    if key not in _BACKBONES:
        settings = preset_settings("fusion_early", preset)
        _BACKBONES[key] = build_backbone(settings["backbone"], settings["layers"], device)
    return _BACKBONES[key]


def defect_kind(defect: str) -> str:
    """ "geometry only" / "colour only" / "both" for the synthetic defects; "unknown" for others."""
    changes = set(CHANGES.get(defect, ()))
    return {frozenset({"xyz"}): "geometry only", frozenset({"rgb"}): "colour only",
            frozenset({"rgb", "xyz"}): "both"}.get(frozenset(changes), "unknown")  # fmt: skip


@dataclass
class CategoryData:
    """One category's samples and their grids, extracted once."""

    category: str
    train: PatchGrids
    test: PatchGrids
    samples: list = field(default_factory=list)  # the test samples (masks, labels, defects)
    train_extract_s: float = 0.0
    test_extract_s_per_image: float = 0.0


def category_data(dataset: str, category: str, *, root: str | None = None, quick: bool = True,
                  preset: str = "quick", device: str = "cpu", max_train: int | None = 20,
                  progress: bool = False) -> CategoryData:  # fmt: skip
    """Load ``category`` and extract its RGB and FPFH grids with ``preset``'s settings (memoised)."""
    key = (dataset, category, root, quick, preset, str(device), max_train)
    if key not in _CACHE:
        geometry = {k: v for k, v in preset_settings("fusion_early", preset).items() if k != "normalise"}
        geometry["backbone"] = shared_backbone(preset, device)
        extractor = RGBDFeatures(**geometry, device=device, progress=progress)
        options = {"max_train": max_train} if max_train else {}
        split = data.load(dataset, root=root, category=category, size="quick" if quick else "full", **options)
        train_samples, test_samples = list(split.train), list(split.test)
        start = time.perf_counter()
        train = extractor(train_samples, desc=f"{category} train features")
        middle = time.perf_counter()
        test = extractor(test_samples, desc=f"{category} test features")
        end = time.perf_counter()
        _CACHE[key] = CategoryData(category, train, test, test_samples, middle - start,
                                   (end - middle) / len(test_samples))  # fmt: skip
    return _CACHE[key]


@dataclass
class StrategyRun:
    strategy: str
    category: str
    detector: Any
    prediction: Prediction
    scores: dict[str, float]
    fit_s: float
    predict_s_per_image: float
    peak_memory_mb: float | None
    samples: list = field(default_factory=list)


def run_strategy(strategy: str, category_data: CategoryData, *, preset: str = "quick", seed: int = 0,
                 device: str = "cpu", **overrides: Any) -> StrategyRun:  # fmt: skip
    """Fit ``strategy`` (a key of :data:`STRATEGIES`) on the category's training grids and score its test
    grids; metrics over the test samples; times include the extraction share (module docstring)."""
    name, settings = STRATEGIES[strategy]
    detector = create(
        name, preset=preset, seed=seed, device=device, progress=False, **{**settings, **overrides}
    )
    with results.measure(device) as timing:
        detector.fit_grids(category_data.train)
    start = time.perf_counter()
    prediction = detector.predict_grids(category_data.test)
    scoring = (time.perf_counter() - start) / len(category_data.test)
    scores = metrics.evaluate(prediction, category_data.samples)
    return StrategyRun(strategy, category_data.category, detector, prediction, scores,
                       timing.seconds + category_data.train_extract_s,
                       scoring + category_data.test_extract_s_per_image, timing.peak_mb,
                       category_data.samples)  # fmt: skip


def per_kind(run: StrategyRun) -> pd.DataFrame:
    """Image AUROC and AU-PRO per defect kind (good test samples against that kind's samples)."""
    table = per_defect_metrics(run.prediction, run.samples, keys=("i_auroc", "aupro"))
    table["kind"] = [defect_kind(d) for d in table["defect"]]
    out = table.groupby("kind", sort=False)[["i_auroc", "aupro"]].mean().reset_index()
    return out.assign(strategy=run.strategy, category=run.category)


def compare(strategies: Sequence[str], datasets: Sequence[CategoryData], *, preset: str = "quick",
            seed: int = 0, device: str = "cpu", record: str | None = None, dataset: str = "synthetic",
            quick: bool = True, progress: bool = False,
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:  # fmt: skip
    """Run every strategy on every category. Returns (overall table: one row per strategy and category
    with i_auroc, aupro, p_auroc, fit_s, predict_s_per_image, peak_memory_mb; per-kind table; runs by
    (strategy, category)). ``record`` = a chapter name: each run goes to ``results/<chapter>.csv``."""
    from tqdm.auto import tqdm

    rows, kinds, runs = [], [], {}
    pairs = [(s, d) for s in strategies for d in datasets]
    for strategy, category_data in tqdm(pairs, desc="strategies", disable=not progress, leave=False):
        run = run_strategy(strategy, category_data, preset=preset, seed=seed, device=device)
        runs[(strategy, category_data.category)] = run
        rows.append({"strategy": strategy, "category": category_data.category,
                     **{k: run.scores.get(k, np.nan) for k in ("i_auroc", "aupro", "p_auroc")},
                     "fit_s": run.fit_s, "predict_s_per_image": run.predict_s_per_image,
                     "peak_memory_mb": run.peak_memory_mb})  # fmt: skip
        kinds.append(per_kind(run))
        if record:
            results.record(record, strategy, dataset, category_data.category, run.scores,
                           fit_seconds=run.fit_s, predict_ms_per_image=1000 * run.predict_s_per_image,
                           peak_memory_mb=run.peak_memory_mb, device=str(device), seed=seed, quick=quick,
                           backbone=str(preset_settings("fusion_early", preset)["backbone"]))  # fmt: skip
    return pd.DataFrame(rows), pd.concat(kinds, ignore_index=True), runs


def drop_modality(grids: PatchGrids, modality: str) -> PatchGrids:
    """The same grids as if every sample had arrived without ``modality`` ("rgb" or "xyz")."""
    if modality == "rgb":
        return PatchGrids(grids.rgb * 0, grids.xyz, grids.valid, grids.has_rgb & False, grids.has_xyz,
                          grids.size)  # fmt: skip
    if modality == "xyz":
        return PatchGrids(grids.rgb, grids.xyz * 0, grids.valid & False, grids.has_rgb, grids.has_xyz & False,
                          grids.size)  # fmt: skip
    raise ValueError(f"modality must be 'rgb' or 'xyz', got {modality!r}")


def missing_modality(runs: dict, category_data: CategoryData) -> pd.DataFrame:
    """Each fitted strategy on the test set with both modalities, RGB only and xyz only: image AUROC,
    AU-PRO and the drop from the full input. Late fusion falls back (``missing="fallback"``), CFM imputes
    (``missing="impute"``); a strategy that cannot score gets its error message."""
    rows = []
    inputs = {"RGB + xyz": category_data.test, "RGB only": drop_modality(category_data.test, "xyz"),
              "xyz only": drop_modality(category_data.test, "rgb")}  # fmt: skip
    for (strategy, category), run in runs.items():
        if category != category_data.category:
            continue
        detector = run.detector
        mode = {"FusionLate": "fallback", "CFM": "impute"}.get(type(detector).__name__)
        full = None
        for label, grids in inputs.items():
            row = {"strategy": strategy, "input": label}
            previous, detector.missing = detector.missing, mode or detector.missing
            try:
                prediction = detector.predict_grids(grids)
                found = metrics.evaluate(prediction, category_data.samples)
                note = f"missing={mode!r}" if mode and label != "RGB + xyz" else ""
                row.update(i_auroc=found["i_auroc"], aupro=found.get("aupro", np.nan), note=note)
            except ValueError as error:
                row.update(i_auroc=np.nan, aupro=np.nan, note=f"error: {str(error)[:90]}…")
            finally:
                detector.missing = previous
            full = row["i_auroc"] if label == "RGB + xyz" else full
            row["i_auroc_drop"] = (full - row["i_auroc"]) if full is not None else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


#: Published MVTec 3D-AD means over the ten categories (image AUROC, AU-PRO at 30 % FPR), labelled
#: "published" wherever shown: BTF's three rows from its released README (preprocessed data; chapter 09
#: quotes the same), M3DM and CFM from their papers' main tables.
PUBLISHED = pd.DataFrame(
    [
        ("BTF: RGB (ImageNet WRN-50) only", "horwitz2023back", 0.777, 0.876),
        ("BTF: FPFH only", "horwitz2023back", 0.779, 0.924),
        ("BTF: PatchCore + FPFH + RGB (early)", "horwitz2023back", 0.878, 0.959),
        ("M3DM (hybrid)", "wang2023multimodal", 0.945, 0.964),
        ("CFM (middle)", "costanzino2023multimodal", 0.954, 0.971),
    ],
    columns=["method", "reference", "i_auroc", "aupro"],
)
