"""Read one image, mask or organised point cloud from disk, with errors that name the file.

Every loader goes through these helpers so a broken PNG, a mask of the wrong size or a TIFF
that is not an H×W×3 float cloud always fails the same, readable way.

Decoded files are kept in a small process-wide cache (least recently used first out, at most
``UIAD_READ_CACHE_MB`` megabytes, default 512; ``0`` switches it off), keyed by the file's path, size
and modification time. Several detectors of one chapter load the same category one after the other;
decoding each PNG once instead of once per detector is a few seconds per chapter on two cores. Every
call returns its own copy, so a caller may change the array it gets.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from uiad_lite.data.sample import Sample

ImageSize = tuple[int, int]  # (height, width)

_decoded: OrderedDict[tuple, np.ndarray] = OrderedDict()
_decoded_bytes = 0


def read_cache_bytes() -> int:
    """The decoded-file cache's budget in bytes (``UIAD_READ_CACHE_MB``)."""
    raw = os.environ.get("UIAD_READ_CACHE_MB", "512")
    try:
        return int(float(raw) * 2**20)
    except ValueError:
        raise ValueError(f"UIAD_READ_CACHE_MB must be a number of megabytes, got {raw!r}") from None


def _cached(kind: str, path: Path, decode: Callable[[Path], np.ndarray]) -> np.ndarray:
    """``decode(path)``, or a copy of what it returned for this very file (same size and mtime)."""
    global _decoded_bytes
    budget = read_cache_bytes()
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if budget <= 0 or stat is None:
        return decode(path)
    key = (kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    array = _decoded.get(key)
    if array is None:
        array = decode(path)
        if array.nbytes <= budget:
            _decoded[key] = array
            _decoded_bytes += array.nbytes
            while _decoded_bytes > budget:
                _decoded_bytes -= _decoded.popitem(last=False)[1].nbytes
    else:
        _decoded.move_to_end(key)
    return array.copy()
    _decoded.move_to_end(key)
    return array.copy()


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file (PNG, JPG, BMP, ...) as H×W×3 uint8 RGB; grey images are repeated."""
    return _cached("rgb", Path(path), _decode_rgb)


def _decode_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as handle:
            image = np.asarray(handle.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error
    return image


def read_mask(
    path: str | Path, expected_size: ImageSize | None = None, image_path: str | Path = ""
) -> np.ndarray:
    """Read a ground-truth mask as H×W bool (any non-zero pixel is anomalous).

    `expected_size` is the (height, width) of the image the mask belongs to; a mismatch raises a
    ValueError that names both files.
    """
    path = Path(path)

    def decode(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as handle:
                return np.asarray(handle)
        except FileNotFoundError:
            raise FileNotFoundError(f"mask file not found: {path} (for image {image_path})") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"cannot read mask {path}: {error}") from error

    values = _cached("mask", path, decode)
    if values.ndim == 3:
        values = values.max(axis=2)
    mask = values != 0
    check_same_size(mask.shape[:2], expected_size, path, image_path)
    return mask


def check_same_size(
    found: tuple[int, ...], expected: ImageSize | None, path: Path | str, other: Path | str
) -> None:
    """Raise when a mask/cloud does not have the height and width of the image it annotates."""
    if expected is not None and tuple(found[:2]) != tuple(expected[:2]):
        raise ValueError(
            f"size mismatch: {path} is {found[0]}x{found[1]} (HxW) but {other} is "
            f"{expected[0]}x{expected[1]}; a mask or xyz map must match its image pixel for pixel"
        )


def read_xyz_tiff(path: str | Path) -> np.ndarray:
    """Read an MVTec 3D-AD style organised point cloud: H×W×3 float32, zeros where no point was measured."""
    return _cached("xyz", Path(path), _decode_xyz_tiff)


def _decode_xyz_tiff(path: Path) -> np.ndarray:
    import logging

    import tifffile

    quiet = logging.getLogger("tifffile")  # it logs its own complaint before failing; ours says more
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        xyz = tifffile.imread(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"xyz TIFF not found: {path}") from None
    except Exception as error:  # tifffile raises its own TiffFileError, ValueError, struct.error ...
        raise ValueError(f"cannot read xyz TIFF {path}: {error}") from error
    finally:
        quiet.setLevel(level)
    if xyz.size == 0:
        raise ValueError(f"cannot read xyz TIFF {path}: no image data in the file (truncated or corrupt?)")
    if xyz.ndim != 3 or xyz.shape[2] != 3 or not np.issubdtype(xyz.dtype, np.floating):
        raise ValueError(
            f"{path} must hold an HxWx3 floating-point point cloud (x, y, z per pixel); "
            f"found an array of shape {xyz.shape} and dtype {xyz.dtype}"
        )
    xyz = np.ascontiguousarray(xyz, dtype=np.float32)
    xyz[~np.isfinite(xyz)] = 0.0
    return xyz


def resize_image(image: np.ndarray, size: ImageSize) -> np.ndarray:
    """Resize an H×W×3 uint8 image with bilinear (antialiased) interpolation."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: ImageSize) -> np.ndarray:
    """Resize an H×W bool mask with nearest-neighbour interpolation (keeps it binary)."""
    if mask.shape[:2] == tuple(size):
        return mask
    as_image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(as_image.resize((size[1], size[0]), Image.NEAREST)) > 127


def resize_xyz(xyz: np.ndarray, size: ImageSize) -> np.ndarray:
    """Resize an organised cloud with nearest-neighbour so missing points (zeros) stay missing."""
    if xyz.shape[:2] == tuple(size):
        return xyz
    rows = np.minimum((np.arange(size[0]) + 0.5) * xyz.shape[0] / size[0], xyz.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * xyz.shape[1] / size[1], xyz.shape[1] - 1).astype(int)
    return np.ascontiguousarray(xyz[rows][:, cols])


def as_size(image_size: int | tuple[int, int] | None) -> ImageSize | None:
    """Normalise an `image_size` argument (int -> square) to (height, width)."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        return (image_size, image_size)
    height, width = (int(value) for value in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    return (height, width)


def center_crop(sample: Sample, size: ImageSize) -> Sample:
    """The central ``size`` (height, width) window of every image-like field of ``sample``.

    This is the evaluation protocol of PaDiM and PatchCore on MVTec AD (resize to 256, crop the central
    224, ground truth cropped alike). Image, mask and organised xyz are cropped together; the label is
    kept, as in those papers, even when a defect lies entirely in the cropped-away border.
    """
    sample.require("image")
    height, width = sample.image.shape[:2]
    if size[0] > height or size[1] > width:
        raise ValueError(
            f"center crop {size[0]}x{size[1]} is larger than the image of {sample.path!r} "
            f"({height}x{width}); choose image_size >= center_crop"
        )
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    window = (slice(top, top + size[0]), slice(left, left + size[1]))

    def crop(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.ascontiguousarray(array[window])

    return replace(
        sample,
        image=crop(sample.image),
        mask=crop(sample.mask),
        xyz=crop(sample.xyz),
        meta={**sample.meta, "center_crop": tuple(size)},
    )
