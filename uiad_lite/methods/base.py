"""The Detector protocol and the Prediction it returns (DESIGN: fit(train) -> predict(test))."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from uiad_lite.data.sample import Sample


@dataclass
class Prediction:
    """What a detector says about N test samples.

    scores        (N,) image-level anomaly scores, higher = more anomalous
    maps          optional (N, H, W) anomaly maps at the masks' resolution
    point_scores  optional list of N arrays, one score per point (point-cloud methods)
    """

    scores: np.ndarray
    maps: np.ndarray | None = None
    point_scores: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.maps is not None:
            self.maps = np.asarray(self.maps)
            if self.maps.ndim != 3 or len(self.maps) != len(self.scores):
                raise ValueError(
                    f"maps must be (N, H, W) with N={len(self.scores)}, got shape {self.maps.shape}"
                )
        if self.point_scores is not None and len(self.point_scores) != len(self.scores):
            raise ValueError(
                f"point_scores has {len(self.point_scores)} entries, expected {len(self.scores)}"
            )


class Detector(Protocol):
    """Any anomaly detector: hyper-parameters in the constructor, then fit on normal samples."""

    def fit(self, samples: Sequence[Sample]) -> Detector: ...

    def predict(self, samples: Sequence[Sample]) -> Prediction: ...


class NotFittedError(RuntimeError):
    """predict() was called before fit()."""
