"""Anomaly textures for DRÆM-style blending: a self-made default and DRÆM's random augmentation.

DRÆM (Zavrtanik et al. 2021) fills its Perlin-shaped regions with images from the DTD
texture data set (Cimpoi et al. 2014), each passed through three augmentations picked at random.
``texture_source`` says where the textures come from:

* ``None`` (default): :func:`synthetic_texture`, a colourful fractal texture made from our own
  Perlin noise, so everything works offline;
* a folder (``str`` or ``Path``): any image files under it, searched recursively, e.g. DTD's
  ``dtd/images`` with its 47 class folders;
* ``"dtd"``: DTD where the workbook keeps datasets, ``$UIAD_DATA/dtd/images`` (an error says how to
  get it when it is not there);
* one image or a list of images (arrays).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@lru_cache(maxsize=8)
def texture_files(folder: str) -> tuple[Path, ...]:
    """The image files under ``folder``, recursively, in sorted order (indexed once per folder)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"texture folder not found: {root}")
    files = tuple(sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under the texture folder {root}")
    return files


def dtd_folder() -> Path:
    """DTD's image folder where the workbook keeps datasets: ``$UIAD_DATA/dtd/images``."""
    data = os.environ.get("UIAD_DATA")
    folder = Path(data).expanduser() / "dtd" / "images" if data else None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"DTD not found ({'UIAD_DATA is not set' if folder is None else f'no folder {folder}'}). "
            "Download dtd-r1.0.1.tar.gz from the Describable Textures Dataset page "
            "(robots.ox.ac.uk/~vgg/data/dtd), extract it into $UIAD_DATA (giving $UIAD_DATA/dtd/images/...), "
            "or pass any folder of images as texture_source"
        )
    return folder


def pick_texture(
    texture_source: str | Path | np.ndarray | Sequence[np.ndarray] | None,
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """One H x W x 3 uint8 texture from ``texture_source`` (see the module docstring), chosen at
    random and resized to ``shape``; a :func:`synthetic_texture` when None."""
    height, width = shape
    if texture_source is None:
        return synthetic_texture((height, width), rng)
    if isinstance(texture_source, (str, Path)):
        folder = dtd_folder() if str(texture_source) == "dtd" else Path(texture_source)
        files = texture_files(str(folder))
        from uiad_lite.data.readers import read_rgb

        texture = read_rgb(files[int(rng.integers(len(files)))])
        return cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)
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
