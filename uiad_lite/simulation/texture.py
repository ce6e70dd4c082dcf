"""Anomaly textures for DRÆM-style blending: a self-made default and DRÆM's random augmentation.

DRÆM (Zavrtanik et al. 2021) fills its Perlin-shaped regions with images from the DTD
texture data set, each passed through three augmentations picked at random. Offline and without
DTD, :func:`synthetic_texture` makes a colourful fractal texture from our own Perlin noise instead;
any list of images can replace it through ``texture_source``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from uiad_lite.simulation.perlin import perlin_noise
from uiad_lite.simulation.rgb_image import check_rgb_image


def synthetic_texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random H x W x 3 uint8 texture: three independent fractal Perlin fields (4 octaves, 2-16
    lattice cells), each stretched to the full 0-255 range. Stands in for DTD in DRÆM."""
    height, width = shape
    channels = []
    for _ in range(3):
        cells = 2 ** int(rng.integers(1, 5))
        field = perlin_noise((height, width), cells, rng, octaves=4, persistence=0.6)
        low, high = field.min(), field.max()
        channels.append((field - low) / max(high - low, 1e-12))
    return np.round(np.stack(channels, axis=-1) * 255.0).astype(np.uint8)


def _invert(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - texture


def _posterize(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bits = int(rng.integers(2, 5))
    keep = np.uint8((0xFF << (8 - bits)) & 0xFF)
    return texture & keep


def _brightness_contrast(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gain = rng.uniform(0.6, 1.4)
    offset = rng.uniform(-40.0, 40.0)
    return np.clip(texture.astype(np.float64) * gain + offset, 0, 255).round().astype(np.uint8)


def _swap_channels(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(texture[..., rng.permutation(3)])


def _rotate_half(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(texture, k=2))  # half turn keeps H x W


def _equalize(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(texture[..., c])) for c in range(3)], axis=-1)


TEXTURE_AUGMENTATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "invert": _invert,
    "posterize": _posterize,
    "brightness_contrast": _brightness_contrast,
    "swap_channels": _swap_channels,
    "rotate_180": _rotate_half,
    "equalize": _equalize,
}


def augment_texture(texture: np.ndarray, rng: np.random.Generator, n_ops: int = 3) -> np.ndarray:
    """Apply ``n_ops`` distinct augmentations drawn from :data:`TEXTURE_AUGMENTATIONS`, as DRÆM does
    with three of its imgaug operations."""
    names = list(TEXTURE_AUGMENTATIONS)
    if not 0 <= n_ops <= len(names):
        raise ValueError(f"n_ops must be in [0, {len(names)}], got {n_ops}")
    for index in rng.choice(len(names), size=n_ops, replace=False):
        texture = TEXTURE_AUGMENTATIONS[names[int(index)]](texture, rng)
    return texture


def pick_texture(
    texture_source: np.ndarray | Sequence[np.ndarray] | None,
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """One H x W x 3 uint8 texture: a random member of ``texture_source`` (a single image or a list of
    H' x W' x 3 / H' x W' uint8 arrays), resized to ``shape``; a :func:`synthetic_texture` when None."""
    height, width = shape
    if texture_source is None:
        return synthetic_texture((height, width), rng)
    sources = [texture_source] if isinstance(texture_source, np.ndarray) else list(texture_source)
    if not sources:
        raise ValueError("texture_source is an empty list; pass images or None for the synthetic texture")
    index = int(rng.integers(len(sources)))
    texture = np.asarray(sources[index])
    if texture.ndim == 2:
        texture = np.repeat(texture[..., None], 3, axis=-1)
    check_rgb_image(texture, f"texture_source[{index}]")
    if texture.shape[:2] != (height, width):
        texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)
    return texture
