"""Patch features: one descriptor per cell of a feature grid (Roth et al. 2022, PatchCore, Sec. 3.1).

A patch feature at grid position (h, w) is built in three steps:

1. *local neighbourhood aggregation* (PatchCore Eq. 1-2): every stage's feature map is averaged
   over a p×p neighbourhood (p = 3, stride 1), so each descriptor sees a slightly larger receptive
   field without losing resolution;
2. *multi-stage concatenation* (PatchCore Sec. 3.1; PaDiM does the same): deeper, coarser stages are
   resized to the grid of the first chosen stage and the channels are concatenated;
3. optional *dimension reduction*: a seeded random subset of channels (as PaDiM does) or a seeded
   Gaussian random projection (Johnson-Lindenstrauss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features import cache as feature_cache
from uiad_lite.features.backbones import Backbone, images_to_tensor

Reduction = Literal["none", "subset", "projection"]


def aggregate_neighbourhood(feature: torch.Tensor, size: int = 3, count_padding: bool = True) -> torch.Tensor:
    """Average each position over its size×size neighbourhood (stride 1, same grid; PatchCore Eq. 2).

    The grid is zero-padded by size // 2. With ``count_padding=True`` (the default) every mean divides
    by size², zeros outside the border included, as the released PatchCore code (its zero-padded
    ``torch.nn.Unfold`` patches), CFA's code and anomalib (``avg_pool2d``'s default
    ``count_include_pad=True``) do: a corner of a 3×3 window holds 4 real values over 9, so border
    features are shrunk towards zero. ``count_padding=False`` divides by the number of real
    neighbours instead (4 at a corner).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"neighbourhood size must be a positive odd integer, got {size}")
    if size == 1:
        return feature
    return F.avg_pool2d(
        feature, kernel_size=size, stride=1, padding=size // 2, count_include_pad=bool(count_padding)
    )


def combine_stages(features: Sequence[torch.Tensor], mode: str = "bilinear") -> torch.Tensor:
    """Resize every stage to the grid of the first one and concatenate along channels."""
    if not features:
        raise ValueError("combine_stages needs at least one feature map")
    grid = features[0].shape[-2:]
    resized = [features[0]]
    for feature in features[1:]:
        align = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        resized.append(F.interpolate(feature, size=grid, mode=mode, **align))
    return torch.cat(resized, dim=1)


def random_channel_subset(num_channels: int, keep: int, seed: int) -> np.ndarray:
    """Sorted indices of ``keep`` distinct channels drawn uniformly at random (PaDiM's reduction)."""
    if not 0 < keep <= num_channels:
        raise ValueError(f"cannot keep {keep} of {num_channels} channels")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_channels, size=keep, replace=False))


def random_projection_matrix(in_dim: int, out_dim: int, seed: int) -> np.ndarray:
    """Gaussian random projection (in_dim, out_dim) with entries N(0, 1/out_dim): distances are
    preserved in expectation (Johnson-Lindenstrauss)."""
    if in_dim < 1 or out_dim < 1:
        raise ValueError(f"projection dims must be positive, got {in_dim} -> {out_dim}")
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((in_dim, out_dim)) / np.sqrt(out_dim)).astype(np.float32)


class PatchFeatureExtractor:
    """Images -> (N, C, h, w) patch features on the grid of the first backbone stage.

    Images are resized to ``image_size``×``image_size`` whatever their original size, so features of
    images of different sizes (or of another size than at fit time) live on the same grid.

    Args:
        backbone: a frozen :class:`~uiad_lite.features.backbones.Backbone`.
        image_size: side of the square network input in pixels (224 in PaDiM and PatchCore).
        neighbourhood: side p of the aggregation window (3 in PatchCore; 1 switches it off).
        upsample_mode: how deeper stages reach the first grid ("bilinear" in PatchCore, "nearest" in PaDiM).
        reduction: "none", "subset" (random channels) or "projection" (Gaussian random projection).
        reduced_dim: the number of channels kept by "subset" / "projection".
        seed: seeds the subset / projection.
        batch_size: images per forward pass.
        progress: show a tqdm bar.
    """

    def __init__(
        self,
        backbone: Backbone,
        image_size: int = 224,
        neighbourhood: int = 3,
        upsample_mode: str = "bilinear",
        reduction: Reduction = "none",
        reduced_dim: int | None = None,
        seed: int = 0,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.backbone = backbone
        self.image_size = int(image_size)
        self.neighbourhood = neighbourhood
        self.upsample_mode = upsample_mode
        self.batch_size = batch_size
        self.progress = progress
        total = int(sum(backbone.info.channels))
        self.channel_index: torch.Tensor | None = None
        self.projection: torch.Tensor | None = None
        if reduction == "none":
            self.out_channels = total
        elif reduction in ("subset", "projection"):
            if reduced_dim is None:
                raise ValueError(f"reduction={reduction!r} needs reduced_dim")
            if reduction == "subset":
                index = random_channel_subset(total, reduced_dim, seed)
                self.channel_index = torch.from_numpy(index).to(backbone.device)
            else:
                matrix = random_projection_matrix(total, reduced_dim, seed)
                self.projection = torch.from_numpy(matrix).to(backbone.device)
            self.out_channels = int(reduced_dim)
        else:
            raise ValueError(f"reduction must be 'none', 'subset' or 'projection', got {reduction!r}")
        self.reduction = reduction
        first_stride = backbone.info.strides[0]
        self.grid_size = (-(-self.image_size // first_stride),) * 2  # ceil division

    @torch.no_grad()
    def from_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float images in [0, 1] -> (B, C, h, w) patch features."""
        return self.from_stages(self.backbone(images))

    @torch.no_grad()
    def from_stages(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """The backbone's raw stage outputs of a batch -> (B, C, h, w) patch features."""
        stages = [aggregate_neighbourhood(stage, self.neighbourhood) for stage in stages]
        features = combine_stages(stages, self.upsample_mode)
        if self.channel_index is not None:
            features = features.index_select(1, self.channel_index)
        elif self.projection is not None:
            features = torch.einsum("bchw,cd->bdhw", features, self.projection)
        return features

    def extract_images(self, images: Sequence[np.ndarray], desc: str = "patch features") -> torch.Tensor:
        """H×W×3 uint8 images (any sizes) -> (N, C, h, w) features on the backbone's device."""
        return self._extract(len(images), lambda index: images[index], desc)

    def __call__(self, samples: Sequence[Sample], desc: str = "patch features") -> torch.Tensor:
        """Samples -> (N, C, h, w) features; every sample must have an image (read batch by batch).

        The backbone's stage outputs go through the shared feature cache (:mod:`uiad_lite.features.cache`):
        a second method or chapter asking for the same images, backbone and size skips the forward passes.
        """

        def image_of(index: int) -> np.ndarray:
            sample = samples[index]
            sample.require("image")
            image = np.asarray(sample.image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"sample {sample.path or index!r}: image must be H×W×3 uint8 RGB, "
                    f"got shape {image.shape} dtype {image.dtype}"
                )
            return image

        if feature_cache.cache_dir() is None:
            return self._extract(len(samples), image_of, desc)
        if len(samples) == 0:
            raise ValueError("no images to extract features from")
        key = feature_cache.feature_key(samples, image_of, self.backbone, self.image_size)
        layers = list(self.backbone.info.layers)
        stages = feature_cache.load(key, layers)
        if stages is None:
            stages = self._extract_stages(len(samples), image_of, desc)
            feature_cache.store(key, layers, stages)
        chunks = []
        for start in range(0, len(samples), self.batch_size):
            batch = [stage[start : start + self.batch_size].to(self.backbone.device) for stage in stages]
            chunks.append(self.from_stages(batch))
        return torch.cat(chunks)

    @torch.no_grad()
    def _extract_stages(
        self, count: int, image_of: Callable[[int], np.ndarray], desc: str
    ) -> list[torch.Tensor]:
        """The backbone's raw stage outputs for every image, on the CPU (what the cache stores)."""
        per_stage: list[list[torch.Tensor]] | None = None
        starts = range(0, count, self.batch_size)
        for start in tqdm(starts, desc=desc, disable=not self.progress, leave=False):
            images = [image_of(index) for index in range(start, min(count, start + self.batch_size))]
            batch = images_to_tensor(images, self.image_size).to(self.backbone.device)
            outputs = [stage.cpu() for stage in self.backbone(batch)]
            per_stage = [[] for _ in outputs] if per_stage is None else per_stage
            for bucket, output in zip(per_stage, outputs, strict=True):
                bucket.append(output)
        return [torch.cat(bucket) for bucket in per_stage]

    def _extract(self, count: int, image_of: Callable[[int], np.ndarray], desc: str) -> torch.Tensor:
        if count == 0:
            raise ValueError("no images to extract features from")
        chunks = []
        starts = range(0, count, self.batch_size)
        for start in tqdm(starts, desc=desc, disable=not self.progress, leave=False):
            images = [image_of(index) for index in range(start, min(count, start + self.batch_size))]
            batch = images_to_tensor(images, self.image_size)
            chunks.append(self.from_tensor(batch.to(self.backbone.device)))
        return torch.cat(chunks)
