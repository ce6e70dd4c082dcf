"""RGB-D scenes of the synthetic benchmark, written in the MVTec 3D-AD format.

Each sample is an RGB image and an organised point cloud (x, y, z in metres per pixel, zeros =
no measurement). The defect types are chosen to show why the survey argues for multimodal
inspection (its cookie example, after MVTec 3D-AD): a *dent* or *bump* changes only the geometry
and is invisible in RGB; a *stain* changes only the colour; a *hole* changes both, and in RGB it
looks much like a stain. Missing points appear at the image borders and along silhouettes, as
with a real structured-light sensor.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from uiad_lite.data.synthetic_defects import draw_radius, ellipse_mask, grid, pick_center, smooth_noise
from uiad_lite.data.synthetic_images import photometric_jitter, to_uint8

FIELD_OF_VIEW = 0.067  # metres seen across the image
CAMERA_DISTANCE = 0.25  # metres from the sensor to the table
DEFECTS = {"cookie": ("dent", "bump", "stain", "hole"), "tablet": ("dent", "bump", "stain", "hole")}
CHANGES = {"dent": ("xyz",), "bump": ("xyz",), "stain": ("rgb",), "hole": ("rgb", "xyz")}


def render_object(
    category: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb float32, height above the table in metres, foreground mask) of one normal object."""
    rows, cols = grid((size, size))
    cy, cx = size / 2 + rng.normal(0, size * 0.015, size=2)
    bumps = smooth_noise((size, size), 10, rng)
    if category == "cookie":
        radius = size * rng.uniform(0.32, 0.35)
        r = np.hypot(rows - cy, cols - cx) / radius
        foreground = r <= 1.0
        height = np.where(foreground, 0.006 * np.sqrt(np.clip(1 - r**4, 0, 1)) * (1 + 0.05 * bumps), 0.0)
        dough = np.array([190, 135, 70], dtype=np.float32)
        rim = np.clip((r - 0.75) / 0.25, 0, 1)[..., None]
        freckles = ndimage.uniform_filter(rng.standard_normal((size, size), dtype=np.float32), 3) * 1.5
        colour = dough * (1 - 0.35 * rim) * (1 + 0.12 * freckles[..., None])
    elif category == "tablet":
        angle = rng.uniform(-0.25, 0.25)
        u = (cols - cx) * np.cos(angle) + (rows - cy) * np.sin(angle)
        v = -(cols - cx) * np.sin(angle) + (rows - cy) * np.cos(angle)
        half_u, half_v, corner = size * 0.3, size * 0.2, size * 0.06
        du, dv = np.maximum(np.abs(u) - (half_u - corner), 0), np.maximum(np.abs(v) - (half_v - corner), 0)
        edge_distance = corner - np.hypot(du, dv)  # > 0 inside the rounded rectangle
        foreground = edge_distance > 0
        bevel = np.clip(edge_distance / (size * 0.04), 0, 1)
        height = np.where(foreground, 0.004 * np.sqrt(bevel) * (1 + 0.04 * bumps), 0.0)
        colour = np.array([200, 210, 225], dtype=np.float32) * (0.85 + 0.15 * bevel[..., None])
    else:
        raise ValueError(f"unknown synthetic RGB-D category {category!r}; known: {sorted(DEFECTS)}")
    table = np.array([60, 58, 55], dtype=np.float32) + 5 * rng.standard_normal(
        (size, size, 1), dtype=np.float32
    )
    rgb = np.where(foreground[..., None], colour, table)
    return photometric_jitter(rgb, rng, noise=2.5), height.astype(np.float64), foreground


def valid_points(foreground: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Where the simulated sensor returns a point: not in dropped border strips or silhouette gaps."""
    size = foreground.shape[0]
    valid = np.ones_like(foreground)
    for side in range(4):
        if rng.random() < 0.6:
            width = int(rng.integers(1, max(2, size // 35)))
            strip = (
                (slice(0, width), slice(None))
                if side == 0
                else (slice(size - width, None), slice(None))
                if side == 1
                else (slice(None), slice(0, width))
                if side == 2
                else (slice(None), slice(size - width, None))
            )
            valid[strip] = False
    silhouette = ndimage.binary_dilation(foreground, iterations=2) & ~ndimage.binary_erosion(
        foreground, iterations=1
    )
    valid &= ~(silhouette & (rng.random(foreground.shape) < 0.5))
    valid &= rng.random(foreground.shape) > 0.002
    return valid


def to_xyz(height: np.ndarray, valid: np.ndarray, tilt: np.ndarray, noise: np.ndarray) -> np.ndarray:
    size = height.shape[0]
    pitch = FIELD_OF_VIEW / size
    rows, cols = grid((size, size))
    x, y = (cols - size / 2) * pitch, (rows - size / 2) * pitch
    z = CAMERA_DISTANCE + tilt[0] * x + tilt[1] * y - height + noise
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    xyz[~valid] = 0.0
    return xyz


def add_geometric_defect(
    height: np.ndarray, foreground: np.ndarray, defect: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Dent (down), bump (up) or hole (to the table): returns (new height, disc mask)."""
    size = height.shape[0]
    radius = draw_radius(rng, size, 0.03, 0.09) if defect != "hole" else draw_radius(rng, size, 0.025, 0.07)
    center = pick_center(rng, foreground, radius + 2)
    rows, cols = grid(height.shape)
    distance = np.hypot(rows - center[0], cols - center[1]) / radius
    mask = (distance < 1.0) & foreground
    changed = height.copy()
    if defect == "hole":
        changed[mask] = 0.0
    else:
        amplitude = rng.uniform(0.0004, 0.0015) * (1 if defect == "bump" else -1)
        # the profile keeps 5 % of its depth at the rim so every masked point really moves
        changed[mask] += amplitude * np.maximum(1 - distance[mask] ** 2, 0.05)
    return changed, mask


def add_stain(
    rgb: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A dark chocolate-brown stain (colour only)."""
    size = rgb.shape[0]
    radius = draw_radius(rng, size, 0.025, 0.08)
    center = pick_center(rng, foreground, radius + 2)
    mask = ellipse_mask(
        rgb.shape[:2], center, (radius, radius * rng.uniform(0.6, 1.0)), rng.uniform(0, np.pi)
    )
    mask &= foreground
    alpha = rng.uniform(0.55, 0.9)
    colour = np.array([55, 32, 20], dtype=np.float32)
    painted = rgb.copy()
    painted[mask] = (1 - alpha) * rgb[mask] + alpha * colour
    return painted, mask


def make_rgbd_sample(
    category: str, defect: str, size: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """clean/defective rgb (uint8) and xyz (float32), and the mask of everything that changed."""
    rgb, height, foreground = render_object(category, size, rng)
    valid = valid_points(foreground, rng)
    tilt = rng.normal(0, 0.02, size=2)
    noise = rng.normal(0, 2e-5, size=height.shape)
    clean_xyz = to_xyz(height, valid, tilt, noise)
    defective_rgb, defective_height = rgb, height
    mask = np.zeros((size, size), dtype=bool)
    if defect in ("dent", "bump", "hole"):
        defective_height, mask = add_geometric_defect(height, foreground, defect, rng)
    if defect == "hole":
        defective_rgb = rgb.copy()
        shadow = 0.25 + 0.2 * rng.random((size, size)).astype(np.float32)
        defective_rgb[mask] = (np.array([60, 40, 28], dtype=np.float32) * shadow[..., None])[mask] + 20
    if defect == "stain":
        defective_rgb, mask = add_stain(rgb, foreground, rng)
    if defect not in CHANGES and defect != "good":
        raise ValueError(f"unknown RGB-D defect {defect!r}; known: {sorted(CHANGES)}")
    clean_rgb_u8, defective_rgb_u8 = to_uint8(rgb), to_uint8(defective_rgb)
    if "rgb" in CHANGES.get(defect, ()):  # every masked pixel must change visibly
        same = mask & ((clean_rgb_u8.astype(int) - defective_rgb_u8).__abs__().max(axis=-1) < 2)
        defective_rgb_u8[same, 0] = np.where(
            clean_rgb_u8[same, 0] > 127, clean_rgb_u8[same, 0] - 4, clean_rgb_u8[same, 0] + 4
        )
    return {
        "clean_rgb": clean_rgb_u8,
        "clean_xyz": clean_xyz,
        "rgb": defective_rgb_u8,
        "xyz": to_xyz(defective_height, valid, tilt, noise),
        "mask": mask,
        "valid": valid,
    }
