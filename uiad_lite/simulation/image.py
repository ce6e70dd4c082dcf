"""Image-level anomaly simulation: CutPaste, DRÆM and NSA (survey Table 9, RGB rows).

Every generator takes an H x W x 3 uint8 RGB image and an explicit ``numpy.random.Generator`` and
returns ``(altered_image, mask)``. The mask is exact: it is True precisely on the pixels whose value
differs from the input, and every other pixel is left bit-identical. A draw that happens to change
nothing (a patch pasted onto identical content) is redrawn from the same generator, up to
``max_attempts`` times, after which a ValueError explains why. ``foreground_only=True`` restricts
the defect to the object (DMDD-style), using ``foreground`` (a bool mask or a method name for
:func:`~uiad_lite.simulation.foreground.foreground_mask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from uiad_lite.simulation.foreground import ForegroundMethod, resolve_foreground
from uiad_lite.simulation.perlin import random_perlin_field
from uiad_lite.simulation.rgb_image import check_rgb_image
from uiad_lite.simulation.texture import augment_texture, pick_texture

_LUMA = np.array([0.299, 0.587, 0.114])


def _check_range(pair: tuple[float, float], name: str, low: float, high: float) -> tuple[float, float]:
    first, second = float(pair[0]), float(pair[1])
    if not low <= first <= second <= high:
        raise ValueError(f"{name} must be a pair low <= high inside [{low}, {high}], got {pair!r}")
    return first, second


def _changed(altered: np.ndarray, original: np.ndarray) -> np.ndarray:
    return (altered != original).any(axis=-1)


def _top_left(
    image_shape: tuple[int, int], box: tuple[int, int], rng: np.random.Generator,
    foreground: np.ndarray | None, margin: int = 0,
) -> tuple[int, int]:
    """Top-left corner of a box of size ``box`` inside the image (``margin`` pixels from the border).
    With a foreground mask, the box is centred on a random foreground pixel, then shifted inside."""
    height, width = image_shape
    box_h, box_w = box
    max_y, max_x = height - box_h - margin, width - box_w - margin
    if foreground is None:
        return int(rng.integers(margin, max_y + 1)), int(rng.integers(margin, max_x + 1))
    rows, cols = np.nonzero(foreground)
    pick = int(rng.integers(len(rows)))
    top = int(np.clip(rows[pick] - box_h // 2, margin, max_y))
    left = int(np.clip(cols[pick] - box_w // 2, margin, max_x))
    return top, left


def _color_jitter(patch: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation factors drawn from [1 - strength, 1 + strength] (CutPaste
    colour-jitters the cut patch before pasting it)."""
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    pixels = patch.astype(np.float64) * brightness
    mean_luma = float((pixels @ _LUMA).mean())
    pixels = (pixels - mean_luma) * contrast + mean_luma
    luma = (pixels @ _LUMA)[..., None]
    pixels = luma + (pixels - luma) * saturation
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _patch_shape(
    image_shape: tuple[int, int], rng: np.random.Generator,
    area_ratio: tuple[float, float], aspect_ratio: tuple[float, float],
) -> np.ndarray:
    """CutPaste rectangle: area a fraction of the image, aspect ratio log-uniform in ``aspect_ratio``."""
    height, width = image_shape
    area = rng.uniform(*area_ratio) * height * width
    aspect = float(np.exp(rng.uniform(np.log(aspect_ratio[0]), np.log(aspect_ratio[1]))))
    box_h = int(np.clip(round(np.sqrt(area / aspect)), 1, height))
    box_w = int(np.clip(round(np.sqrt(area * aspect)), 1, width))
    return np.ones((box_h, box_w), dtype=bool)


def _scar_shape(
    image_shape: tuple[int, int], rng: np.random.Generator, scar_width: tuple[int, int],
    scar_length: tuple[int, int], scar_angle: tuple[float, float],
) -> np.ndarray:
    """CutPaste-Scar: a thin rectangle (width x length pixels) rotated by an angle in degrees, drawn
    into its own bounding box."""
    width = float(rng.integers(scar_width[0], scar_width[1] + 1))
    length = float(rng.integers(scar_length[0], scar_length[1] + 1))
    theta = np.deg2rad(rng.uniform(*scar_angle))
    half = np.array([[-width, -length], [width, -length], [width, length], [-width, length]]) / 2.0
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    corners = half @ rotation.T
    corners -= corners.min(axis=0)
    box_w, box_h = (int(np.ceil(v)) + 1 for v in corners.max(axis=0))
    if box_h > image_shape[0] or box_w > image_shape[1]:
        raise ValueError(f"image of shape {image_shape} is too small for a {box_h} x {box_w} scar; "
                         "lower scar_width / scar_length")
    shape = np.zeros((box_h, box_w), np.uint8)
    cv2.fillPoly(shape, [np.round(corners * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return shape.astype(bool)


def cutpaste(
    image: np.ndarray,
    rng: np.random.Generator,
    variant: str = "patch",
    area_ratio: tuple[float, float] = (0.02, 0.15),
    aspect_ratio: tuple[float, float] = (0.3, 3.3),
    scar_width: tuple[int, int] = (2, 16),
    scar_length: tuple[int, int] = (10, 25),
    scar_angle: tuple[float, float] = (-45.0, 45.0),
    color_jitter: float = 0.1,
    foreground_only: bool = False,
    foreground: np.ndarray | ForegroundMethod = "threshold",
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """CutPaste (Li et al. 2021): cut a region of the image, colour-jitter it and paste it
    at another random place. Returns ``(altered, mask)``; mask = exactly the changed pixels.

    variant "patch"  rectangle with area ``area_ratio`` x image area and log-uniform ``aspect_ratio``
                     (paper: 2-15 % of the image, aspect 0.3-3.3).
    variant "scar"   thin rotated rectangle, ``scar_width`` x ``scar_length`` pixels rotated by
                     ``scar_angle`` degrees (paper, at 256 x 256: 2-16 x 10-25 px, +-45 degrees).
    """
    check_rgb_image(image)
    if variant not in ("patch", "scar"):
        raise ValueError(f"variant must be 'patch' or 'scar', got {variant!r}")
    area_ratio = _check_range(area_ratio, "area_ratio", 0.0, 1.0)
    aspect_ratio = _check_range(aspect_ratio, "aspect_ratio", 1e-3, 1e3)
    if not 0.0 <= color_jitter < 1.0:
        raise ValueError(f"color_jitter must be in [0, 1), got {color_jitter!r}")
    placement = resolve_foreground(image, foreground_only, foreground)
    height, width = image.shape[:2]
    for _ in range(max_attempts):
        if variant == "patch":
            shape = _patch_shape((height, width), rng, area_ratio, aspect_ratio)
        else:
            shape = _scar_shape((height, width), rng, scar_width, scar_length, scar_angle)
        box_h, box_w = shape.shape
        src_y, src_x = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
        dst_y, dst_x = _top_left((height, width), (box_h, box_w), rng, placement)
        patch = _color_jitter(image[src_y:src_y + box_h, src_x:src_x + box_w], rng, color_jitter)
        region = np.zeros((height, width), dtype=bool)
        region[dst_y:dst_y + box_h, dst_x:dst_x + box_w] = shape
        if placement is not None:
            region &= placement
        local = region[dst_y:dst_y + box_h, dst_x:dst_x + box_w]
        altered = image.copy()
        altered[dst_y:dst_y + box_h, dst_x:dst_x + box_w][local] = patch[local]
        mask = _changed(altered, image)
        if mask.any():
            return altered, mask
    raise ValueError(f"cutpaste changed no pixel in {max_attempts} attempts; the image (or its foreground) "
                     "looks uniform, so a pasted copy of it is invisible")


def draem_perlin(
    image: np.ndarray,
    rng: np.random.Generator,
    texture_source: str | Path | np.ndarray | Sequence[np.ndarray] | None = None,
    beta: tuple[float, float] = (0.1, 1.0),
    threshold: float = 0.5,
    scale_exponents: tuple[int, int] = (0, 6),
    foreground_only: bool = False,
    foreground: np.ndarray | ForegroundMethod = "threshold",
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """DRÆM anomaly (Zavrtanik et al. 2021): ``I_a = (1-M) I + (1-beta) M I + beta M A``.

    M is Perlin noise (:func:`random_perlin_field`: 2^k cells per axis, k in ``scale_exponents``,
    random rotation) above ``threshold`` (on our [-1, 1] noise; higher = smaller regions); A is a
    texture from ``texture_source`` (a folder of images, ``"dtd"``, one image or a list; default a
    :func:`synthetic_texture`; see :mod:`uiad_lite.simulation.texture`) after
    three random augmentations; beta is drawn from ``beta`` (paper: [0.1, 1.0]). Returns
    ``(altered, mask)`` with mask = exactly the changed pixels (a subset of M).
    """
    check_rgb_image(image)
    beta = _check_range(beta, "beta", 0.0, 1.0)
    if not -1.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [-1, 1) (the Perlin noise range), got {threshold!r}")
    placement = resolve_foreground(image, foreground_only, foreground)
    height, width = image.shape[:2]
    for _ in range(max_attempts):
        region = random_perlin_field((height, width), rng, scale_exponents) > threshold
        if placement is not None:
            region &= placement
        if not region.any():
            continue
        texture = augment_texture(pick_texture(texture_source, (height, width), rng), rng)
        weight = rng.uniform(*beta)
        blended = (1.0 - weight) * image.astype(np.float64) + weight * texture.astype(np.float64)
        altered = image.copy()
        altered[region] = np.clip(np.round(blended[region]), 0, 255).astype(np.uint8)
        mask = _changed(altered, image)
        if mask.any():
            return altered, mask
    raise ValueError(f"draem_perlin changed no pixel in {max_attempts} attempts; lower threshold "
                     f"(now {threshold}) or check the foreground mask")


def nsa_poisson(
    image: np.ndarray,
    other_normal_image: np.ndarray,
    rng: np.random.Generator,
    patch_size: tuple[float, float] = (0.1, 0.4),
    resize: tuple[float, float] = (0.7, 1.4),
    min_change: int = 3,
    foreground_only: bool = False,
    foreground: np.ndarray | ForegroundMethod = "threshold",
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """NSA natural synthetic anomaly (Schlüter et al. 2022): a patch of another normal image, rescaled,
    is blended into ``image`` by Poisson image editing (``cv2.seamlessClone``, normal clone), so the
    seam carries no artificial edge.

    patch_size  height and width of the blended patch, each a fraction of the image side
    resize      scale factor between source and blended patch (> 1 enlarges the source)
    min_change  Poisson blending changes pixels by amounts that fade towards the patch border; pixel
                changes of at most ``min_change`` grey levels (on every channel) are undone.
    Mask definition: the pixels inside the patch rectangle (and the foreground, if requested) whose
    value differs from ``image`` by more than ``min_change`` on some channel. Exactly those pixels
    are altered in the result; every other pixel equals the input.
    """
    check_rgb_image(image)
    check_rgb_image(other_normal_image, "other_normal_image")
    patch_size = _check_range(patch_size, "patch_size", 0.0, 1.0)
    resize = _check_range(resize, "resize", 1e-3, 1e3)
    if int(min_change) != min_change or not 0 <= min_change < 255:
        raise ValueError(f"min_change must be an integer grey-level step in [0, 255), got {min_change!r}")
    height, width = image.shape[:2]
    if min(height, width) < 8:
        raise ValueError(f"image of shape {image.shape} is too small for Poisson blending (needs 8 x 8)")
    placement = resolve_foreground(image, foreground_only, foreground)
    other_h, other_w = other_normal_image.shape[:2]
    for _ in range(max_attempts):
        # OpenCV needs the clone region one pixel away from the image border
        box_h = int(np.clip(round(rng.uniform(*patch_size) * height), 3, height - 2))
        box_w = int(np.clip(round(rng.uniform(*patch_size) * width), 3, width - 2))
        factor = rng.uniform(*resize)
        src_h = int(np.clip(round(box_h / factor), 1, other_h))
        src_w = int(np.clip(round(box_w / factor), 1, other_w))
        src_y, src_x = int(rng.integers(0, other_h - src_h + 1)), int(rng.integers(0, other_w - src_w + 1))
        patch = cv2.resize(other_normal_image[src_y:src_y + src_h, src_x:src_x + src_w], (box_w, box_h),
                           interpolation=cv2.INTER_LINEAR)
        dst_y, dst_x = _top_left((height, width), (box_h, box_w), rng, placement, margin=1)
        source = image.copy()
        source[dst_y:dst_y + box_h, dst_x:dst_x + box_w] = patch
        region = np.zeros((height, width), dtype=bool)
        region[dst_y:dst_y + box_h, dst_x:dst_x + box_w] = True
        if placement is not None:  # the Poisson boundary then follows the object's outline
            region &= placement
        if not region.any():
            continue
        clone_mask = region.astype(np.uint8) * 255
        # OpenCV pastes the mask's bounding box centred on ``centre``; this keeps it in place
        mask_x, mask_y, mask_w, mask_h = cv2.boundingRect(clone_mask)
        centre = (mask_x + mask_w // 2, mask_y + mask_h // 2)
        blended = cv2.seamlessClone(source, image, clone_mask, centre, cv2.NORMAL_CLONE)
        difference = np.abs(blended.astype(np.int16) - image.astype(np.int16)).max(axis=-1)
        mask = region & (difference > min_change)
        if mask.any():
            altered = image.copy()
            altered[mask] = blended[mask]
            return altered, mask
    raise ValueError(f"nsa_poisson changed no pixel by more than {min_change} grey levels in {max_attempts} "
                     "attempts; the two images may be too similar, lower min_change")
