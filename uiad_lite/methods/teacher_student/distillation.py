"""What the teacher-student detectors share: images in, a seeded training loop that refuses NaN, maps out.

* Every image is resized (bilinear, antialiased) to ``image_size``×``image_size`` at fit and at predict
  time, so test images of another size than the training images are handled the same way (no error).
* A training set smaller than ``batch_size`` is *handled*: the batch is the whole set
  (``batch_size_`` records the size used). An empty one raises a ValueError.
* A loss that turns NaN or infinite stops training with a ``FloatingPointError`` naming the method
  and the epoch (1-based) where it happened.
* Per-position scores are turned into maps as the memory-bank methods do
  (:func:`uiad_lite.methods.memory_bank.patch_detector.anomaly_maps`: bilinear upsampling to
  ``image_size``, Gaussian smoothing, resize to the masks' resolution).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone, images_to_tensor, resolve_device
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.memory_bank.patch_detector import anomaly_maps, output_size


def images_of(samples: Sequence[Sample], image_size: int, who: str) -> torch.Tensor:
    """(N, 3, S, S) float tensor in [0, 1] of the samples' RGB images, each resized to ``image_size``."""
    if len(samples) == 0:
        raise ValueError(f"{who} needs at least one sample, got none")
    for sample in samples:
        sample.require("image")
    return images_to_tensor([sample.image for sample in samples], image_size)


def check_finite(loss: torch.Tensor, epoch: int, who: str) -> None:
    """Stop training with a clear error when the loss is NaN or infinite (``epoch`` is 0-based)."""
    if not torch.isfinite(loss.detach()).all():
        raise FloatingPointError(
            f"{who}: the training loss became {float(loss.detach())} in epoch {epoch + 1}; "
            f"lower the learning rate or check the training images for NaN / constant values"
        )


class DistillationDetector:
    """Plumbing of a teacher-student detector (a base class, not a method): the frozen pretrained
    backbone, seeds, batches, progress bars, the loss history and the maps."""

    sigma: float = 4.0

    def __init__(
        self,
        backbone: str | Backbone,
        layers: Sequence[int | str],
        image_size: int,
        epochs: int,
        batch_size: int,
        device: str,
        seed: int,
        pretrained: bool,
        progress: bool,
    ) -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 px, got {image_size}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
        if isinstance(backbone, Backbone):
            self.teacher = backbone
        else:
            self.teacher = build_backbone(
                backbone, tuple(layers), device=resolve_device(device), pretrained=pretrained, seed=seed
            )
        self.backbone_name = self.teacher.info.name
        self.layers = tuple(layers)
        self.image_size, self.epochs, self.batch_size = int(image_size), int(epochs), int(batch_size)
        self.seed, self.pretrained, self.progress = int(seed), pretrained, progress
        self.loss_history_: list[float] = []
        self.batch_size_: int | None = None

    @property
    def device(self) -> torch.device:
        return self.teacher.device

    @property
    def name(self) -> str:
        return type(self).__name__

    def _images(self, samples: Sequence[Sample]) -> torch.Tensor:
        return images_of(samples, self.image_size, self.name)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet normalisation, as the teacher applies it (for networks fed outside the teacher)."""
        return (images.to(self.device) - self.teacher.mean) / self.teacher.std

    @torch.no_grad()
    def _teacher_features(self, images: torch.Tensor, chunk: int = 16) -> list[torch.Tensor]:
        """The frozen teacher's stages for all images, computed once (no augmentation is used)."""
        parts = [self.teacher(images[i : i + chunk]) for i in range(0, len(images), chunk)]
        return [torch.cat([part[s] for part in parts]) for s in range(len(parts[0]))]

    def _epochs(self, count: int, desc: str) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield (epoch, shuffled index batches); seeds torch and numpy, checks the set size."""
        if count < 1:
            raise ValueError(f"{self.name}.fit() needs at least one training image")
        self.batch_size_ = min(self.batch_size, count)  # a set smaller than a batch is one batch
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.loss_history_ = []
        for epoch in tqdm(range(self.epochs), desc=desc, disable=not self.progress, leave=False):
            order = rng.permutation(count)
            yield epoch, [order[i : i + self.batch_size_] for i in range(0, count, self.batch_size_)]

    def _check_fitted(self, fitted: object) -> None:
        if fitted is None:
            raise NotFittedError(f"{self.name}.predict() called before fit()")

    def _maps(self, grid_scores: torch.Tensor, samples: Sequence[Sample], sigma: float | None = None):
        """(N, h, w) scores -> (N, H, W) maps at the masks' resolution (upsample, smooth, resize)."""
        return anomaly_maps(
            grid_scores, self.image_size, output_size(samples), self.sigma if sigma is None else sigma
        )
