"""Hybrid fusion (``fusion_hybrid``): M3DM's decision-layer fusion (Wang et al. 2023, "Multimodal
Industrial Anomaly Detection via Hybrid Fusion", released nomewang/M3DM ``feature_extractors/
multiple_features.py``, ``DoubleRGBPointFeatures`` with ``m3dm_runner.py``), with FPFH in place of
M3DM's Point-MAE point transformer, whose pretrained weights are not reachable offline.

1. each modality's patch features are standardised by one scalar mean and std over the training patches
   (released ``run_coreset``; the released code swaps the statistics — the 3D std is taken from the RGB
   bank and the RGB mean from the 3D bank — we use each modality's own);
2. one memory bank per modality (:class:`PatchBank`, 10 % greedy coreset; released: approximate greedy);
   per sample an image score per modality (worst patch re-weighted) and a distance per patch;
3. a decision layer (:class:`DecisionLayer`, ``SGDOneClassSVM(nu=0.5, max_iter=1000, random_state=42)``)
   is fit on the score vectors (s_xyz, s_rgb) of normal samples, a second one on the per-patch vectors;
   the anomaly score is ``score_samples`` as released, the map the per-patch decision scores upsampled and
   blurred (released: per pixel at 224 px after blurring each modality's map; here per patch first).

Before the decision layer each column is multiplied by a weight: ``score_scaling="released"`` uses the
released ``--xyz_s_lambda 1.0 --rgb_s_lambda 0.1`` (and the same for the maps), hand-set for ViT and Point-MAE
features; ``score_scaling="normal_mean"`` divides each column by its mean over the decision data, so both
modalities enter the one-class SVM at the same scale whatever the features (our default for other features).

``decision_data="train"`` is the released choice: the decision layers see the training samples themselves
re-scored against banks that contain them (their distances are too small, the coreset's own patches at
zero). ``decision_data="holdout"`` builds the banks from all but a seeded ``holdout`` share and fits the
decision layers on the held-back samples, which the banks have never seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.fusion import DecisionLayer, PatchBank, as_patches, choice
from uiad_lite.methods.multimodal.rgbd_detector import RGBDDetector, holdout_split
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids

DECISION_DATA = ("holdout", "train")
SCORE_SCALING = ("released", "normal_mean")
RELEASED_WEIGHTS = np.array([1.0, 0.1])  # (xyz, rgb): M3DM's default s_lambda / smap_lambda


class FusionHybrid(RGBDDetector):
    """M3DM-style decision layer over per-modality memory-bank scores, FPFH for the 3D branch."""

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        decision_data: str = "holdout",
        score_scaling: str = "normal_mean",
        holdout: float = 0.2,
        nu: float = 0.5,
        max_iter: int = 1000,
        coreset_ratio: float = 0.1,
        sigma: float = 4.0,
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(backbone, layers, image_size, cloud_size, voxel_size, coreset_ratio, sigma, "error",
                         seed, device, pretrained, progress)  # fmt: skip
        self.decision_data = choice("decision_data", decision_data, DECISION_DATA)
        self.score_scaling = choice("score_scaling", score_scaling, SCORE_SCALING)
        self.weights_: dict[str, np.ndarray] = {}
        self.holdout, self.nu, self.max_iter = float(holdout), float(nu), int(max_iter)
        self.stats_: dict[str, tuple[float, float]] = {}
        self.banks_: dict[str, PatchBank] = {}
        self.image_layer_: DecisionLayer | None = None
        self.patch_layer_: DecisionLayer | None = None

    def _standardised(self, grids: PatchGrids, branch: str) -> torch.Tensor:
        mean, std = self.stats_[branch]
        return (getattr(grids, branch) - mean) / std

    def branch_scores(self, grids: PatchGrids) -> tuple[np.ndarray, torch.Tensor]:
        """(N, 2) image scores (xyz, rgb) and (N, 2, g, g) patch distances, released column order."""
        images, patches = [], []
        for branch in ("xyz", "rgb"):
            where = grids.valid if branch == "xyz" else None
            patch, image = self.banks_[branch].score(self._standardised(grids, branch), where)
            images.append(image)
            patches.append(patch)
        return np.stack(images, axis=1), torch.stack(patches, dim=1)

    def _fit(self, grids: PatchGrids) -> None:
        valid = grids.valid.reshape(-1)
        for branch in ("xyz", "rgb"):
            patches = as_patches(getattr(grids, branch))[valid if branch == "xyz" else slice(None)]
            self.stats_[branch] = (float(patches.mean()), float(patches.std().clamp_min(1e-12)))
        if self.decision_data == "train":
            bank_part = decision_part = grids
        else:
            fit_index, held_index = holdout_split(len(grids), self.holdout, self.seed)
            bank_part, decision_part = grids.subset(fit_index), grids.subset(held_index)
        keep = bank_part.valid.reshape(-1)
        for branch in ("xyz", "rgb"):
            patches = as_patches(self._standardised(bank_part, branch))
            bank = PatchBank(self.coreset_ratio, self.seed, self.device, self.progress)
            self.banks_[branch] = bank.fit(patches[keep] if branch == "xyz" else patches)
        images, patches = self.branch_scores(decision_part)
        patches = as_patches(patches).numpy()
        for key, values in (("image", images), ("patch", patches)):
            normal = values.mean(axis=0).clip(min=1e-12)
            self.weights_[key] = RELEASED_WEIGHTS if self.score_scaling == "released" else 1.0 / normal
        self.image_layer_ = DecisionLayer(self.nu, self.max_iter).fit(images * self.weights_["image"])
        self.patch_layer_ = DecisionLayer(self.nu, self.max_iter).fit(patches * self.weights_["patch"])

    def _predict(self, grids: PatchGrids) -> Prediction:
        images, patches = self.branch_scores(grids)
        count, _, height, width = patches.shape
        patch_scores = self.patch_layer_.score(as_patches(patches).numpy() * self.weights_["patch"])
        grid = torch.from_numpy(patch_scores).reshape(count, height, width)
        scores = self.image_layer_.score(images * self.weights_["image"])
        return Prediction(scores=scores, maps=self.maps(grid, grids.size))
