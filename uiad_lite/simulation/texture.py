"""Anomaly textures for DRÆM-style blending: a self-made default and DRÆM's random augmentation.

DRÆM (Zavrtanik et al. 2021) fills its Perlin-shaped regions with images from the DTD
texture data set (Cimpoi et al. 2014), each passed through three of ten augmentations, drawn
without replacement (the authors' ``data_loader.py``, github.com/VitjanZ/DRAEM: gamma contrast,
brightness, sharpness, hue and saturation, solarize, posterize, invert, autocontrast, equalize and a
rotation whose uncovered corners are zero); :data:`TEXTURE_AUGMENTATIONS` re-implements the ten with
the released parameter ranges.
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


def _gamma_contrast(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma curve 255 (v/255)^g with g in [0.5, 2], drawn per channel."""
    gamma = rng.uniform(0.5, 2.0, size=3)
    return np.round(255.0 * (texture / 255.0) ** gamma).astype(np.uint8)


def _multiply_add_brightness(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Luma (Y of YCrCb) multiplied by [0.8, 1.2] and shifted by [-30, 30] grey levels."""
    ycrcb = cv2.cvtColor(texture, cv2.COLOR_RGB2YCrCb).astype(np.float64)
    ycrcb[..., 0] = ycrcb[..., 0] * rng.uniform(0.8, 1.2) + rng.uniform(-30.0, 30.0)
    return cv2.cvtColor(np.clip(np.round(ycrcb), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0  # PIL's smoothing kernel


def _sharpness(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PIL-style sharpness: interpolate between a smoothed copy (factor 0) and the image (factor 1),
    extrapolating beyond it up to factor 2; factor in [0, 2]. The one-pixel border is left as is."""
    factor = rng.uniform(0.0, 2.0)
    smooth = cv2.filter2D(texture.astype(np.float32), -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    out = smooth + factor * (texture.astype(np.float32) - smooth)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[[0, -1]], out[:, [0, -1]] = texture[[0, -1]], texture[:, [0, -1]]
    return out


def _hue_saturation(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add independent values in [-50, 50] to hue and saturation (on a 0-255 scale; the hue wraps)."""
    hue, saturation = rng.uniform(-50.0, 50.0, size=2)
    hsv = cv2.cvtColor(texture, cv2.COLOR_RGB2HSV_FULL).astype(np.float64)
    hsv[..., 0] = np.mod(np.round(hsv[..., 0] + hue), 256.0)
    hsv[..., 1] = np.clip(np.round(hsv[..., 1] + saturation), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL)


def _solarize(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """With probability 0.5, invert the values at or above a threshold drawn from [32, 128]."""
    if rng.uniform() >= 0.5:
        return texture
    threshold = rng.uniform(32.0, 128.0)
    return np.where(texture >= threshold, 255 - texture, texture).astype(np.uint8)


def _posterize(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep the top 1-8 bits of every value (bits drawn uniformly)."""
    bits = int(rng.integers(1, 9))
    return texture & np.uint8((0xFF << (8 - bits)) & 0xFF)


def _invert(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - texture


def _autocontrast(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per channel, stretch the range between the cutoff % darkest and brightest values (cutoff an
    integer in [0, 20]) to 0-255."""
    cutoff = int(rng.integers(0, 21))
    out = np.empty_like(texture)
    for c in range(3):
        channel = texture[..., c].astype(np.float64)
        low, high = np.percentile(channel, [cutoff, 100 - cutoff])
        if high <= low:
            out[..., c] = texture[..., c]
            continue
        out[..., c] = np.clip(np.round((channel - low) * 255.0 / (high - low)), 0, 255).astype(np.uint8)
    return out


def _equalize(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(texture[..., c])) for c in range(3)], axis=-1)


def _rotate(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by an angle in [-45, 45] degrees about the centre; uncovered corners are zero."""
    height, width = texture.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), rng.uniform(-45.0, 45.0), 1.0)
    return cv2.warpAffine(texture, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


#: DRÆM's ten texture augmentations (imgaug operations in the authors' data_loader.py), in our code.
TEXTURE_AUGMENTATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "gamma_contrast": _gamma_contrast,
    "multiply_add_brightness": _multiply_add_brightness,
    "sharpness": _sharpness,
    "hue_saturation": _hue_saturation,
    "solarize": _solarize,
    "posterize": _posterize,
    "invert": _invert,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "rotate": _rotate,
}


def augment_texture(texture: np.ndarray, rng: np.random.Generator, n_ops: int = 3) -> np.ndarray:
    """Apply ``n_ops`` distinct augmentations drawn without replacement from
    :data:`TEXTURE_AUGMENTATIONS`, in the drawn order, as DRÆM's ``randAugmenter`` does with three."""
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
