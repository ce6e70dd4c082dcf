"""Point-cloud scenes of the synthetic benchmark, written in the Real3D-AD format.

Two shapes (coordinates in millimetres, as in Real3D-AD): a wavy *panel* (an open surface) and
a *capsule* (a closed object). Each cloud is a fresh random sampling of the surface (~4k points),
with a small pose jitter, so no two normal clouds share a point. Defects follow Real3D-AD's
vocabulary: a *bulge* pushes the surface out along its normal, a *sink* pushes it in, and a
*missing* region deletes points. A deleted region has no points to label, so the points on its rim
(within 40 % of the hole radius of its edge) carry the anomaly label.
"""

from __future__ import annotations

import numpy as np

DEFECTS = {"panel": ("bulge", "sink", "missing"), "capsule": ("bulge", "sink", "missing")}
PANEL_SIDE = 60.0  # mm
CAPSULE_RADIUS, CAPSULE_LENGTH = 10.0, 40.0  # mm (cylinder length between the two caps)


def panel_height(x: np.ndarray, y: np.ndarray, phase: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z(x, y) of the wavy panel and its two partial derivatives."""
    kx, ky = 2 * np.pi / 30.0, 2 * np.pi / 40.0
    z = 3.0 * np.sin(kx * x + phase) * np.cos(ky * y)
    dzdx = 3.0 * kx * np.cos(kx * x + phase) * np.cos(ky * y)
    dzdy = -3.0 * ky * np.sin(kx * x + phase) * np.sin(ky * y)
    return z, dzdx, dzdy


def sample_panel(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = (rng.uniform(-PANEL_SIDE / 2, PANEL_SIDE / 2, count) for _ in range(2))
    z, dzdx, dzdy = panel_height(x, y, phase=0.0)
    normals = np.stack([-dzdx, -dzdy, np.ones_like(z)], axis=1)
    return np.stack([x, y, z], axis=1), normals / np.linalg.norm(normals, axis=1, keepdims=True)


def sample_capsule(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform by area: the cylinder takes L/(L + 2R) of the points, the two hemispheres the rest."""
    on_cylinder = rng.random(count) < CAPSULE_LENGTH / (CAPSULE_LENGTH + 2 * CAPSULE_RADIUS)
    angle = rng.uniform(0, 2 * np.pi, count)
    axial = rng.uniform(-CAPSULE_LENGTH / 2, CAPSULE_LENGTH / 2, count)
    sphere = rng.standard_normal((count, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    normals = np.where(
        on_cylinder[:, None], np.stack([np.zeros(count), np.cos(angle), np.sin(angle)], axis=1), sphere
    )
    cap_offset = np.sign(sphere[:, 0]) * CAPSULE_LENGTH / 2
    centres = np.where(
        on_cylinder[:, None],
        np.stack([axial, np.zeros(count), np.zeros(count)], axis=1),
        np.stack([cap_offset, np.zeros(count), np.zeros(count)], axis=1),
    )
    return centres + CAPSULE_RADIUS * normals, normals


def sample_shape(category: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if category == "panel":
        return sample_panel(count, rng)
    if category == "capsule":
        return sample_capsule(count, rng)
    raise ValueError(f"unknown synthetic point-cloud category {category!r}; known: {sorted(DEFECTS)}")


def random_pose(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A rotation of up to ±3° about z and a shift of up to ±1 mm: scans are never perfectly aligned."""
    angle = np.deg2rad(rng.uniform(-3, 3))
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return rotation, rng.uniform(-1, 1, size=3)


def make_point_sample(
    category: str, defect: str, count: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """clean and defective clouds (same pose) with per-point labels of the defective one.

    For bulge/sink the two clouds have the same points in the same order and differ exactly at the
    labelled ones; for missing the defective cloud is the clean one without the deleted points.
    """
    n_points = int(count * rng.uniform(0.9, 1.1))
    points, normals = sample_shape(category, n_points, rng)
    points = points + rng.normal(0, 0.02, size=points.shape)  # scanner noise, 20 µm
    labels = np.zeros(len(points), dtype=bool)
    defective = points
    center, radius = np.full(3, np.nan), 0.0
    if defect != "good":
        if defect not in DEFECTS[category]:
            raise ValueError(f"unknown point-cloud defect {defect!r}; known: {DEFECTS[category]}")
        if category == "panel":  # keep defects off the panel's free border
            inner = np.flatnonzero(np.abs(points[:, :2]).max(axis=1) < PANEL_SIDE / 2 - 12)
        else:
            inner = np.arange(len(points))
        center = points[rng.choice(inner)]
        radius = 3.0 + 7.0 * rng.random() ** 2  # 3-10 mm, mostly small
        distance = np.linalg.norm(points - center, axis=1)
        if defect == "missing":
            rim = (distance >= radius) & (distance < radius * 1.4)
            keep = distance >= radius
            defective, labels = points[keep], rim[keep]
        else:
            inside = distance < radius
            amplitude = rng.uniform(1.0, 3.0) * (1 if defect == "bulge" else -1)
            profile = np.maximum(1 - (distance[inside] / radius) ** 2, 0.05) ** 2
            defective = points.copy()
            defective[inside] += amplitude * profile[:, None] * normals[inside]
            labels = inside
    rotation, translation = random_pose(rng)  # one rigid motion for both clouds
    return {
        "clean": (points @ rotation.T + translation).astype(np.float32),
        "points": (defective @ rotation.T + translation).astype(np.float32),
        "labels": labels,
        "center": (center @ rotation.T + translation).astype(np.float32),
        "radius": np.float32(radius),
    }
