"""What the memory-bank detectors share: a frozen backbone, patch features on a grid, and anomaly maps.

Every image is resized to ``image_size``×``image_size`` before the backbone, at fit and predict time
alike, so test images of another size than the training images get the same grid. Patch scores are
upsampled (bilinear) to ``image_size``, smoothed by a Gaussian of ``sigma`` = 4 px at that resolution
(PaDiM, PatchCore and CFA all do this) and resized (bilinear) to each sample's mask resolution (its
image resolution when it has no mask). All maps of one ``predict`` call share one resolution because
``Prediction.maps`` is an (N, H, W) array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor


def output_size(samples: Sequence[Sample]) -> tuple[int, int]:
    """The common (H, W) of the samples' masks (or images when a sample has no mask)."""
    sizes = set()
    for sample in samples:
        sample.require("image")
        reference = sample.mask if sample.mask is not None else sample.image
        sizes.add(tuple(int(v) for v in reference.shape[:2]))
    if len(sizes) != 1:
        raise ValueError(
            f"predict() returns one (N, H, W) map array, so all samples must share one mask/image size; "
            f"got {sorted(sizes)}. Resize them first or call predict() once per size."
        )
    return sizes.pop()


def anomaly_maps(
    patch_scores: torch.Tensor, image_size: int, output_size: tuple[int, int], sigma: float = 4.0
) -> np.ndarray:
    """(N, h, w) patch scores -> (N, H, W) float32 maps: bilinear upsampling to the network input
    size, Gaussian smoothing (``sigma`` px, truncated at 4 sigma), bilinear resize to ``output_size``."""
    maps = F.interpolate(
        patch_scores[:, None].float(), size=(image_size, image_size), mode="bilinear", align_corners=False
    )[:, 0]
    smoothed = maps.cpu().numpy()
    if sigma > 0:
        smoothed = np.stack([gaussian_filter(m, sigma=sigma, mode="reflect") for m in smoothed])
    if tuple(output_size) != (image_size, image_size):
        resized = F.interpolate(
            torch.from_numpy(smoothed)[:, None], size=output_size, mode="bilinear", align_corners=False
        )
        smoothed = resized[:, 0].numpy()
    return smoothed.astype(np.float32)


class PatchFeatureDetector:
    """Backbone + patch-feature plumbing shared by PaDiM, PatchCore and CFA (a base class, not a method).

    Subclasses set ``default_layers`` and ``sigma``, and may override :meth:`_make_extractor` to read
    the backbone's stages their own way (PatchCore does).
    """

    default_layers: tuple[int | str, ...] = (2, 3)
    sigma: float = 4.0

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
        **extractor_options: Any,
    ) -> None:
        if isinstance(backbone, Backbone):
            if layers is not None and tuple(layers) not in (backbone.info.layers, backbone.info.module_names):
                raise ValueError(
                    f"layers={tuple(layers)} disagrees with the given backbone's layers "
                    f"{backbone.info.layers}"
                )
            self.backbone = backbone
        else:
            chosen = self.default_layers if layers is None else tuple(layers)
            self.backbone = build_backbone(backbone, chosen, device=device, pretrained=pretrained, seed=seed)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.progress = progress
        self.extractor = self._make_extractor(
            image_size=image_size, seed=seed, batch_size=batch_size, progress=progress, **extractor_options
        )

    def _make_extractor(self, **options: Any) -> PatchFeatureExtractor:
        return PatchFeatureExtractor(self.backbone, **options)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def _features(self, samples: Sequence[Sample], desc: str) -> torch.Tensor:
        if len(samples) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one sample")
        return self.extractor(samples, desc=desc)

    def _maps(self, patch_scores: torch.Tensor, samples: Sequence[Sample]) -> np.ndarray:
        return anomaly_maps(patch_scores, self.image_size, output_size(samples), self.sigma)
