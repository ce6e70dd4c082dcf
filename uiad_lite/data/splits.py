"""`DatasetSplits` (what `load` returns) and the checks every loader shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uiad_lite.data.lazy import LazySamples, SampleRecord
from uiad_lite.data.sample import Sample

SETTINGS = ("rgb", "rgbd", "points")


@dataclass
class DatasetSplits:
    """One category of one dataset: train (normal only), test (normal + anomalous), validation.

    `validation` is empty when the dataset has none. The sequences read files lazily.
    """

    name: str
    category: str
    setting: str
    root: Path
    train: Sequence[Sample]
    test: Sequence[Sample]
    validation: Sequence[Sample] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        test_labels = getattr(self.test, "labels", None)
        anomalous = int(np.sum(test_labels)) if test_labels is not None else "?"
        return (
            f"DatasetSplits({self.name}/{self.category}, setting={self.setting}, train={len(self.train)}, "
            f"test={len(self.test)} ({anomalous} anomalous), validation={len(self.validation)}, "
            f"root={self.root})"
        )


def require_directory(path: Path, what: str, layout: str) -> None:
    """FileNotFoundError naming the missing folder and showing the layout the loader expects."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}\nExpected layout:\n{layout}")


def check_splits(
    name: str,
    category: str,
    train: Sequence[SampleRecord],
    test: Sequence[SampleRecord],
    root: Path,
    layout: str,
) -> None:
    """A usable category has normal training data and at least one anomalous test sample."""
    if not train:
        raise ValueError(
            f"{name}/{category}: no training samples found under {root}; expected layout:\n{layout}"
        )
    if any(record.label != 0 for record in train):
        raise ValueError(f"{name}/{category}: the training split must hold normal samples only")
    if not test:
        raise ValueError(f"{name}/{category}: no test samples found under {root}; expected layout:\n{layout}")
    if not any(record.label == 1 for record in test):
        raise ValueError(
            f"{name}/{category}: the test split under {root} has no anomalous samples, so no detection "
            f"metric can be computed; expected layout:\n{layout}"
        )


def evenly_spaced(records: list[SampleRecord], limit: int | None) -> list[SampleRecord]:
    """Keep at most `limit` records, evenly spaced over the sorted list (deterministic, no seed)."""
    if limit is None or len(records) <= limit:
        return records
    if limit <= 0:
        raise ValueError(f"max_train must be positive, got {limit}")
    positions = np.unique(np.linspace(0, len(records) - 1, limit).round().astype(int))
    return [records[p] for p in positions]


def make_splits(
    name: str,
    category: str,
    setting: str,
    root: Path,
    reader,
    train: list[SampleRecord],
    test: list[SampleRecord],
    validation: list[SampleRecord] | None = None,
    meta: dict[str, Any] | None = None,
    cache_size: int = 32,
) -> DatasetSplits:
    return DatasetSplits(
        name=name,
        category=category,
        setting=setting,
        root=root,
        train=LazySamples(train, reader, cache_size),
        test=LazySamples(test, reader, cache_size),
        validation=LazySamples(validation or [], reader, cache_size),
        meta=dict(meta or {}),
    )


def natural_key(path: Path) -> list:
    """Sort '2_good' before '10_bulge' (numbers compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def sorted_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files in `folder` whose suffix (case-insensitive) is one of `suffixes`, in natural name order."""
    if not folder.is_dir():
        return []
    wanted = {suffix.lower() for suffix in suffixes}
    files = [path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in wanted]
    return sorted(files, key=natural_key)
