"""Back to the Feature (BTF; Horwitz & Hoshen 2023, "Back to the Feature: Classical 3D Features are (Almost)
All You Need for 3D Anomaly Detection"): PatchCore on hand-crafted 3D patch features of organised clouds.

Two variants from the paper's Table 1 and the released code (github.com/eliahuhorwitz/3D-ADS):

* :class:`BTFRaw` (``btf_raw``): raw coordinates as patch features (``raw_features.py``);
* :class:`BTFFPFH` (``btf_fpfh``): FPFH descriptors pooled onto the patch grid (``fpfh_features.py``).

Both go through :mod:`uiad_lite.features.point_features` (the grid contract shared with the 2D
backbones), then the released PatchCore step (``feature_extractors/features.py``):

1. every training patch goes into one bank, thinned to ``coreset_ratio`` (released 10 %) by greedy
   k-center on a random projection (released: sparse projection with eps 0.9; here the Gaussian one of
   :func:`uiad_lite.methods.memory_bank.coreset_indices`, ``sampler="greedy"``);
2. a test patch scores its Euclidean distance to the nearest bank patch;
3. the image score is the largest patch score re-weighted as in PatchCore's Eq. 7 the way the released
   code writes it (``image_score="reweighted"``): with s* the largest distance, m* its nearest bank
   patch and d_1, d_2 the distances from the test patch to the two next bank neighbours of m*,
   w = 1 - exp(s*/√D) / Σ_j exp(d_j/√D) and s = w·s* (``n_reweight`` = 3 neighbours counting m*);
   ``image_score="max"`` keeps s*;
4. the map: patch distances upsampled bilinearly to ``image_size`` (224), blurred by a Gaussian of
   ``sigma`` = 4 px, resized to the mask resolution.

Note on the released raw variant: its row-major reshape makes grid cell (i, j) hold pixels of raster row
S·(g·i + j)/g², not the square cell at (i, j), so its map is drawn at the wrong places (one reason for
its low AU-PRO in the paper); ``raw_layout="cells"`` is the spatially faithful alternative.

Where we depart, and why: patches whose pooled pixels hold no point (``valid fraction <= min_valid``)
never enter the bank and never vote — their score is 0 and the image score is taken over the other
patches; with ``masked=True`` (default) pooling averages over valid pixels only. ``masked=False,
min_valid=-1`` gives the released behaviour, where zero points are ordinary features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import resolve_device
from uiad_lite.features.point_features import RAW_LAYOUTS, organised_features
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.coreset import coreset_indices
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.memory_bank.patch_detector import anomaly_maps

IMAGE_SCORES = ("reweighted", "max")


def map_size(samples: Sequence[Sample]) -> tuple[int, int]:
    """The common (H, W) of the samples' masks (or of their organised clouds when a sample has no mask)."""
    sizes = {tuple(int(v) for v in (s.mask if s.mask is not None else s.xyz).shape[:2]) for s in samples}
    if len(sizes) != 1:
        raise ValueError(
            f"predict() returns one (N, H, W) map array; the samples' masks have several sizes "
            f"{sorted(sizes)}. Call predict() once per size."
        )
    return sizes.pop()


def reweighted_score(
    distances: torch.Tensor,
    nearest: torch.Tensor,
    patches: torch.Tensor,
    bank: torch.Tensor,
    n_reweight: int = 3,
) -> float:
    """BTF's released image score of one sample (module docstring, step 3). ``distances`` (P,) Euclidean,
    ``nearest`` (P,) bank indices, ``patches`` (P, D)."""
    worst = int(torch.argmax(distances))
    star = distances[worst]
    if n_reweight < 2 or len(bank) < 2:
        return float(star)
    k = min(n_reweight, len(bank))
    _, support = nearest_neighbours(bank[nearest[worst]][None], bank, k=k)
    others = torch.linalg.vector_norm(patches[worst][None] - bank[support[0, 1:]], dim=1)
    scale = float(np.sqrt(patches.shape[1]))
    weight = 1 - torch.exp(star / scale) / torch.exp(others / scale).sum()
    return float(weight * star)


class BTF:
    """PatchCore on 3D patch features of organised clouds (``features`` = "fpfh" or "raw"; see the module
    docstring). Needs ``Sample.xyz``; maps come at the masks' resolution."""

    def __init__(
        self,
        features: str = "fpfh",
        grid: int = 28,
        cloud_size: int = 224,
        voxel_size: float = 0.05,
        masked: bool = True,
        min_valid: float = 0.0,
        raw_layout: str = "strips",
        coreset_ratio: float = 0.1,
        image_score: str = "reweighted",
        n_reweight: int = 3,
        image_size: int = 224,
        sigma: float = 4.0,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        if features not in ("fpfh", "raw"):
            raise ValueError(f"unknown features {features!r}; choose 'fpfh' or 'raw'")
        if raw_layout not in RAW_LAYOUTS:
            raise ValueError(f"unknown raw_layout {raw_layout!r}; choose one of {list(RAW_LAYOUTS)}")
        if image_score not in IMAGE_SCORES:
            raise ValueError(f"unknown image_score {image_score!r}; choose one of {list(IMAGE_SCORES)}")
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if grid < 1 or cloud_size < grid:
            raise ValueError(f"need 1 <= grid <= cloud_size, got grid={grid}, cloud_size={cloud_size}")
        self.features, self.grid, self.cloud_size, self.voxel_size = (
            features,
            int(grid),
            int(cloud_size),
            voxel_size,
        )
        self.masked, self.min_valid, self.raw_layout = bool(masked), float(min_valid), raw_layout
        self.coreset_ratio, self.image_score, self.n_reweight = coreset_ratio, image_score, int(n_reweight)
        self.image_size, self.sigma, self.seed, self.progress = (
            int(image_size),
            float(sigma),
            int(seed),
            progress,
        )
        self.device = resolve_device(device)
        self.memory_bank_: torch.Tensor | None = None

    def patch_features(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(C, grid, grid) features and (grid, grid) valid fractions of one sample."""
        sample.require("xyz")
        return organised_features(
            sample.xyz,
            self.features,
            self.grid,
            self.cloud_size,
            self.voxel_size,
            self.masked,
            self.raw_layout,
            name=sample.meta.get("xyz_path") or sample.path,
        )

    def _extract(self, samples: Sequence[Sample], desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        if len(samples) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one sample")
        for sample in samples:
            sample.require("xyz")
        pairs = [
            self.patch_features(s) for s in tqdm(samples, desc=desc, disable=not self.progress, leave=False)
        ]
        features = torch.from_numpy(np.stack([p[0] for p in pairs]))
        valid = torch.from_numpy(np.stack([p[1] for p in pairs])) > self.min_valid
        return features, valid

    def fit(self, samples: Sequence[Sample]) -> BTF:
        features, valid = self._extract(samples, f"{type(self).__name__} fit")
        patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])[valid.reshape(-1)]
        if len(patches) == 0:
            raise ValueError("no training patch holds a valid point; are the clouds all zeros?")
        keep = coreset_indices(
            patches, self.coreset_ratio, self.seed, progress=self.progress, sampler="greedy"
        )
        self.memory_bank_ = patches[torch.from_numpy(keep)].contiguous().to(self.device)
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.memory_bank_ is None:
            raise NotFittedError(f"{type(self).__name__}.predict() called before fit()")
        features, valid = self._extract(samples, f"{type(self).__name__} predict")
        size = map_size(samples)
        count, dim = features.shape[:2]
        patches = features.permute(0, 2, 3, 1).reshape(count, -1, dim)
        found, nearest = nearest_neighbours(patches.reshape(-1, dim).to(self.device), self.memory_bank_, 1)
        distances = found[:, 0].cpu().reshape(count, -1) * valid.reshape(count, -1)  # invalid patches score 0
        nearest = nearest[:, 0].cpu().reshape(count, -1)
        bank = self.memory_bank_.cpu()
        scores = []
        for index in range(count):
            keep = valid[index].reshape(-1)
            if not keep.any():
                scores.append(0.0)
            elif self.image_score == "max":
                scores.append(float(distances[index, keep].max()))
            else:
                scores.append(
                    reweighted_score(
                        distances[index, keep],
                        nearest[index, keep],
                        patches[index, keep],
                        bank,
                        self.n_reweight,
                    )
                )
        maps = anomaly_maps(distances.reshape(count, self.grid, self.grid), self.image_size, size, self.sigma)
        return Prediction(scores=np.asarray(scores), maps=maps)


class BTFRaw(BTF):
    """BTF with raw coordinates as patch features (``btf_raw``; released ``RawFeatures``)."""

    def __init__(
        self,
        grid: int = 28,
        cloud_size: int = 224,
        raw_layout: str = "strips",
        masked: bool = True,
        min_valid: float = 0.0,
        coreset_ratio: float = 0.1,
        image_score: str = "reweighted",
        n_reweight: int = 3,
        image_size: int = 224,
        sigma: float = 4.0,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        super().__init__(
            "raw",
            grid,
            cloud_size,
            0.05,
            masked,
            min_valid,
            raw_layout,
            coreset_ratio,
            image_score,
            n_reweight,
            image_size,
            sigma,
            seed,
            device,
            progress,
        )


class BTFFPFH(BTF):
    """BTF with FPFH patch features (``btf_fpfh``; released ``FPFHFeatures``)."""

    def __init__(
        self,
        grid: int = 28,
        cloud_size: int = 224,
        voxel_size: float = 0.05,
        masked: bool = True,
        min_valid: float = 0.0,
        coreset_ratio: float = 0.1,
        image_score: str = "reweighted",
        n_reweight: int = 3,
        image_size: int = 224,
        sigma: float = 4.0,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        super().__init__(
            "fpfh",
            grid,
            cloud_size,
            voxel_size,
            masked,
            min_valid,
            "strips",
            coreset_ratio,
            image_score,
            n_reweight,
            image_size,
            sigma,
            seed,
            device,
            progress,
        )
