"""What every RGB+3D detector of this family shares (a base class, not a method).

``fit(samples)`` extracts :class:`PatchGrids` (backbone RGB features and FPFH on one grid) and calls
``fit_grids``; ``predict(samples)`` extracts again and calls ``predict_grids``. Chapters that compare many
strategies extract once and call ``fit_grids`` / ``predict_grids`` directly (:mod:`.comparison`), passing
one built :class:`Backbone` as ``backbone`` so that it is not rebuilt for every strategy. The backbone is
built in the constructor, so missing pretrained weights are reported at ``create`` time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone, resolve_device
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import anomaly_maps
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids, RGBDFeatures, check_layout


def holdout_split(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``count`` training samples into (fit, held back); at least one in each part."""
    if count < 2:
        raise ValueError(f"need at least 2 training samples to hold some back, got {count}")
    if not 0 < fraction < 1:
        raise ValueError(f"holdout must be in (0, 1), got {fraction}")
    held = int(np.clip(round(fraction * count), 1, count - 1))
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


class RGBDDetector:
    """Backbone + FPFH plumbing and the fit/predict split of the multimodal detectors."""

    missing_modes: tuple[str, ...] = ("error",)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        coreset_ratio: float = 0.1,
        sigma: float = 4.0,
        missing: str = "error",
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        if missing not in self.missing_modes:
            raise ValueError(
                f"{type(self).__name__} takes missing in {list(self.missing_modes)}, got {missing!r}"
            )
        self.backbone, self.layers, self.image_size = backbone, tuple(layers), int(image_size)
        self.cloud_size, self.voxel_size = int(cloud_size), float(voxel_size)
        self.coreset_ratio, self.sigma, self.missing = coreset_ratio, float(sigma), missing
        self.seed, self.pretrained, self.progress = int(seed), pretrained, progress
        self.device = resolve_device(device)
        self.layout_: dict[str, int] | None = None
        self.features = RGBDFeatures(backbone, self.layers, self.image_size, self.cloud_size, self.voxel_size,
                                     self.device, pretrained, progress=progress)  # fmt: skip

    def extract(self, samples: Sequence[Sample], missing: str = "error", desc: str = "") -> PatchGrids:
        return self.features(samples, missing=missing, desc=desc or f"{type(self).__name__} features")

    def fit(self, samples: Sequence[Sample]) -> RGBDDetector:
        return self.fit_grids(self.extract(samples, "error", f"{type(self).__name__} fit"))

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        self._check_fitted()
        mode = "error" if self.missing == "error" else "allow"
        return self.predict_grids(self.extract(samples, mode, f"{type(self).__name__} predict"))

    def fit_grids(self, grids: PatchGrids) -> RGBDDetector:
        if not (bool(grids.has_rgb.all()) and bool(grids.has_xyz.all())):
            raise ValueError(f"{type(self).__name__}.fit needs every training sample with both RGB and xyz")
        torch.manual_seed(self.seed)
        self._fit(grids)
        self.layout_ = grids.layout
        return self

    def predict_grids(self, grids: PatchGrids) -> Prediction:
        self._check_fitted()
        check_layout(self.layout_, grids, type(self).__name__)
        if self.missing == "error" and not (bool(grids.has_rgb.all()) and bool(grids.has_xyz.all())):
            raise ValueError(
                f"{type(self).__name__} needs RGB and xyz for every test sample; "
                f"{int((~grids.has_rgb).sum())} lack RGB and {int((~grids.has_xyz).sum())} lack xyz "
                "(late fusion takes missing='fallback', CFM missing='impute')"
            )
        with torch.no_grad():
            return self._predict(grids)

    def maps(self, patch_scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """(N, g, g) patch scores -> (N, H, W) maps (bilinear up, Gaussian sigma px, resize)."""
        return anomaly_maps(patch_scores.float(), self.image_size, size, self.sigma)

    def _check_fitted(self) -> None:
        if self.layout_ is None:
            raise NotFittedError(f"{type(self).__name__}.predict() called before fit()")

    def _fit(self, grids: PatchGrids) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, grids: PatchGrids) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError
