"""Render an unorganised point cloud into 2D views, and carry per-pixel features back to its points.

CPMF (Cao, Xu and Shen 2024, "Complementary Pseudo Multimodal Feature for Point Cloud Anomaly
Detection"; released code github.com/caoyunkang/CPMF, ``utils/render_utils.py``) turns a cloud into a
few images so that a frozen ImageNet CNN can describe it. What the released code does, and what we do:

* **views**: the cloud is rotated about its centre by every combination of x, y, z Euler angles in
  {0, -15°, +15°} (27 views, open3d's ``get_rotation_matrix_from_xyz`` = intrinsic XYZ), in that nested
  order; ``n_views`` keeps the first ones (:func:`released_view_angles`, ``layout="grid"``). Those views
  all look at the object from roughly one side (MVTec 3D-AD scans have one side only); for closed
  objects scanned all round (Real3D-AD) ``layout="sphere"`` spreads the viewing directions evenly over
  the sphere (a Fibonacci lattice), so every side of the object is seen by some view — not released;
* **camera**: released: open3d's ``Visualizer`` (a perspective camera fitted to the bounding box) at
  224×224 px; here an **orthographic** projection after centring the cloud on its mean and scaling its
  largest radius to ``1 - margin`` of half the image, so the scale does not change with the view;
* **z-buffer and splats**: every point is drawn as a disc of ``point_size`` pixels (released: open3d's
  point size) and each pixel shows the nearest disc (largest depth towards the camera);
* **shading**: released ``--color-option UNIFORM``: grey points lit by open3d's default light, i.e.
  shaded by their normal. ``shading="normal"`` is Lambert shading with the light at the camera,
  ``0.2 + 0.8·|n_z|``; ``shading="depth"`` paints the depth instead. Background white, as open3d's;
* **points to pixels**: released ``calculate_points2d`` projects *every* point into every view, occluded
  or not, so a point hidden behind the surface reads the feature of the surface in front of it
  (``visibility="all"``). ``visibility="zbuffer"`` marks a point visible in a view only when its depth is
  within ``depth_tolerance`` of the z-buffer at its pixel, and averages features over those views only
  (a point visible in no view falls back to all views).

Features per point (:func:`point_view_features`): each backbone stage is bilinearly resized to the render
size and read at the point's pixel (released: ``F.interpolate(..., mode="bilinear")`` then indexing; we
sample the same values with ``grid_sample`` at the pixel centre), stages concatenated, then averaged over
views.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

VIEW_LAYOUTS = ("grid", "sphere")
SHADINGS = ("normal", "depth")
VISIBILITIES = ("zbuffer", "all")
RELEASED_ANGLES = (0.0, -np.pi / 12, np.pi / 12)


def rotation_from_xyz(angles: Sequence[float]) -> np.ndarray:
    """3×3 rotation ``Rx(a) @ Ry(b) @ Rz(c)`` (open3d's ``get_rotation_matrix_from_xyz``)."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def released_view_angles() -> list[tuple[float, float, float]]:
    """The 27 (x, y, z) Euler angles of the released renderer, in its nested x, y, z order."""
    return list(itertools.product(RELEASED_ANGLES, RELEASED_ANGLES, RELEASED_ANGLES))


def _rotation_to_camera(direction: np.ndarray) -> np.ndarray:
    """A rotation taking the unit ``direction`` to +z (the camera looks down -z at the object)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def view_rotations(n_views: int, layout: str = "grid") -> np.ndarray:
    """(V, 3, 3) rotations applied to the centred cloud before the orthographic camera (module docstring)."""
    if layout not in VIEW_LAYOUTS:
        raise ValueError(f"unknown view layout {layout!r}; choose one of {list(VIEW_LAYOUTS)}")
    if layout == "grid":
        if not 1 <= n_views <= 27:
            raise ValueError(f"the released view grid has 1 to 27 views, got n_views={n_views}")
        return np.stack([rotation_from_xyz(a) for a in released_view_angles()[:n_views]])
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1, got {n_views}")
    index = np.arange(n_views) + 0.5
    polar, azimuth = np.arccos(1 - 2 * index / n_views), np.pi * (1 + 5**0.5) * index
    directions = np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )
    return np.stack([_rotation_to_camera(d) for d in directions])


@dataclass
class RenderedViews:
    """``images`` (V, S, S, 3) uint8; for each view and point its ``pixels`` (V, N, 2) as (row, col),
    ``depth`` (V, N) towards the camera, ``visible`` (V, N) bool; ``owner`` (V, S, S) the index of the
    point drawn at each pixel (-1: background); ``point_size`` and ``depth_tolerance`` used."""

    images: np.ndarray
    pixels: np.ndarray
    depth: np.ndarray
    visible: np.ndarray
    owner: np.ndarray
    point_size: int
    depth_tolerance: float


def estimate_normals(points: np.ndarray, neighbours: int = 20) -> np.ndarray:
    """(N, 3) unit normals from open3d's PCA of the ``neighbours`` nearest points (sign arbitrary)."""
    from uiad_lite.data.open3d_support import import_open3d

    o3d = import_open3d()
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=neighbours))
    return np.asarray(cloud.normals)


def _spacing(points: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    gaps = cKDTree(points).query(points, k=2)[0][:, 1]
    return float(np.median(gaps[gaps > 0])) if (gaps > 0).any() else 0.0


def render_views(
    points: np.ndarray,
    rotations: np.ndarray,
    size: int = 224,
    point_size: int | str = "auto",
    shading: str = "normal",
    normals: np.ndarray | None = None,
    margin: float = 0.1,
    depth_tolerance: float | str = "auto",
) -> RenderedViews:
    """Orthographic z-buffered renders of ``points`` (N×3) after each rotation (module docstring).

    ``point_size`` "auto": a disc radius of 0.75 × the median point spacing in pixels (at least 1);
    ``depth_tolerance`` "auto": twice the depth a disc of that radius spans at 45°, in scene units."""
    if shading not in SHADINGS:
        raise ValueError(f"unknown shading {shading!r}; choose one of {list(SHADINGS)}")
    points = np.asarray(points, dtype=np.float64)
    centred = points - points.mean(axis=0)
    radius = float(np.linalg.norm(centred, axis=1).max()) or 1.0
    scale = (size / 2) * (1 - margin) / radius  # pixels per scene unit
    if point_size == "auto":
        point_size = max(1, int(np.ceil(0.75 * _spacing(points) * scale)))
    point_size = int(point_size)
    tolerance = 2.0 * (point_size + 1) / scale if depth_tolerance == "auto" else float(depth_tolerance)
    if shading == "normal" and normals is None:
        normals = estimate_normals(points)
    offsets = [
        (dy, dx) for dy in range(-point_size, point_size + 1) for dx in range(-point_size, point_size + 1)
    ]
    offsets = np.array([o for o in offsets if o[0] ** 2 + o[1] ** 2 <= point_size**2])
    count, views = len(points), len(rotations)
    images = np.full((views, size, size, 3), 255, dtype=np.uint8)
    owners = np.full((views, size, size), -1, dtype=np.int64)
    pixels = np.zeros((views, count, 2), dtype=np.int64)
    depths = np.zeros((views, count))
    visible = np.zeros((views, count), dtype=bool)
    for v, rotation in enumerate(rotations):
        turned = centred @ rotation.T
        col = np.clip(np.floor(size / 2 + turned[:, 0] * scale), 0, size - 1).astype(np.int64)
        row = np.clip(np.floor(size / 2 - turned[:, 1] * scale), 0, size - 1).astype(np.int64)
        depth = turned[:, 2]
        # every disc pixel of every point; per pixel the nearest point wins (sort by pixel, then -depth)
        rows = (row[None, :] + offsets[:, :1]).ravel()
        cols = (col[None, :] + offsets[:, 1:]).ravel()
        who = np.tile(np.arange(count), len(offsets))
        inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        flat, who = rows[inside] * size + cols[inside], who[inside]
        order = np.lexsort((-depth[who], flat))
        first = np.unique(flat[order], return_index=True)[1]
        owner = owners[v].reshape(-1)
        owner[flat[order][first]] = who[order][first]
        buffer = np.full(size * size, -np.inf)
        buffer[owner >= 0] = depth[owner[owner >= 0]]
        if shading == "normal":
            shade = 0.2 + 0.8 * np.abs((normals @ rotation.T)[:, 2])
        else:
            span = np.ptp(depth) or 1.0
            shade = 0.2 + 0.8 * (depth - depth.min()) / span
        drawn = owner >= 0
        images[v].reshape(-1, 3)[drawn] = np.round(255 * shade[owner[drawn]])[:, None].astype(np.uint8)
        pixels[v] = np.stack([row, col], axis=1)
        depths[v] = depth
        visible[v] = depth >= buffer[row * size + col] - tolerance
    return RenderedViews(images, pixels, depths, visible, owners, point_size, tolerance)


def point_view_features(
    feature_maps: Sequence[torch.Tensor], views: RenderedViews, visibility: str = "zbuffer"
) -> torch.Tensor:
    """(N, ΣC) per-point features: every stage (V, C, h, w) read bilinearly at each point's pixel centre of
    each view (as resizing the map to the render size and indexing), stages concatenated, then averaged
    over the views where the point is visible (``"zbuffer"``) or over all views (``"all"``, released)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"unknown visibility {visibility!r}; choose one of {list(VISIBILITIES)}")
    size = views.images.shape[1]
    pixels = torch.from_numpy(views.pixels).float()
    grid = torch.stack([pixels[..., 1], pixels[..., 0]], dim=-1).add(0.5).mul(2.0 / size).sub(1.0)
    grid = grid[:, None]  # (V, 1, N, 2) as (x, y) in [-1, 1]
    sampled = [
        F.grid_sample(stage.float().cpu(), grid, mode="bilinear", align_corners=False)[:, :, 0]
        for stage in feature_maps
    ]
    per_view = torch.cat(sampled, dim=1).permute(0, 2, 1)  # (V, N, C)
    weight = torch.ones(per_view.shape[:2])
    if visibility == "zbuffer":
        seen = torch.from_numpy(views.visible).float()
        weight = torch.where(seen.sum(dim=0, keepdim=True) > 0, seen, weight)  # seen nowhere: all views
    return (per_view * weight[..., None]).sum(dim=0) / weight.sum(dim=0)[:, None]
