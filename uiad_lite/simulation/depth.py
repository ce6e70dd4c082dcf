"""Depth-level anomaly simulation: smooth Perlin-shaped bumps and dents (3DRÆM / 3DSR style).

3DSR (Zavrtanik et al. 2024a, "Cheating Depth") and 3DRÆM (Zavrtanik et al. 2024b, "Keep DRÆMing")
draw anomaly regions with Perlin noise and displace the depth inside them; 3DRÆM smooths the
simulated depth so the change is locally consistent. Here the region is thresholded Perlin noise
(as in DRÆM), and the displacement along z is
``sign * magnitude * smoothstep(min(d / rim_width, 1))``, with ``d`` the Euclidean distance (in
pixels) to the nearest pixel outside the region, applied to the valid points only (missing points
inside the region stay missing and do not bend the rim): a raised or sunk plateau whose rim rises
smoothly from almost zero at the outline, so the surface bends instead of stepping. Regions
narrower than two rims become domes. Each connected region gets its own sign when
``direction="random"``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from uiad_lite.simulation.perlin import random_perlin_field

Direction = Literal["out", "in", "random"]


def _depth_channel(xyz_or_depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z view, valid mask) for an H x W depth image or an H x W x 3 organised point cloud."""
    data = xyz_or_depth
    if not isinstance(data, np.ndarray) or not np.issubdtype(data.dtype, np.floating):
        raise ValueError("xyz_or_depth must be a floating-point numpy array (H x W depth or H x W x 3 xyz)")
    if data.ndim == 2:
        z, valid = data, data != 0
    elif data.ndim == 3 and data.shape[2] == 3:
        z, valid = data[..., 2], (data != 0).any(axis=-1)
    else:
        raise ValueError(f"xyz_or_depth must have shape H x W or H x W x 3, got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("xyz_or_depth contains NaN or infinite values; mark missing points with zeros")
    if not valid.any():
        raise ValueError("xyz_or_depth has no valid point (all zeros = all missing); nothing to deform")
    return z, valid


def depth_bump(
    xyz_or_depth: np.ndarray,
    rng: np.random.Generator,
    magnitude: float | tuple[float, float] | None = None,
    direction: Direction = "random",
    threshold: float = 0.4,
    scale_exponents: tuple[int, int] = (1, 4),
    rim_width: float = 6.0,
    foreground: np.ndarray | None = None,
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Perlin-masked smooth bump ("out", towards the sensor: z decreases) or dent ("in": z increases)
    on the valid points of a depth image or organised xyz map (zeros = missing, MVTec 3D-AD style).

    magnitude  plateau height |dz| in the map's units (reached ``rim_width`` pixels inside the
               outline), or a (low, high) range to draw from; None uses 1 % of the median |z| of
               the valid points.
    threshold  on the [-1, 1] Perlin noise; higher = smaller regions.
    rim_width  width in pixels of the smooth rim between the untouched surface and the plateau.
    foreground optional H x W bool mask (e.g. the object without its supporting plane); the defect
               and its rim stay inside it.
    Only z changes, only on valid points; missing points stay exactly zero. Returns
    ``(altered, mask)``: mask (H x W bool) is True exactly where z changed.
    """
    z, valid = _depth_channel(xyz_or_depth)
    if direction not in ("out", "in", "random"):
        raise ValueError(f"direction must be 'out', 'in' or 'random', got {direction!r}")
    if not -1.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [-1, 1), got {threshold!r}")
    if not rim_width > 0:
        raise ValueError(f"rim_width must be positive (pixels), got {rim_width!r}")
    if foreground is not None:
        foreground = np.asarray(foreground)
        if foreground.shape != z.shape or foreground.dtype != bool:
            raise ValueError(f"foreground must be an H x W bool mask of shape {z.shape}, "
                             f"got {foreground.dtype} {foreground.shape}")
        if not (foreground & valid).any():
            raise ValueError("foreground holds no valid point; nothing to deform")
    if magnitude is None:
        peak = 0.01 * float(np.median(np.abs(z[valid])))
    elif np.ndim(magnitude) == 0:
        peak = float(magnitude)
    else:
        low, high = float(magnitude[0]), float(magnitude[1])
        if not 0.0 < low <= high:
            raise ValueError(f"magnitude range must satisfy 0 < low <= high, got {magnitude!r}")
        peak = float(rng.uniform(low, high))
    if not peak > 0.0:
        raise ValueError(f"magnitude must be positive, got {magnitude!r} (median valid |z| is 0?)")

    for _ in range(max_attempts):
        noise = random_perlin_field(z.shape, rng, scale_exponents)
        defect = noise > threshold  # the geometric defect; missing points inside it stay missing
        if foreground is not None:
            defect &= foreground
        region = defect & valid
        if not region.any():
            continue
        ramp = np.minimum(ndimage.distance_transform_edt(defect) / rim_width, 1.0)
        profile = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: zero slope at the outline and plateau
        components, count = ndimage.label(defect)
        if direction == "random":
            signs = rng.choice([-1.0, 1.0], size=count + 1)
        else:
            signs = np.full(count + 1, -1.0 if direction == "out" else 1.0)
        signs[0] = 0.0  # label 0 is outside every region
        shift = signs[components] * peak * profile

        new_z = (z.astype(np.float64) + shift).astype(z.dtype)
        if np.all(z[valid] > 0) and np.any(new_z[region] <= 0):
            raise ValueError(f"magnitude {peak:g} pushes some depths to or below zero; lower it")
        altered = xyz_or_depth.copy()
        if altered.ndim == 2:
            if np.any(new_z[region] == 0):
                raise ValueError("the displacement turned a valid depth into 0, i.e. missing")
            altered[region] = new_z[region]
        else:
            altered[..., 2][region] = new_z[region]
            if not (altered[region] != 0).any(axis=-1).all():
                raise ValueError("the displacement turned a valid point into (0, 0, 0), i.e. missing")
        mask = (altered != xyz_or_depth).reshape(z.shape + (-1,)).any(axis=-1)
        if mask.any():
            return altered, mask
    raise ValueError(f"depth_bump changed no valid point in {max_attempts} attempts; lower threshold "
                     f"(now {threshold}) or check that the map has enough valid points")
