"""Early fusion (``fusion_early``): Back to the Feature's RGB + FPFH (Horwitz & Hoshen 2023, the survey's
"PatchCore+FPFH" row; released ``feature_extractors/rgb_fpfh_features.py`` in eliahuhorwitz/3D-ADS).

Per patch, the backbone's RGB feature and the pooled FPFH are concatenated (:class:`ModalityScaler`) and
the result goes into one PatchCore memory bank (:class:`PatchBank`): 10 % greedy coreset, Euclidean
distance to the nearest bank patch, image score = worst patch re-weighted as the released code does,
map = patch distances upsampled and blurred (sigma 4 px).

``normalise="none"`` is the released behaviour: raw concatenation, where the part with the larger spread
dominates every distance (with BTF's WideResNet-50, the FPFH histograms, whose entries reach tens).
``normalise="unit"`` centres each modality and scales it to unit root-mean-squared norm over the normal
training patches, so both weigh the same; ``scale_3d``
multiplies the 3D part after that (1 = balanced). Patches without a 3D point never enter the bank and
score 0 (as in :mod:`uiad_lite.methods.point_cloud.btf`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.fusion import ModalityScaler, PatchBank, as_patches
from uiad_lite.methods.multimodal.rgbd_detector import RGBDDetector
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids


class FusionEarly(RGBDDetector):
    """BTF RGB+FPFH: one memory bank on concatenated per-patch features (module docstring)."""

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        normalise: str = "none",
        scale_3d: float = 1.0,
        coreset_ratio: float = 0.1,
        reweight: bool = True,
        sigma: float = 4.0,
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(backbone, layers, image_size, cloud_size, voxel_size, coreset_ratio, sigma, "error",
                         seed, device, pretrained, progress)  # fmt: skip
        self.scaler = ModalityScaler(normalise, scale_3d)
        self.normalise, self.scale_3d, self.reweight = normalise, float(scale_3d), reweight
        self.bank_: PatchBank | None = None

    def fused(self, grids: PatchGrids) -> torch.Tensor:
        """(N, C_rgb + C_xyz, g, g) concatenated features of ``grids`` (after fit)."""
        return self.scaler.transform(grids.rgb, grids.xyz)

    def _fit(self, grids: PatchGrids) -> None:
        valid = grids.valid.reshape(-1)
        self.scaler.fit(as_patches(grids.rgb)[valid], as_patches(grids.xyz)[valid])
        bank = PatchBank(self.coreset_ratio, self.seed, self.device, self.progress, self.reweight)
        self.bank_ = bank.fit(as_patches(self.fused(grids))[valid])

    def _predict(self, grids: PatchGrids) -> Prediction:
        patch_scores, scores = self.bank_.score(self.fused(grids), grids.valid)
        return Prediction(scores=scores, maps=self.maps(patch_scores, grids.size))
