"""What the flow detectors share: a frozen backbone whose per-stage outputs go through the feature cache,
a seeded training loop over cached features, and the checks every flow needs.

The lever for speed is the cache: the backbone never trains, so its stage outputs are computed once
per (images, backbone, size) and every epoch of the flow reads them from memory. Images are resized to
``image_size`` × ``image_size`` at fit and predict time alike (another size is resized consistently);
maps are resized to each sample's mask size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector


class StageExtractor(PatchFeatureExtractor):
    """A patch-feature extractor that hands back every stage as it is (no aggregation, no resizing).

    It goes through :meth:`PatchFeatureExtractor.__call__`, hence through the shared feature cache: the
    stages are packed into one (N, sum_l C_l·h_l·w_l, 1, 1) tensor on the way and unpacked here."""

    shapes: list[tuple[int, ...]] = []

    def from_stages(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        self.shapes = [tuple(stage.shape[1:]) for stage in stages]
        return torch.cat([stage.flatten(1) for stage in stages], dim=1)[:, :, None, None]

    def stages(self, samples: Sequence[Sample], desc: str) -> list[torch.Tensor]:
        packed = self(samples, desc=desc)[:, :, 0, 0]
        sizes = [int(np.prod(shape)) for shape in self.shapes]
        return [
            part.reshape(len(packed), *shape)
            for part, shape in zip(packed.split(sizes, 1), self.shapes, strict=True)
        ]


class FlowDetector(PatchFeatureDetector):
    """Base class (not a method): backbone, cached stage outputs, finite-value checks."""

    sigma: float = 0.0

    def __init__(
        self,
        backbone: str | Backbone,
        layers: Sequence[int | str] | None,
        image_size: int,
        device: str,
        seed: int,
        pretrained: bool,
        batch_size: int,
        progress: bool,
        **options: Any,
    ) -> None:
        super().__init__(
            backbone,
            layers,
            image_size,
            device,
            seed,
            pretrained,
            batch_size,
            progress,
            neighbourhood=1,
            **options,
        )
        self.loss_history_: list[float] = []

    def _stages(self, samples: Sequence[Sample], desc: str) -> list[torch.Tensor]:
        """The backbone's raw stage outputs [(N, C_l, h_l, w_l)] on the backbone's device (cached)."""
        if len(samples) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one sample")
        stages = self.extractor.stages(samples, desc)
        for index, stage in enumerate(stages):
            if not torch.isfinite(stage).all():
                raise FloatingPointError(
                    f"backbone stage {index} gave NaN/inf features; check the input images"
                )
        return [stage.to(self.device) for stage in stages]

    def _make_extractor(self, **options: Any) -> StageExtractor:
        return StageExtractor(self.backbone, **options)

    def _check_fitted(self, *state: object) -> None:
        if any(item is None for item in state):
            raise NotFittedError(f"{type(self).__name__}.predict() called before fit()")

    @staticmethod
    def _check_finite(values: torch.Tensor, what: str) -> torch.Tensor:
        if not torch.isfinite(values).all():
            raise FloatingPointError(f"{what} is NaN/inf; the flow diverged (lower the learning rate)")
        return values

    def _generator(self) -> np.random.Generator:
        torch.manual_seed(self.seed)
        return np.random.default_rng(self.seed)
