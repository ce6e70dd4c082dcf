"""Point-cloud anomaly simulation: R3D-AD bulges/sinks and Group3AD-style noisy patches.

R3D-AD (Zhou et al. 2024, "Patch-Gen") picks a random viewpoint around the object, takes the
points closest to it as a local surface patch and moves them to form a bulge or a sink. Group3AD
(Zhu et al. 2024) perturbs the points of a local neighbourhood with normally distributed noise.
Both return ``(altered_points, labels)``: labels (N bool) are True exactly on the points whose
coordinates changed; every other point is bit-identical. R3D-AD's random rotation of the whole
cloud is a training augmentation, not part of the defect, and is left to the caller.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial import cKDTree


def _check_points(points: np.ndarray, n_affected: int) -> None:
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[1] != 3:
        shape = getattr(points, "shape", type(points).__name__)
        raise ValueError(f"points must be an N x 3 numpy array, got {shape}")
    if not np.issubdtype(points.dtype, np.floating):
        raise ValueError(f"points must be floating point, got {points.dtype}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinite coordinates")
    if int(n_affected) != n_affected or n_affected < 1:
        raise ValueError(f"n_affected must be a positive integer, got {n_affected!r}")
    if n_affected >= len(points):
        raise ValueError(f"n_affected ({n_affected}) must be smaller than the number of points "
                         f"({len(points)}): the defect is a local patch, so one point at least must stay put")


def _local_patch(points: np.ndarray, centre: int, n_affected: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Indices and distances of the ``n_affected`` nearest neighbours of ``points[centre]`` (itself
    included), and the distance of the first point left out: the patch's outer radius."""
    distances, indices = cKDTree(points).query(points[centre], k=n_affected + 1)
    outer = float(distances[-1])
    if outer <= 0.0:
        raise ValueError(f"more than {n_affected} points coincide with the patch centre; "
                         "remove duplicate points or raise n_affected")
    return indices[:-1], distances[:-1], outer


def _labels(altered: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (altered != points).any(axis=1)


def point_bulge(
    points: np.ndarray,
    rng: np.random.Generator,
    n_affected: int = 64,
    magnitude: float | None = None,
    direction: Literal["out", "in"] = "out",
    push: Literal["viewpoint", "normal"] = "viewpoint",
) -> tuple[np.ndarray, np.ndarray]:
    """R3D-AD Patch-Gen style bulge ("out") or sink ("in") on an N x 3 cloud.

    A viewpoint is drawn on a sphere of twice the cloud's radius around its centroid; the cloud point
    nearest to it is the anchor and its ``n_affected`` nearest neighbours form the patch. Point i moves
    by ``magnitude * (1 - (r_i / R)^2)^2``, where r_i is its distance to the anchor and R the distance
    of the nearest point outside the patch, so the push is largest at the anchor and fades to zero at
    the patch rim; ``magnitude`` None = 0.25 R. ``push`` = "viewpoint" (R3D-AD) moves each point along
    its own line to the viewpoint (towards it for a bulge, away for a sink); "normal" moves the whole
    patch along its normal (smallest principal axis of its points, turned towards the viewpoint), a
    smoother dome on flat surfaces.
    """
    _check_points(points, n_affected)
    if direction not in ("out", "in"):
        raise ValueError(f"direction must be 'out' or 'in', got {direction!r}")
    if push not in ("viewpoint", "normal"):
        raise ValueError(f"push must be 'viewpoint' or 'normal', got {push!r}")
    if magnitude is not None and not magnitude > 0:
        raise ValueError(f"magnitude must be positive, got {magnitude!r}")
    coords = points.astype(np.float64)
    centroid = coords.mean(axis=0)
    cloud_radius = float(np.linalg.norm(coords - centroid, axis=1).max())
    if cloud_radius == 0.0:
        raise ValueError("all points coincide; a bulge needs a cloud with extent")
    unit = rng.normal(size=3)
    viewpoint = centroid + 2.0 * cloud_radius * unit / np.linalg.norm(unit)
    anchor = int(np.argmin(np.linalg.norm(coords - viewpoint, axis=1)))
    indices, distances, outer = _local_patch(coords, anchor, int(n_affected))

    patch = coords[indices]
    towards_view = viewpoint - coords[anchor]
    if push == "viewpoint":
        directions = viewpoint - patch  # the viewpoint lies outside the cloud, never on a point
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    else:
        if len(patch) >= 3:
            _, _, axes = np.linalg.svd(patch - patch.mean(axis=0), full_matrices=False)
            normal = axes[-1]
        else:
            normal = towards_view
        normal = normal / np.linalg.norm(normal)
        directions = np.broadcast_to(normal if normal @ towards_view >= 0 else -normal, patch.shape)
    if direction == "in":
        directions = -directions

    peak = 0.25 * outer if magnitude is None else float(magnitude)
    weights = (1.0 - (distances / outer) ** 2) ** 2
    altered = points.copy()
    altered[indices] = (patch + peak * weights[:, None] * directions).astype(points.dtype)
    return altered, _labels(altered, points)


def point_noise_patch(
    points: np.ndarray,
    rng: np.random.Generator,
    n_affected: int = 64,
    sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group3AD-style local noise: a random centre point and its ``n_affected`` nearest neighbours
    (itself included) get i.i.d. N(0, sigma^2) offsets on x, y and z. ``sigma`` None = 0.1 x the patch
    radius (distance to the nearest point outside it). Group3AD centres on the points with the
    largest FPFH response; a uniformly random centre keeps this dependency-free."""
    _check_points(points, n_affected)
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    coords = points.astype(np.float64)
    centre = int(rng.integers(len(points)))
    indices, _, outer = _local_patch(coords, centre, int(n_affected))
    scale = 0.1 * outer if sigma is None else float(sigma)
    altered = points.copy()
    offsets = rng.normal(0.0, scale, size=(len(indices), 3))
    altered[indices] = (coords[indices] + offsets).astype(points.dtype)
    return altered, _labels(altered, points)
