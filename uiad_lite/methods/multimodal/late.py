"""Late fusion (``fusion_late``): one memory bank per modality, patch scores normalised on held-back normal
data and combined (survey Sec. 5.2.3; the score-level fusion M3DM's decision layer refines).

Fit: a seeded ``holdout`` share of the normal training samples is set aside; an RGB bank (every patch) and
an FPFH bank (patches holding 3D points) are built from the rest (:class:`PatchBank`, 10 % greedy
coreset); the held-back samples' patch distances give each modality's normal score statistics
(:class:`ScoreNormaliser`: ``"zscore"`` mean / std, ``"quantile"`` median / (q99 - median)). Predict:
each modality's patch distances are normalised and combined per patch (``combine`` = "sum", "max" or
"product" of the ratios to the held-back median); the image score is the largest fused patch score; the
map is the fused grid upsampled and blurred. ``branches=("rgb",)`` or ``("xyz",)`` keeps one modality
(the reference rows "RGB alone" / "FPFH alone" of the comparison chapter).

Missing modality (survey Sec. 5.3.3): with ``missing="fallback"`` a test sample without an image or
without a cloud is scored by the branch it has, on the same normalised scale; ``missing="error"``
(default) raises the sample's error. Patches without 3D points take no part in the 3D branch either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.fusion import (
    COMBINE,
    PatchBank,
    ScoreNormaliser,
    as_patches,
    choice,
    combine,
)
from uiad_lite.methods.multimodal.rgbd_detector import RGBDDetector, holdout_split
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids

BRANCHES = ("rgb", "xyz")
NEUTRAL = {"sum": 0.0, "max": float("-inf"), "product": 1.0}


class FusionLate(RGBDDetector):
    """Per-modality memory banks, held-back score normalisation, sum / max / product (module docstring)."""

    missing_modes = ("error", "fallback")

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        branches: Sequence[str] = BRANCHES,
        normalise: str = "zscore",
        combine: str = "max",
        holdout: float = 0.2,
        coreset_ratio: float = 0.1,
        sigma: float = 4.0,
        missing: str = "error",
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(backbone, layers, image_size, cloud_size, voxel_size, coreset_ratio, sigma, missing,
                         seed, device, pretrained, progress)  # fmt: skip
        self.branches = tuple(branches)
        if not self.branches or any(b not in BRANCHES for b in self.branches):
            raise ValueError(f"branches must be a non-empty subset of {list(BRANCHES)}, got {list(branches)}")
        self.combine = choice("combine", combine, COMBINE)
        self.normaliser = ScoreNormaliser(normalise)
        self.normalise, self.holdout = normalise, float(holdout)
        self.banks_: dict[str, PatchBank] = {}

    def _where(self, grids: PatchGrids, branch: str) -> torch.Tensor:
        """(N, g, g) bool: where ``branch`` has something to say."""
        if branch == "rgb":
            return grids.has_rgb[:, None, None].expand_as(grids.valid)
        return grids.valid & grids.has_xyz[:, None, None]

    def raw_scores(self, grids: PatchGrids) -> dict[str, torch.Tensor]:
        """Each branch's (N, g, g) nearest-neighbour patch distances (0 where it has no data)."""
        return {b: self.banks_[b].score(getattr(grids, b), self._where(grids, b))[0] for b in self.branches}

    def normalised_scores(self, grids: PatchGrids) -> dict[str, torch.Tensor]:
        """Each branch's normalised patch scores (ratios for ``combine="product"``); NaN where no data."""
        out = {}
        for branch, raw in self.raw_scores(grids).items():
            scaled = (
                self.normaliser.ratio(branch, raw)
                if self.combine == "product"
                else self.normaliser.normalise(branch, raw)
            )
            out[branch] = torch.where(
                self._where(grids, branch), scaled, torch.full_like(scaled, float("nan"))
            )
        return out

    def _fit(self, grids: PatchGrids) -> None:
        fit_index, held_index = holdout_split(len(grids), self.holdout, self.seed)
        fit, held = grids.subset(fit_index), grids.subset(held_index)
        self.banks_ = {}
        for branch in self.branches:
            where = self._where(fit, branch).reshape(-1)
            bank = PatchBank(self.coreset_ratio, self.seed, self.device, self.progress, reweight=False)
            self.banks_[branch] = bank.fit(as_patches(getattr(fit, branch))[where])
        for branch, raw in self.raw_scores(held).items():
            self.normaliser.fit(branch, raw[self._where(held, branch)])

    def _predict(self, grids: PatchGrids) -> Prediction:
        parts = [
            torch.nan_to_num(s, nan=NEUTRAL[self.combine]) for s in self.normalised_scores(grids).values()
        ]
        fused = combine(parts, self.combine)
        known = torch.isfinite(fused)
        scores = torch.where(known, fused, torch.full_like(fused, float("-inf"))).flatten(1).max(dim=1).values
        floor = float(fused[known].min()) if known.any() else 0.0
        fused = torch.where(known, fused, torch.full_like(fused, floor))
        scores = torch.where(torch.isfinite(scores), scores, torch.full_like(scores, floor))
        return Prediction(scores=scores.numpy(), maps=self.maps(fused, grids.size))
