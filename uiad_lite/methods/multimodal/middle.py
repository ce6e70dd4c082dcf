"""Middle fusion (``fusion_middle``): M3DM's unsupervised feature fusion (UFF; Wang et al. 2023,
"Multimodal Industrial Anomaly Detection via Hybrid Fusion", released nomewang/M3DM,
``models/feature_fusion.py`` and ``fusion_pretrain.py``), on our RGB backbone and FPFH.

A learned mapping trained on normal patches only (:class:`ContrastiveFusion`): each modality goes through
LayerNorm + a two-layer MLP (hidden = ``ratio`` × width, released 4), then a linear head to ``head_dim``
(256); a patch-wise InfoNCE loss (temperature 1, as released) pulls the RGB and 3D embeddings of the same
patch together and pushes those of other patches in the batch apart, so the MLPs learn what the two
modalities share on normal parts. The fused patch feature is the concatenation of the two MLP outputs;
one PatchCore memory bank on it scores test patches (nearest-neighbour distance, re-weighted worst patch,
blurred maps). This is M3DM's fused-feature bank on its own (the third of M3DM's banks; the full hybrid
with a decision layer is ``fusion_hybrid``). Released departures: M3DM pre-trains the fusion once on the
whole MVTec 3D-AD training set (ViT + Point-MAE features, 3 epochs, AdamW); here it is trained per
category on the detector's own training patches for ``epochs`` epochs (AdamW, ``lr``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.fusion import ContrastiveFusion, PatchBank, as_patches
from uiad_lite.methods.multimodal.rgbd_detector import RGBDDetector
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids


class FusionMiddle(RGBDDetector):
    """M3DM-style contrastive feature fusion + one memory bank on the fused patches (module docstring)."""

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        ratio: float = 4.0,
        head_dim: int = 256,
        epochs: int = 5,
        batch_size: int = 256,
        lr: float = 1e-3,
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
        self.ratio, self.head_dim, self.epochs = float(ratio), int(head_dim), int(epochs)
        self.batch_size, self.lr, self.reweight = int(batch_size), float(lr), reweight
        self.fusion_: ContrastiveFusion | None = None
        self.history_: list[float] = []
        self.bank_: PatchBank | None = None

    def fused(self, grids: PatchGrids) -> torch.Tensor:
        """(N, C_xyz + C_rgb, g, g) fused features (after fit)."""
        count, _, height, width = grids.rgb.shape
        with torch.no_grad():
            fused = self.fusion_.fuse(as_patches(grids.rgb), as_patches(grids.xyz))
        return fused.reshape(count, height, width, -1).permute(0, 3, 1, 2)

    def _fit(self, grids: PatchGrids) -> None:
        valid = grids.valid.reshape(-1)
        rgb, xyz = as_patches(grids.rgb)[valid], as_patches(grids.xyz)[valid]
        self.fusion_ = ContrastiveFusion(rgb.shape[1], xyz.shape[1], self.ratio, self.head_dim)
        self.history_ = self.fusion_.fit(
            rgb, xyz, self.epochs, self.batch_size, self.lr, self.seed, self.progress
        )
        bank = PatchBank(self.coreset_ratio, self.seed, self.device, self.progress, self.reweight)
        self.bank_ = bank.fit(as_patches(self.fused(grids))[valid])

    def _predict(self, grids: PatchGrids) -> Prediction:
        patch_scores, scores = self.bank_.score(self.fused(grids), grids.valid)
        return Prediction(scores=scores, maps=self.maps(patch_scores, grids.size))
