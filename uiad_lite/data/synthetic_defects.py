"""Defect painters for the synthetic benchmark: each returns the changed image AND its exact mask.

A painter only touches pixels inside the mask it returns, and `ensure_changed` nudges any masked
pixel that a subtle paint happened to leave equal, so that for every synthetic sample
``mask == (defective != clean).any(axis=-1)`` holds exactly (tested). Sizes are drawn with a
bias towards small defects (`draw_radius`), and intensities towards subtle ones, so the benchmark
is not trivially solved.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import line as draw_line

PALETTE = {  # contamination colours (RGB): oil, rust, paint, grease
    "oil": (25, 22, 20),
    "rust": (150, 70, 30),
    "green_paint": (40, 140, 60),
    "blue_ink": (40, 60, 170),
    "grease": (205, 195, 150),
}


def grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return rows.astype(np.float32), cols.astype(np.float32)


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-peak smooth noise: a `cells`×`cells` random grid upsampled bicubically."""
    from PIL import Image

    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    fine = np.asarray(Image.fromarray(coarse, mode="F").resize((shape[1], shape[0]), Image.BICUBIC))
    return fine / (np.abs(fine).max() + 1e-9)


def draw_radius(rng: np.random.Generator, size: int, low: float, high: float) -> float:
    """A radius in [low, high]·size, slightly skewed towards small ones (u^1.2 scaling)."""
    return float(size * (low + (high - low) * rng.random() ** 1.2))


def pick_center(rng: np.random.Generator, allowed: np.ndarray, margin: float) -> tuple[float, float]:
    """A random pixel of `allowed` at least `margin` pixels inside its border."""
    inner = ndimage.binary_erosion(allowed, iterations=max(1, int(margin))) if margin >= 1 else allowed
    candidates = np.argwhere(inner if inner.any() else allowed)
    row, col = candidates[rng.integers(len(candidates))]
    return float(row), float(col)


def ellipse_mask(
    shape: tuple[int, int], center: tuple[float, float], radii: tuple[float, float], angle: float
) -> np.ndarray:
    rows, cols = grid(shape)
    dy, dx = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (dx * cos + dy * sin) / max(radii[1], 0.5), (-dx * sin + dy * cos) / max(radii[0], 0.5)
    return u * u + v * v <= 1.0


def polyline_mask(shape: tuple[int, int], points: np.ndarray, width: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:], strict=False):
        rr, cc = draw_line(int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))
        keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        mask[rr[keep], cc[keep]] = True
    if width > 1:
        mask = ndimage.binary_dilation(mask, iterations=width // 2)
    return mask


def ensure_changed(original: np.ndarray, painted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Make every masked pixel differ from the original by at least 3 grey levels in one channel."""
    same = mask & (np.abs(painted - original).max(axis=-1) < 3)
    if same.any():
        red = painted[..., 0]
        red[same] = np.where(original[same, 0] > 127, original[same, 0] - 6, original[same, 0] + 6)
    return painted


def scratch(
    image: np.ndarray,
    allowed: np.ndarray,
    rng: np.random.Generator,
    *,
    widths: tuple[int, int] = (2, 5),
    tint: tuple[int, int, int] | None = None,
    opacity: tuple[float, float] = (0.55, 0.85),
) -> tuple[np.ndarray, np.ndarray]:
    """A polyline (a scratch), 3-5 px wide by default (`widths` bounds the `rng.integers` draw fed to
    `polyline_mask`): brighter or darker by 45-100 grey levels, or, with `tint`, blended towards that
    RGB colour (opacity drawn from `opacity`), for textures whose own streaks hide a grey scratch."""
    size = image.shape[0]
    start = np.array(pick_center(rng, allowed, 3))
    length = draw_radius(rng, size, 0.1, 0.4)
    heading = rng.uniform(0, 2 * np.pi)
    points = [start]
    for _ in range(rng.integers(2, 5)):
        heading += rng.normal(0, 0.25)
        points.append(points[-1] + length / 3 * np.array([np.sin(heading), np.cos(heading)]))
    mask = polyline_mask(image.shape[:2], np.array(points), int(rng.integers(*widths))) & allowed
    painted = image.copy()
    if tint is None:
        delta = rng.uniform(45, 100) * rng.choice([-1.0, 1.0])
        painted[mask] = np.clip(painted[mask] + delta * rng.uniform(0.7, 1.0, size=(mask.sum(), 1)), 0, 255)
    else:
        alpha = rng.uniform(*opacity) * rng.uniform(0.8, 1.0, size=(mask.sum(), 1))
        painted[mask] = (1 - alpha) * image[mask] + alpha * np.array(tint, dtype=np.float32)
    return ensure_changed(image, painted, mask), mask


def crack(image: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark, jagged random walk with an occasional branch (a crack)."""
    size = image.shape[0]
    start = np.array(pick_center(rng, allowed, 4))
    steps = int(draw_radius(rng, size, 0.08, 0.35) / 3) + 3
    heading = rng.uniform(0, 2 * np.pi)
    walk = [start]
    for _ in range(steps):
        heading += rng.normal(0, 0.6)
        walk.append(walk[-1] + 3.0 * np.array([np.sin(heading), np.cos(heading)]))
    mask = polyline_mask(image.shape[:2], np.array(walk), int(rng.integers(2, 4)))
    if rng.random() < 0.5:
        branch_start = walk[len(walk) // 2]
        branch_heading = heading + rng.choice([-1.0, 1.0]) * 1.0
        branch = [
            branch_start + 3.0 * k * np.array([np.sin(branch_heading), np.cos(branch_heading)])
            for k in range(steps // 3 + 2)
        ]
        mask |= polyline_mask(image.shape[:2], np.array(branch), 1)
    mask &= allowed
    painted = image.copy()
    painted[mask] *= rng.uniform(0.15, 0.45)
    return ensure_changed(image, painted, mask), mask


def hole(
    image: np.ndarray,
    allowed: np.ndarray,
    rng: np.random.Generator,
    *,
    radius_range: tuple[float, float] = (0.02, 0.08),
) -> tuple[np.ndarray, np.ndarray]:
    """A dark elliptic pit, darker in its centre and lit on one rim (a hole); its radius is drawn
    between `radius_range` (fractions of the image side)."""
    size = image.shape[0]
    radius = draw_radius(rng, size, *radius_range)
    center = pick_center(rng, allowed, radius)
    radii = (radius, radius * rng.uniform(0.6, 1.0))
    angle = rng.uniform(0, np.pi)
    mask = ellipse_mask(image.shape[:2], center, radii, angle) & allowed
    rows, cols = grid(image.shape[:2])
    depth = 1.0 - np.hypot(rows - center[0], cols - center[1]) / (radius + 1e-6)
    light = 0.5 + 0.5 * ((cols - center[1]) - (rows - center[0])) / (2 * radius + 1e-6)
    shade = np.clip(0.15 + 0.35 * (1 - depth) * light, 0.05, 0.6)[..., None]
    painted = image.copy()
    painted[mask] = (image * shade)[mask]
    return ensure_changed(image, painted, mask), mask


def contamination(
    image: np.ndarray,
    allowed: np.ndarray,
    rng: np.random.Generator,
    *,
    colours: tuple[str, ...] | None = None,
    opacity: tuple[float, float] = (0.5, 0.95),
    radius_range: tuple[float, float] = (0.02, 0.08),
) -> tuple[np.ndarray, np.ndarray]:
    """A blob of foreign colour (a union of small ellipses), from faint to opaque; the colour is
    drawn from `colours` (names in `PALETTE`, default all of them), its opacity from `opacity`,
    its radius between `radius_range` (fractions of the image side)."""
    size = image.shape[0]
    radius = draw_radius(rng, size, *radius_range)
    center = np.array(pick_center(rng, allowed, radius))
    mask = np.zeros(image.shape[:2], dtype=bool)
    for _ in range(rng.integers(2, 6)):
        offset = rng.normal(0, radius * 0.5, size=2)
        lobe = radius * rng.uniform(0.4, 0.9)
        mask |= ellipse_mask(
            image.shape[:2],
            tuple(center + offset),
            (lobe, lobe * rng.uniform(0.5, 1.0)),
            rng.uniform(0, np.pi),
        )
    mask &= allowed
    names = list(PALETTE) if colours is None else list(colours)
    colour = np.array(PALETTE[names[rng.integers(len(names))]], dtype=np.float32)
    alpha = rng.uniform(*opacity)
    painted = image.copy()
    painted[mask] = (1 - alpha) * image[mask] + alpha * colour
    return ensure_changed(image, painted, mask), mask


PAINTERS = {"scratch": scratch, "crack": crack, "hole": hole, "contamination": contamination}
