"""RGB and 3D patch features of RGB-D samples on one shared grid (DESIGN §5: the patch-grid contract).

The RGB side is the frozen backbone of the memory-bank chapter (:class:`PatchFeatureExtractor`: 3×3
neighbourhood mean, deeper stages resized to the first grid, channels concatenated — BTF's and M3DM's
``RGBFeatures``). The 3D side is FPFH pooled onto the same grid (:func:`organised_features`, BTF's
``FPFHFeatures``). A fusion method receives a :class:`PatchGrids` and never needs to know where the grids
came from.

Missing modalities: with ``missing="error"`` (default) a sample without its image or cloud raises the
sample's own error (:meth:`Sample.require`). With ``missing="allow"`` the absent grid is zeros and
``has_rgb`` / ``has_xyz`` say which samples carry what (the missing-modality experiment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor
from uiad_lite.features.point_features import organised_features

MISSING = ("error", "allow")


@dataclass
class PatchGrids:
    """Per-patch features of N samples on one g×g grid.

    rgb (N, C_rgb, g, g) and xyz (N, C_xyz, g, g) float tensors (zeros where a modality is absent);
    valid (N, g, g) bool: the patch pooled at least one 3D point; has_rgb / has_xyz (N,) bool;
    size: the (H, W) of the masks the maps are drawn at."""

    rgb: torch.Tensor
    xyz: torch.Tensor
    valid: torch.Tensor
    has_rgb: torch.Tensor
    has_xyz: torch.Tensor
    size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def grid(self) -> int:
        return int(self.rgb.shape[-1])

    @property
    def layout(self) -> dict[str, int]:
        """What a fitted fusion checks against (:func:`check_layout`)."""
        return {"rgb_channels": int(self.rgb.shape[1]), "xyz_channels": int(self.xyz.shape[1]),
                "grid": self.grid}  # fmt: skip

    def subset(self, index: Sequence[int] | np.ndarray) -> PatchGrids:
        pick = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return PatchGrids(self.rgb[pick], self.xyz[pick], self.valid[pick], self.has_rgb[pick],
                          self.has_xyz[pick], self.size)  # fmt: skip


def check_layout(fitted: dict[str, int] | None, grids: PatchGrids, owner: str) -> None:
    """A clear error when ``grids`` do not have the feature layout ``owner`` was fitted on."""
    if fitted is not None and fitted != grids.layout:
        raise ValueError(
            f"{owner} was fitted on features with layout {fitted} but got {grids.layout}; use the same "
            "backbone, layers, image_size and 3D descriptor at fit and predict time"
        )


def sample_name(sample: Sample, index: int) -> str:
    return sample.path or sample.meta.get("xyz_path") or f"{sample.category}/{sample.split}#{index}"


def check_aligned(sample: Sample, index: int) -> None:
    """RGB and organised cloud must be pixel-aligned: a ValueError naming both shapes otherwise."""
    if sample.image is None or sample.xyz is None:
        return
    image, xyz = np.shape(sample.image), np.shape(sample.xyz)
    if tuple(image[:2]) != tuple(xyz[:2]):
        raise ValueError(
            f"sample {sample_name(sample, index)!r}: the RGB image has shape {image} but the organised "
            f"cloud (xyz) has shape {xyz}; an RGB-D sample needs both on the same H×W pixel grid"
        )


def map_size(samples: Sequence[Sample]) -> tuple[int, int]:
    """The common (H, W) of the masks (else images, else clouds)."""
    sizes = set()
    for sample in samples:
        reference = next((a for a in (sample.mask, sample.image, sample.xyz) if a is not None), None)
        if reference is None:
            raise ValueError(f"sample {sample.path!r} has neither mask, image nor xyz")
        sizes.add(tuple(int(v) for v in np.shape(reference)[:2]))
    if len(sizes) != 1:
        raise ValueError(f"predict() returns one (N, H, W) map array; the samples have sizes {sorted(sizes)}")
    return sizes.pop()


class RGBDFeatures:
    """Samples -> :class:`PatchGrids`: backbone patch features and FPFH pooled to the backbone's grid."""

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 160,
        cloud_size: int = 80,
        voxel_size: float = 0.05,
        device: str = "auto",
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        net = (
            backbone
            if isinstance(backbone, Backbone)
            else build_backbone(backbone, layers, device, pretrained)
        )
        self.extractor = PatchFeatureExtractor(net, image_size, neighbourhood=3, batch_size=batch_size,
                                               progress=progress)  # fmt: skip
        self.grid = int(self.extractor.grid_size[0])
        if cloud_size < self.grid:
            raise ValueError(f"cloud_size={cloud_size} is smaller than the feature grid {self.grid}")
        self.cloud_size, self.voxel_size, self.progress = int(cloud_size), float(voxel_size), progress
        self.device = net.device

    def xyz_grid(self, sample: Sample, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(33, g, g) pooled FPFH and (g, g) valid fractions of one sample."""
        return organised_features(sample.xyz, "fpfh", self.grid, self.cloud_size, self.voxel_size, True,
                                  name=sample_name(sample, index))  # fmt: skip

    def __call__(
        self, samples: Sequence[Sample], missing: str = "error", desc: str = "RGB-D features"
    ) -> PatchGrids:
        if missing not in MISSING:
            raise ValueError(f"unknown missing={missing!r}; choose one of {list(MISSING)}")
        samples = list(samples)
        if not samples:
            raise ValueError("no samples to extract RGB-D features from")
        for index, sample in enumerate(samples):
            if missing == "error":
                sample.require("image", "xyz")
            elif sample.image is None and sample.xyz is None:
                sample.require("image", "xyz")  # an empty sample is an error in every mode
            check_aligned(sample, index)
        grid, count = self.grid, len(samples)
        has_rgb = torch.tensor([s.image is not None for s in samples])
        has_xyz = torch.tensor([s.xyz is not None for s in samples])
        rgb = torch.zeros(count, self.extractor.out_channels, grid, grid)
        if has_rgb.any():
            present = [s for s in samples if s.image is not None]
            rgb[has_rgb] = self.extractor(present, desc=desc).cpu().float()
        xyz = torch.zeros(count, 33, grid, grid)
        valid = torch.zeros(count, grid, grid, dtype=torch.bool)
        bar = tqdm(samples, desc=f"{desc} (FPFH)", disable=not self.progress, leave=False)
        for index, sample in enumerate(bar):
            if sample.xyz is not None:
                features, fraction = self.xyz_grid(sample, index)
                xyz[index], valid[index] = torch.from_numpy(features), torch.from_numpy(fraction > 0)
        return PatchGrids(rgb, xyz, valid, has_rgb, has_xyz, map_size(samples))
