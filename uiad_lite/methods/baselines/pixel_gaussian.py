"""The simplest honest detector: one Gaussian per pixel position and colour channel.

Used by the introduction to show the whole loop (data -> fit -> predict -> metrics -> results). It
is a per-pixel version of the classic statistical template: fit the mean ``mu(u, v, c)`` and standard
deviation ``sigma(u, v, c)`` of the (slightly blurred) training images, then score a test pixel by its
squared z-score summed over the three channels,

    a(u, v) = sum_c ((x(u, v, c) - mu(u, v, c)) / sigma(u, v, c)) ** 2,

smoothed with a Gaussian (sigma = 4 px, as memory-bank methods do). The image score is the maximum of
the map. It only works when products are aligned and lit the same way — the chapters that follow
show what learned features add.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import NotFittedError, Prediction


class PixelGaussian:
    """Per-pixel Gaussian colour model; ``blur`` and ``smooth`` are Gaussian sigmas in pixels."""

    def __init__(self, blur: float = 1.0, smooth: float = 4.0, min_sigma: float = 2.0) -> None:
        if min_sigma <= 0:
            raise ValueError(f"min_sigma must be positive, got {min_sigma}")
        self.blur = blur
        self.smooth = smooth
        self.min_sigma = min_sigma
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def _stack(self, samples: Sequence[Sample]) -> np.ndarray:
        images = []
        for sample in samples:
            sample.require("image")
            image = sample.image.astype(np.float32)
            if self.mean_ is not None and image.shape != self.mean_.shape:
                raise ValueError(
                    f"image {sample.path or sample.category!r} has shape {image.shape}, "
                    f"the model was fitted on {self.mean_.shape}"
                )
            images.append(gaussian_filter(image, sigma=(self.blur, self.blur, 0)) if self.blur else image)
        if not images:
            raise ValueError("PixelGaussian needs at least one sample")
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise ValueError(f"PixelGaussian needs images of one size, got {sorted(shapes)}")
        return np.stack(images)

    def fit(self, samples: Sequence[Sample]) -> PixelGaussian:
        self.mean_ = None
        stack = self._stack(samples)
        self.mean_ = stack.mean(axis=0)
        self.std_ = np.maximum(stack.std(axis=0), self.min_sigma)
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.mean_ is None:
            raise NotFittedError("PixelGaussian.predict() called before fit()")
        stack = self._stack(samples)
        z_squared = (((stack - self.mean_) / self.std_) ** 2).sum(axis=-1)
        maps = np.stack([gaussian_filter(m, self.smooth) if self.smooth else m for m in z_squared])
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps.astype(np.float32))
