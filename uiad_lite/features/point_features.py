"""3D descriptors with the 2D backbones' patch-grid contract: raw xyz patches and FPFH.

Organised clouds (``Sample.xyz``, H×W×3, zeros = no point; MVTec 3D-AD) become (C, g, g) feature grids,
the same shape a 2D backbone's first stage gives, so a fusion method can stack the two. We follow what
Back to the Feature (BTF; Horwitz & Hoshen 2023, github.com/eliahuhorwitz/3D-ADS,
``feature_extractors/fpfh_features.py`` and ``raw_features.py``) does, in our own code:

* the cloud is resized to ``cloud_size``×``cloud_size`` by nearest-neighbour sampling (released: 224);
* a pixel carries a point when all three coordinates are non-zero;
* FPFH (Rusu et al. 2009) via open3d on the valid points only: normals from a hybrid search of radius
  2·``voxel_size`` and at most 30 neighbours, the 33-bin histogram from radius 5·``voxel_size`` and at
  most 100 neighbours, ``voxel_size`` = 0.05 m as released (the cloud is *not* voxel-downsampled;
  with these radii the neighbour caps are what bind). Invalid pixels get a zero descriptor;
* a 3×3 average (stride 1, no padding) and an adaptive average down to ``grid``×``grid`` (released: 28,
  the grid of WideResNet-50's second stage at 224 px).

``masked=True`` (our default) divides each pooled value by the pooled fraction of valid pixels, so the
zero descriptors of missing points never pull a patch towards zero; ``masked=False`` is the released
plain average. Every grid cell also reports the fraction of valid pixels it pooled (``weights``).

Raw patches: the released ``RawFeatures`` takes the depth (z) channel of the 224×224 cloud and reshapes
it row-major into 28×28×64, so each "patch" is a run of 64 consecutive pixels of one raster row
(``raw_layout="strips"``); ``raw_layout="cells"`` takes the x, y, z of the square cell instead, with
missing points filled by the mean of the cell's valid ones.

Unorganised clouds (``Sample.points``; Real3D-AD): :func:`point_fpfh` gives one FPFH per point, or per
point of a voxel-downsampled cloud with ``owner`` mapping every original point to its nearest kept point
(so scores can be carried back to every point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from uiad_lite.data.open3d_support import import_open3d

MIN_POINTS = 16
RAW_LAYOUTS = ("strips", "cells")


def _name(name: str | None) -> str:
    return repr(name) if name else "the point cloud"


def check_points(points: np.ndarray, name: str | None = None, min_points: int = MIN_POINTS) -> np.ndarray:
    """An N×3 float64 copy of ``points``; a clear ValueError (naming the file) for NaN/inf, a wrong shape,
    an all-zero cloud or fewer than ``min_points`` points."""
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{_name(name)}: expected an N×3 array of points, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(f"{_name(name)}: {bad} point(s) have NaN or infinite coordinates")
    present = int(np.any(array != 0, axis=1).sum())
    if present == 0:
        raise ValueError(f"{_name(name)}: the cloud is empty or all zeros (no point to describe)")
    if len(array) < min_points:
        raise ValueError(f"{_name(name)}: only {len(array)} points; at least {min_points} are needed")
    return array.astype(np.float64)


def check_organised(xyz: np.ndarray, name: str | None = None, min_points: int = MIN_POINTS) -> np.ndarray:
    """``xyz`` as H×W×3 float32 after the same checks on its valid (all non-zero) points."""
    array = np.asarray(xyz)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{_name(name)}: expected an organised H×W×3 cloud, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=2).sum())
        raise ValueError(f"{_name(name)}: {bad} pixel(s) have NaN or infinite coordinates")
    valid = int(valid_pixels(array).sum())
    if valid == 0:
        raise ValueError(f"{_name(name)}: the organised cloud is all zeros (no valid point)")
    if valid < min_points:
        raise ValueError(f"{_name(name)}: only {valid} valid points; at least {min_points} are needed")
    return array.astype(np.float32)


def valid_pixels(xyz: np.ndarray) -> np.ndarray:
    """H×W bool: pixels carrying a point (released rule: all three coordinates non-zero)."""
    return np.all(xyz != 0, axis=-1)


def resize_organised(xyz: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of an organised cloud to size×size (torch ``interpolate(mode='nearest')``,
    as the released loader does), so missing points stay missing."""
    if xyz.shape[:2] == (size, size):
        return xyz
    tensor = torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(tensor, size=(size, size), mode="nearest")[0].permute(1, 2, 0).numpy()


def fpfh(
    points: np.ndarray, voxel_size: float, normal_max_nn: int = 30, feature_max_nn: int = 100, cloud=None
) -> np.ndarray:
    """N×33 FPFH of ``points`` with open3d: normals within 2·voxel_size (≤ ``normal_max_nn`` neighbours),
    histograms within 5·voxel_size (≤ ``feature_max_nn``). No downsampling."""
    o3d = import_open3d()
    if cloud is None:
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    search = o3d.geometry.KDTreeSearchParamHybrid
    cloud.estimate_normals(search(radius=2 * voxel_size, max_nn=normal_max_nn))
    feature = o3d.pipelines.registration.compute_fpfh_feature(
        cloud, search(radius=5 * voxel_size, max_nn=feature_max_nn)
    )
    return np.asarray(feature.data, dtype=np.float32).T.copy()


def organised_fpfh(xyz: np.ndarray, voxel_size: float = 0.05, cloud_size: int | None = 224) -> np.ndarray:
    """(S, S, 33) FPFH image of an organised cloud (after the nearest resize to ``cloud_size``), zeros at
    pixels without a point."""
    if cloud_size:
        xyz = resize_organised(xyz, cloud_size)
    valid = valid_pixels(xyz)
    out = np.zeros((*xyz.shape[:2], 33), dtype=np.float32)
    if valid.sum() >= 2:
        out[valid] = fpfh(xyz[valid], voxel_size)
    return out


def pool_to_grid(
    feature_image: np.ndarray, valid: np.ndarray, grid: int, masked: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """BTF's pooling of an (S, S, C) descriptor image: 3×3 mean (stride 1, no padding), then adaptive mean
    to grid×grid. Returns (C, grid, grid) features and (grid, grid) valid fractions. ``masked`` averages
    over valid pixels only (see the module docstring)."""
    features = torch.from_numpy(np.ascontiguousarray(feature_image, dtype=np.float32)).permute(2, 0, 1)[None]
    weight = torch.from_numpy(valid.astype(np.float32))[None, None]
    pooled = F.adaptive_avg_pool2d(F.avg_pool2d(features * weight, 3, stride=1), grid)[0]
    fraction = F.adaptive_avg_pool2d(F.avg_pool2d(weight, 3, stride=1), grid)[0, 0]
    if masked:
        pooled = torch.where(fraction > 0, pooled / fraction.clamp_min(1e-12), torch.zeros_like(pooled))
    return pooled.numpy(), fraction.numpy()


def raw_patches(
    xyz: np.ndarray, grid: int, cloud_size: int | None = 224, layout: str = "strips"
) -> tuple[np.ndarray, np.ndarray]:
    """Raw coordinates as (C, grid, grid) patch features plus (grid, grid) valid fractions.

    ``"strips"`` (released): z of the resized cloud, reshaped row-major to (grid, grid, S²/grid²).
    ``"cells"``: x, y, z of each square (S/grid)² cell, missing points set to the cell's valid mean."""
    if layout not in RAW_LAYOUTS:
        raise ValueError(f"unknown raw layout {layout!r}; choose one of {list(RAW_LAYOUTS)}")
    if cloud_size:
        xyz = resize_organised(xyz, cloud_size)
    size = xyz.shape[0]
    if xyz.shape[0] != xyz.shape[1] or size % grid:
        raise ValueError(
            f"raw patches need a square cloud whose side ({xyz.shape[:2]}) is a multiple of "
            f"grid={grid}; choose cloud_size accordingly"
        )
    valid = valid_pixels(xyz)
    if layout == "strips":
        features = xyz[..., 2].reshape(grid, grid, -1).transpose(2, 0, 1)
        fraction = valid.reshape(grid, grid, -1).mean(axis=2)
        return features.astype(np.float32), fraction.astype(np.float32)
    step = size // grid
    cells = (
        xyz.reshape(grid, step, grid, step, 3).transpose(0, 2, 1, 3, 4).reshape(grid, grid, step * step, 3)
    )
    cell_valid = valid.reshape(grid, step, grid, step).transpose(0, 2, 1, 3).reshape(grid, grid, step * step)
    count = cell_valid.sum(axis=2, keepdims=True)
    mean = (cells * cell_valid[..., None]).sum(axis=2) / np.maximum(count, 1)
    filled = np.where(cell_valid[..., None], cells, mean[:, :, None, :])
    features = filled.reshape(grid, grid, -1).transpose(2, 0, 1)
    return features.astype(np.float32), cell_valid.mean(axis=2).astype(np.float32)


def organised_features(
    xyz: np.ndarray,
    kind: str,
    grid: int = 28,
    cloud_size: int | None = 224,
    voxel_size: float = 0.05,
    masked: bool = True,
    raw_layout: str = "strips",
    name: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(C, grid, grid) ``kind`` = "fpfh" or "raw" features of an organised cloud and (grid, grid) valid
    fractions; the checks of :func:`check_organised` first."""
    xyz = check_organised(xyz, name)
    if kind == "raw":
        return raw_patches(xyz, grid, cloud_size, raw_layout)
    if kind != "fpfh":
        raise ValueError(f"unknown 3D feature kind {kind!r}; choose 'raw' or 'fpfh'")
    resized = resize_organised(xyz, cloud_size) if cloud_size else xyz
    return pool_to_grid(organised_fpfh(resized, voxel_size, None), valid_pixels(resized), grid, masked)


@dataclass
class PointDescriptors:
    """Descriptors of an unorganised cloud: ``points`` (M×3) and ``features`` (M×33) of the points that were
    described, and ``owner`` (N,) giving, for every original point, the row that describes it."""

    points: np.ndarray
    features: np.ndarray
    owner: np.ndarray


def point_fpfh(
    points: np.ndarray, voxel_size: float, downsample: float | None = None, name: str | None = None
) -> PointDescriptors:
    """FPFH per point (radii 2·/5·``voxel_size``), or per point of the cloud voxel-downsampled at
    ``downsample`` with every original point owned by its nearest kept point."""
    points = check_points(points, name)
    o3d = import_open3d()
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if downsample:
        cloud = cloud.voxel_down_sample(downsample)
        kept = np.asarray(cloud.points)
        from scipy.spatial import cKDTree

        owner = cKDTree(kept).query(points, k=1)[1].astype(np.int64)
    else:
        kept, owner = points, np.arange(len(points), dtype=np.int64)
    return PointDescriptors(kept.astype(np.float32), fpfh(kept, voxel_size, cloud=cloud), owner)
