"""Crossmodal Feature Mapping (``cfm``; Costanzino, Zama Ramirez, Lisanti & Di Stefano, CVPR 2024,
"Multimodal Industrial Anomaly Detection by Crossmodal Feature Mapping"; released CVLAB-Unibo/
crossmodal-feature-mapping, ``cfm_training.py``, ``cfm_inference.py``, ``models/feature_transfer_nets.py``).

Two MLPs learn, on normal patches only, to predict one modality's feature from the other's: M_2D→3D maps
the RGB patch feature to the 3D one, M_3D→2D the reverse. Released architecture
(``FeatureProjectionMLP``): Linear(in, h), GELU, Linear(h, h), GELU, Linear(h, out) with h = (in + out) / 2;
loss 1 − cosine similarity on the patches holding 3D points, both directions, Adam (lr 1e-3), batches of
``batch_size`` images (released 4), 50 epochs (``epochs``). On a normal part each mapping is accurate; a
defect that changes one modality only breaks the correspondence, so *both* mappings fail there.

Score, as released: per patch, the distance between L2-normalised prediction and observation in each
direction (``d_3D = ‖n(M_2D→3D(f_2D)) − n(f_3D)‖``, and d_2D likewise; the released "cosine" maps are these
Euclidean distances of unit vectors, √(2 − 2 cos)), multiplied (``d_2D · d_3D``), zero where no 3D point,
blurred (released: repeated box filters ≈ Gaussian; here a Gaussian of ``sigma`` px). Image score
(``image_score="released"``): the map's maximum divided by the square root of the mean of its non-zero
values; ``"max"``: the maximum. Released features are DINO ViT-B/8 (2D) and Point-MAE (3D) upsampled to
224×224 with the MLPs applied per pixel; here the backbone's patch features and pooled FPFH on the patch
grid, maps upsampled afterwards.

Missing modality (``missing="impute"``): the absent modality's features are imputed from the present one
(f̂_3D = M_2D→3D(f_2D), or f̂_2D = M_3D→2D(f_3D)); no observation is left to compare with, so the score is
the cycle error of the present modality (e.g. ‖n(M_3D→2D(f̂_3D)) − n(f_2D)‖), squared to keep the units
of the product. ``missing="error"`` (default) raises the sample's error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.multimodal.fusion import choice
from uiad_lite.methods.multimodal.rgbd_detector import RGBDDetector
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids

IMAGE_SCORES = ("released", "max")


class FeatureMapping(nn.Module):
    """The released ``FeatureProjectionMLP``: in -> (in+out)/2 -> (in+out)/2 -> out, GELU between."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        hidden = (in_features + out_features) // 2
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, out_features),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def unit_distance(predicted: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """‖n(a) − n(b)‖ along the channel axis 1 (the released "cosine" distance)."""
    return (F.normalize(predicted, dim=1) - F.normalize(observed, dim=1)).norm(dim=1)


class CFM(RGBDDetector):
    """Crossmodal feature mapping: MLPs 2D→3D and 3D→2D, score = product of the two mapping errors."""

    missing_modes = ("error", "impute")

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        epochs: int = 50,
        batch_size: int = 4,
        lr: float = 1e-3,
        image_score: str = "released",
        sigma: float = 4.0,
        missing: str = "error",
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(backbone, layers, image_size, cloud_size, voxel_size, 1.0, sigma, missing, seed,
                         device, pretrained, progress)  # fmt: skip
        self.epochs, self.batch_size, self.lr = int(epochs), int(batch_size), float(lr)
        self.image_score = choice("image_score", image_score, IMAGE_SCORES)
        self.to_3d_: FeatureMapping | None = None
        self.to_2d_: FeatureMapping | None = None
        self.history_: list[float] = []

    @staticmethod
    def _rows(grid: torch.Tensor) -> torch.Tensor:
        return grid.permute(0, 2, 3, 1)  # (N, g, g, C)

    def _fit(self, grids: PatchGrids) -> None:
        rgb, xyz, valid = self._rows(grids.rgb), self._rows(grids.xyz), grids.valid
        self.to_3d_ = FeatureMapping(rgb.shape[-1], xyz.shape[-1])
        self.to_2d_ = FeatureMapping(xyz.shape[-1], rgb.shape[-1])
        parameters = list(self.to_3d_.parameters()) + list(self.to_2d_.parameters())
        optimiser = torch.optim.Adam(parameters, lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        self.history_ = []
        for _ in tqdm(range(self.epochs), desc="CFM mappings", disable=not self.progress, leave=False):
            order, losses = torch.randperm(len(rgb), generator=generator), []
            for start in range(0, len(order), self.batch_size):
                pick = order[start : start + self.batch_size]
                keep = valid[pick]
                if not keep.any():
                    continue
                f2, f3 = rgb[pick][keep], xyz[pick][keep]
                loss_3d = 1 - F.cosine_similarity(self.to_3d_(f2), f3, dim=-1, eps=1e-6).mean()
                loss_2d = 1 - F.cosine_similarity(self.to_2d_(f3), f2, dim=-1, eps=1e-6).mean()
                optimiser.zero_grad()
                (loss_3d + loss_2d).backward()
                optimiser.step()
                losses.append(float((loss_3d + loss_2d).detach()) / 2)
            self.history_.append(float(np.mean(losses)) if losses else float("nan"))
        self.to_3d_.eval(), self.to_2d_.eval()

    def mapping_errors(self, grids: PatchGrids) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, g, g) d_2D and d_3D (module docstring); for a sample missing a modality, the imputed cycle
        error of the present one in both slots (so the product is its square)."""
        with torch.no_grad():
            rgb, xyz = self._rows(grids.rgb), self._rows(grids.xyz)
            pred_3d, pred_2d = self.to_3d_(rgb), self.to_2d_(xyz)
            d3 = unit_distance(pred_3d.permute(0, 3, 1, 2), grids.xyz)
            d2 = unit_distance(pred_2d.permute(0, 3, 1, 2), grids.rgb)
            no_xyz, no_rgb = ~grids.has_xyz, ~grids.has_rgb
            if no_xyz.any():  # impute 3D from 2D, score the 2D cycle error
                cycle = unit_distance(self.to_2d_(pred_3d[no_xyz]).permute(0, 3, 1, 2), grids.rgb[no_xyz])
                d2[no_xyz], d3[no_xyz] = cycle, cycle
            if no_rgb.any():  # impute 2D from 3D, score the 3D cycle error
                cycle = unit_distance(self.to_3d_(pred_2d[no_rgb]).permute(0, 3, 1, 2), grids.xyz[no_rgb])
                d2[no_rgb], d3[no_rgb] = cycle, cycle
        return d2, d3

    def _predict(self, grids: PatchGrids) -> Prediction:
        d2, d3 = self.mapping_errors(grids)
        where = grids.valid | ~grids.has_xyz[:, None, None]  # imputed samples are scored everywhere
        combined = d2 * d3 * where
        maps = self.maps(combined, grids.size)
        peaks = maps.reshape(len(maps), -1).max(axis=1)
        if self.image_score == "max":
            return Prediction(scores=peaks, maps=maps)
        means = np.array([m[m > 0].mean() if (m > 0).any() else 1.0 for m in maps])
        return Prediction(scores=peaks / np.sqrt(means), maps=maps)
