"""RGB scenes of the synthetic benchmark: two textures and two objects, plus their defects.

Textures start from scikit-image's bundled photographs (`skimage.data.brick`, `grass`), so the
normal appearance is real and irregular; every image is a random crop with flips, illumination
gradients, contrast/gamma jitter and sensor noise, so no two normal images are alike. Objects are
drawn procedurally: a machined washer (rotated, with an orientation notch) and a mounting plate
with four bolts, whose *logical* anomalies (a missing or a misplaced bolt) mimic MVTec LOCO AD.
All functions return float32 images in [0, 255]; the caller rounds to uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from uiad_lite.data.synthetic_defects import PAINTERS, ensure_changed, grid

TEXTURE_COLOURS = {  # (dark, light) RGB the grey photograph is mapped between
    "brick": ((70, 28, 18), (235, 170, 130)),
    "grass": ((30, 60, 20), (170, 210, 120)),
}
TEXTURE_ZOOM = {"brick": 1.0, "grass": 1.0}  # >1 magnifies the photograph
DEFECTS = {
    "brick": ("scratch", "crack", "hole", "contamination"),
    "grass": ("scratch", "hole", "contamination"),
    "washer": ("scratch", "crack", "hole", "contamination"),
    "plate": ("missing_bolt", "misplaced_bolt", "scratch", "contamination"),
}
DEFECT_KINDS = {"missing_bolt": "logical", "misplaced_bolt": "logical"}
# Category-specific painter settings. Grass is full of thin bright/dark blades, so a grey scratch
# vanished in it (v2: PatchCore scratch I-AUROC ~0.66, category 0.77). In v3 a grass scratch is a
# wider (5-7 px) pale, straw-coloured streak, a colour the green texture never takes; contamination
# skips green paint and near-black oil (which grass already looks like) and, like holes, is a bit
# larger. Other categories use the painters' defaults (their output is unchanged from v2).
PAINTER_OPTIONS: dict[str, dict[str, dict]] = {
    "grass": {
        "scratch": {"widths": (4, 7), "tint": (240, 235, 210), "opacity": (0.75, 0.95)},
        "contamination": {
            "colours": ("rust", "blue_ink", "grease"),
            "opacity": (0.7, 0.95),
            "radius_range": (0.03, 0.09),
        },
        "hole": {"radius_range": (0.03, 0.09)},
    },
}


@lru_cache(maxsize=4)
def texture_source(name: str) -> np.ndarray:
    """The grey photograph behind a texture category, as float32 in [0, 1]."""
    import skimage.data

    grey = getattr(skimage.data, name)()
    return grey.astype(np.float32) / 255.0


def photometric_jitter(image: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Illumination gradient, contrast, brightness and gamma jitter plus Gaussian sensor noise."""
    size = image.shape[0]
    rows, cols = grid(image.shape[:2])
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1.0 + rng.uniform(0, 0.12) * ((np.cos(angle) * cols + np.sin(angle) * rows) / size - 0.5)
    gain = rng.uniform(0.9, 1.1)
    gamma = rng.uniform(0.9, 1.1)
    out = 255.0 * (np.clip(image / 255.0, 0, 1) ** gamma) * gain * gradient[..., None]
    out += noise * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(out, 0, 255).astype(np.float32)


def render_texture(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    source = texture_source(name)
    zoom = TEXTURE_ZOOM[name]
    side = int(round(size / zoom))
    top, left = rng.integers(0, source.shape[0] - side), rng.integers(0, source.shape[1] - side)
    crop = source[top : top + side, left : left + side]
    if side != size:
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if name == "grass" and rng.random() < 0.5:  # grass has no left/right preference; bricks keep their rows
        crop = crop[::-1]
    dark, light = (np.array(c, dtype=np.float32) for c in TEXTURE_COLOURS[name])
    image = dark + (light - dark) * crop[..., None]
    return photometric_jitter(image, rng, noise=3.0)


def render_washer(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A brushed metal ring on a dark belt; returns (image, foreground mask)."""
    rows, cols = grid((size, size))
    cy, cx = size / 2 + rng.normal(0, size * 0.012, size=2)
    radius = np.hypot(rows - cy, cols - cx)
    theta = np.arctan2(rows - cy, cols - cx)
    outer, inner = size * rng.uniform(0.34, 0.36), size * rng.uniform(0.15, 0.17)
    notch_angle = rng.uniform(-np.pi, np.pi)
    notch = (np.abs(np.angle(np.exp(1j * (theta - notch_angle)))) < 0.09) & (radius > outer - size * 0.05)
    ring = (radius <= outer) & (radius >= inner) & ~notch
    background = 45 + 6 * rng.standard_normal((size, size)).astype(np.float32)
    image = np.repeat(background[..., None], 3, axis=2) * np.array([1.0, 1.0, 1.05], dtype=np.float32)
    light = rng.uniform(-np.pi, np.pi)
    brushed = ndimage.uniform_filter1d(rng.standard_normal(size * 2).astype(np.float32), 5)
    rings = brushed[np.clip((radius * 2).astype(int), 0, size * 2 - 1)]
    metal = 150 + 45 * np.cos(theta - light) + 12 * rings
    bevel = np.clip(np.minimum(radius - inner, outer - radius) / (size * 0.02), 0, 1)
    metal = metal * (0.75 + 0.25 * bevel)
    image[ring] = (metal[..., None] * np.array([0.96, 0.98, 1.0], dtype=np.float32))[ring]
    return photometric_jitter(image, rng, noise=2.5), ring


@dataclass(frozen=True)
class PlateScene:
    """Everything needed to redraw the plate identically except for the bolts."""

    size: int
    center: tuple[float, float]
    half: float
    bolts: tuple[tuple[float, float], ...]
    bolt_radius: float
    slot_angles: tuple[float, ...]
    seed: int


def plate_scene(size: int, rng: np.random.Generator) -> PlateScene:
    center = (size / 2 + rng.normal(0, size * 0.01), size / 2 + rng.normal(0, size * 0.01))
    half = size * 0.36
    offset = size * 0.24
    bolts = tuple(
        (
            center[0] + sy * offset + rng.normal(0, size * 0.006),
            center[1] + sx * offset + rng.normal(0, size * 0.006),
        )
        for sy in (-1, 1)
        for sx in (-1, 1)
    )
    return PlateScene(
        size=size,
        center=center,
        half=half,
        bolts=bolts,
        bolt_radius=size * 0.055,
        slot_angles=tuple(rng.uniform(0, np.pi, size=4)),
        seed=int(rng.integers(2**31)),
    )


def bolt_footprint(scene: PlateScene, position: tuple[float, float]) -> np.ndarray:
    rows, cols = grid((scene.size, scene.size))
    return np.hypot(rows - position[0], cols - position[1]) <= scene.bolt_radius


def render_plate(scene: PlateScene) -> tuple[np.ndarray, np.ndarray]:
    """Draw plate and bolts; the noise comes from `scene.seed`, so redrawing is pixel-identical."""
    size = scene.size
    rng = np.random.default_rng(scene.seed)
    rows, cols = grid((size, size))
    image = np.full((size, size, 3), 95.0, dtype=np.float32) + 4 * rng.standard_normal(
        (size, size, 1), dtype=np.float32
    )
    inside = np.maximum(np.abs(rows - scene.center[0]), np.abs(cols - scene.center[1])) <= scene.half
    grain = ndimage.uniform_filter(rng.standard_normal((size, size), dtype=np.float32), 5) * 2.0
    plate = np.array([120, 140, 95], dtype=np.float32) * (1 + 0.3 * grain[..., None])
    image[inside] = plate[inside]
    foreground = inside.copy()
    reach = int(np.ceil(scene.bolt_radius)) + 1
    for (by, bx), slot in zip(scene.bolts, scene.slot_angles, strict=False):
        window = (
            slice(max(int(by) - reach, 0), int(by) + reach + 1),
            slice(max(int(bx) - reach, 0), int(bx) + reach + 1),
        )
        dy, dx = rows[window] - by, cols[window] - bx
        disk = np.hypot(dy, dx) <= scene.bolt_radius
        shade = 170 + 50 * (dx - dy) / (2 * scene.bolt_radius)
        across = np.abs(-dx * np.sin(slot) + dy * np.cos(slot))
        along = np.abs(dx * np.cos(slot) + dy * np.sin(slot))
        slot_pixels = disk & (across < scene.bolt_radius * 0.15) & (along < scene.bolt_radius * 0.7)
        local = image[window]
        local[disk] = np.stack([shade, shade, shade * 1.03], axis=-1)[disk]
        local[slot_pixels] = 40.0
        foreground[window] |= disk
    out = image + 2.0 * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(out, 0, 255), foreground


def logical_plate_defect(
    scene: PlateScene, defect: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Missing or misplaced bolt: returns (clean, defective, mask = every bolt footprint that changed)."""
    clean, _ = render_plate(scene)
    which = int(rng.integers(4))
    bolts = list(scene.bolts)
    mask = bolt_footprint(scene, bolts[which])
    if defect == "missing_bolt":
        del bolts[which]
        slots = scene.slot_angles[:which] + scene.slot_angles[which + 1 :]
    else:  # misplaced: moved towards the plate centre, where no bolt belongs
        share = rng.uniform(0.45, 0.8)
        moved = (
            bolts[which][0] + (scene.center[0] - bolts[which][0]) * share,
            bolts[which][1] + (scene.center[1] - bolts[which][1]) * share,
        )
        bolts[which] = moved
        mask |= bolt_footprint(scene, moved)
        slots = scene.slot_angles
    defective, _ = render_plate(replace(scene, bolts=tuple(bolts), slot_angles=tuple(slots)))
    mask &= np.abs(defective - clean).max(axis=-1) > 0  # the footprints' overlap with an untouched bolt
    defective = ensure_changed(clean, defective, mask)
    return clean, defective, mask


def render_rgb(
    category: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, PlateScene | None]:
    """One normal image of `category`: (image, foreground where defects may go, plate scene or None)."""
    if category in TEXTURE_COLOURS:
        image = render_texture(category, size, rng)
        return image, np.ones((size, size), dtype=bool), None
    if category == "washer":
        image, ring = render_washer(size, rng)
        return image, ring, None
    if category == "plate":
        scene = plate_scene(size, rng)
        image, foreground = render_plate(scene)
        return image, foreground, scene
    raise ValueError(f"unknown synthetic RGB category {category!r}; known: {sorted(DEFECTS)}")


def make_rgb_sample(
    category: str, defect: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean uint8, defective uint8, mask bool); for defect 'good' the two images are equal."""
    clean, foreground, scene = render_rgb(category, size, rng)
    if defect == "good":
        image = to_uint8(clean)
        return image, image.copy(), np.zeros((size, size), dtype=bool)
    if defect in DEFECT_KINDS:
        clean, defective, mask = logical_plate_defect(scene, defect, rng)
    else:
        allowed = foreground
        if scene is not None:  # structural defects on the plate go on the plate surface only
            bolts = np.zeros_like(allowed)
            for position in scene.bolts:
                bolts |= bolt_footprint(scene, position)
            allowed = foreground & ~bolts
        for _ in range(10):
            options = PAINTER_OPTIONS.get(category, {}).get(defect, {})
            defective, mask = PAINTERS[defect](clean, allowed, rng, **options)
            if mask.sum() >= 4:
                break
    clean_u8, defective_u8 = to_uint8(clean), to_uint8(defective)
    changed = (clean_u8 != defective_u8).any(axis=-1)
    if not np.array_equal(changed, mask):
        raise AssertionError(f"synthetic {category}/{defect}: mask and changed pixels disagree")
    return clean_u8, defective_u8, mask


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
