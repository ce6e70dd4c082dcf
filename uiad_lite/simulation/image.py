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


def jitter_colors(
    patch: np.ndarray, rng: np.random.Generator, brightness: float = 0.1, contrast: float = 0.1,
    saturation: float = 0.1, hue: float = 0.1,
) -> np.ndarray:
    """torchvision-style ``ColorJitter`` as the CutPaste reference code uses it (all four at 0.1):
    brightness, contrast and saturation factors from [1 - s, 1 + s], a hue shift from [-hue, hue]
    turns of the colour circle, applied in a random order (values clipped after every step).
    Contrast blends with the patch's mean luma, saturation with each pixel's luma."""
    for name, value, high in (("brightness", brightness, 1.0), ("contrast", contrast, 1.0),
                              ("saturation", saturation, 1.0), ("hue", hue, 0.5)):
        if not 0.0 <= value <= high:
            raise ValueError(f"{name} jitter must be in [0, {high}], got {value!r}")
    pixels = patch.astype(np.float64)
    for step in rng.permutation(4):
        if step == 0 and brightness:
            pixels = np.clip(pixels * rng.uniform(1 - brightness, 1 + brightness), 0, 255)
        elif step == 1 and contrast:
            mean_luma = float((pixels @ _LUMA).mean())
            factor = rng.uniform(1 - contrast, 1 + contrast)
            pixels = np.clip((pixels - mean_luma) * factor + mean_luma, 0, 255)
        elif step == 2 and saturation:
            luma = (pixels @ _LUMA)[..., None]
            pixels = np.clip(luma + (pixels - luma) * rng.uniform(1 - saturation, 1 + saturation), 0, 255)
        elif step == 3 and hue:
            hsv = cv2.cvtColor((pixels / 255.0).astype(np.float32), cv2.COLOR_RGB2HSV)
            hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * rng.uniform(-hue, hue), 360.0)
            pixels = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float64) * 255.0, 0, 255)
    return np.round(pixels).astype(np.uint8)


def _patch_shape(
    image_shape: tuple[int, int], rng: np.random.Generator,
    area_ratio: tuple[float, float], aspect_ratio: tuple[float, float],
) -> tuple[int, int]:
    """CutPaste rectangle (height, width): area a fraction of the image; aspect ratio (width / height)
    uniform in [low, 1] or in [1, high], each with probability 1/2 (paper: (0.3, 1) U (1, 3.3))."""
    height, width = image_shape
    area = rng.uniform(*area_ratio) * height * width
    low, high = aspect_ratio
    aspect = rng.uniform(low, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, high)
    box_h = int(np.clip(np.sqrt(area / aspect), 1, height))
    box_w = int(np.clip(np.sqrt(area * aspect), 1, width))
    return box_h, box_w


def _rotate_patch(patch: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate ``patch`` by ``angle`` degrees (counter-clockwise) onto a canvas that holds all of it,
    nearest neighbour as PIL's ``rotate(expand=True)``; returns (rotated pixels, bool footprint)."""
    height, width = patch.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos))
    matrix[0, 2] += new_w / 2.0 - width / 2.0
    matrix[1, 2] += new_h / 2.0 - height / 2.0
    rotated = cv2.warpAffine(patch, matrix, (new_w, new_h), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    footprint = cv2.warpAffine(np.ones((height, width), np.uint8), matrix, (new_w, new_h),
                               flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return rotated, footprint.astype(bool)


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

    variant "patch"  rectangle with area ``area_ratio`` x image area and aspect ratio from
                     ``aspect_ratio`` (paper: 2-15 % of the image, aspect (0.3, 1) U (1, 3.3)).
    variant "scar"   a thin ``scar_width`` x ``scar_length`` pixel rectangle is cut, jittered,
                     *rotated* by an angle from ``scar_angle`` degrees (content and outline) and
                     pasted through its rotated footprint (paper, at 256 x 256: 2-16 x 10-25 px,
                     +-45 degrees).
    ``color_jitter`` is the strength of brightness, contrast, saturation *and hue* jitter
    (:func:`jitter_colors`). The sizes are the paper's; for the jitter's strength and the scar's
    rotation we follow the reference implementation most re-implementations use
    (github.com/LilitYolyan/CutPaste, unofficial): torchvision ``ColorJitter(0.1, 0.1, 0.1, 0.1)``,
    and the scar cut upright, then rotated with PIL.
    """
    check_rgb_image(image)
    if variant not in ("patch", "scar"):
        raise ValueError(f"variant must be 'patch' or 'scar', got {variant!r}")
    area_ratio = _check_range(area_ratio, "area_ratio", 0.0, 1.0)
    aspect_ratio = _check_range(aspect_ratio, "aspect_ratio", 1e-3, 1e3)
    if not aspect_ratio[0] <= 1.0 <= aspect_ratio[1]:
        raise ValueError(f"aspect_ratio must contain 1 (drawn from [low, 1] or [1, high]), "
                         f"got {aspect_ratio!r}")
    if not 0.0 <= color_jitter <= 0.5:
        raise ValueError(f"color_jitter must be in [0, 0.5], got {color_jitter!r}")
    placement = resolve_foreground(image, foreground_only, foreground)
    height, width = image.shape[:2]
    jitter = dict(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter, hue=color_jitter)
    for _ in range(max_attempts):
        if variant == "patch":
            cut_h, cut_w = _patch_shape((height, width), rng, area_ratio, aspect_ratio)
        else:
            cut_w = int(rng.integers(scar_width[0], scar_width[1] + 1))
            cut_h = int(rng.integers(scar_length[0], scar_length[1] + 1))
            if cut_h > height or cut_w > width:
                raise ValueError(f"image of shape {image.shape[:2]} is too small for a {cut_h} x {cut_w} "
                                 "scar; lower scar_width / scar_length")
        src_y, src_x = int(rng.integers(0, height - cut_h + 1)), int(rng.integers(0, width - cut_w + 1))
        patch = jitter_colors(image[src_y:src_y + cut_h, src_x:src_x + cut_w], rng, **jitter)
        shape = np.ones((cut_h, cut_w), dtype=bool)
        if variant == "scar":
            patch, shape = _rotate_patch(patch, float(rng.uniform(*scar_angle)))
            if shape.shape[0] > height or shape.shape[1] > width:
                raise ValueError(f"image of shape {image.shape[:2]} is too small for a rotated scar of "
                                 f"{shape.shape}; lower scar_width / scar_length")
        box_h, box_w = shape.shape
        dst_y, dst_x = _top_left((height, width), (box_h, box_w), rng, placement)
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
    beta: tuple[float, float] = (0.2, 1.0),
    threshold: float = 0.5,
    scale_exponents: tuple[int, int] = (0, 6),
    texture_ops: int = 3,
    foreground_only: bool = False,
    foreground: np.ndarray | ForegroundMethod = "threshold",
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """DRÆM anomaly (Zavrtanik et al. 2021, Eq. 1): ``I_a = (1-M) I + (1-beta) M I + beta M A``.

    M is Perlin noise (:func:`random_perlin_field`: 2^k cells per axis, k in ``scale_exponents``,
    rotated by [-90, 90] degrees with zero fill) above ``threshold`` (0.5 in the authors' code, on
    the same sqrt(2)-scaled noise); A is a texture from ``texture_source`` (a folder of images,
    ``"dtd"``, one image or a list; default a :func:`synthetic_texture`; see
    :mod:`uiad_lite.simulation.texture`) after ``texture_ops`` of DRÆM's ten augmentations; the
    texture opacity beta is drawn uniformly from ``beta``. The paper states [0.1, 1]; the released
    code (github.com/VitjanZ/DRAEM, ``data_loader.py``) draws the weight of the *image* from
    [0, 0.8), i.e. the texture opacity from (0.2, 1], which is our default. Returns
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
        texture = augment_texture(pick_texture(texture_source, (height, width), rng), rng, texture_ops)
        weight = rng.uniform(*beta)
        blended = (1.0 - weight) * image.astype(np.float64) + weight * texture.astype(np.float64)
        altered = image.copy()
        altered[region] = np.clip(np.round(blended[region]), 0, 255).astype(np.uint8)
        mask = _changed(altered, image)
        if mask.any():
            return altered, mask
    raise ValueError(f"draem_perlin changed no pixel in {max_attempts} attempts; lower threshold "
                     f"(now {threshold}) or check the foreground mask")


def _nsa_half_widths(side: int, rng: np.random.Generator, gamma: tuple[float, float, float],
                     bounds: tuple[int, int]) -> int:
    """Half-width in pixels: ``(offset + Gamma(shape, scale)) * side``, clipped to ``bounds``."""
    shape, scale, offset = gamma
    return int(np.clip((offset + rng.gamma(shape, scale)) * side, *bounds))


def _nsa_patch(
    current: np.ndarray, other: np.ndarray, rng: np.random.Generator, gamma: tuple[float, float, float],
    width_bounds: tuple[float, float], resize_bounds: tuple[float, float], placement: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """One NSA patch blended into ``current``: (Poisson-blended image, bool clone region) or None."""
    height, width = current.shape[:2]
    lo_h, hi_h = (max(1, int(round(f * height))) for f in width_bounds)
    lo_w, hi_w = (max(1, int(round(f * width))) for f in width_bounds)
    half_h = _nsa_half_widths(height, rng, gamma, (lo_h, hi_h))
    half_w = _nsa_half_widths(width, rng, gamma, (lo_w, hi_w))
    # the source rectangle: centre anywhere at least one minimal half-width from the border, clipped
    src_h, src_w = other.shape[:2]
    centre_y = int(rng.integers(min(lo_h, src_h - 1), max(src_h - lo_h, min(lo_h, src_h - 1) + 1)))
    centre_x = int(rng.integers(min(lo_w, src_w - 1), max(src_w - lo_w, min(lo_w, src_w - 1) + 1)))
    top, bottom = max(centre_y - half_h, 0), min(centre_y + half_h, src_h)
    left, right = max(centre_x - half_w, 0), min(centre_x + half_w, src_w)
    patch = other[top:bottom, left:right]
    cut_h, cut_w = patch.shape[:2]
    # resize by N(1, 0.5) clipped to resize_bounds, keeping the aspect ratio; as in the released code
    # the new side is clipped to the half-width bounds, so no patch side exceeds width_bounds[1]
    scale = float(np.clip(rng.normal(1.0, 0.5), *resize_bounds))
    new_h = int(np.clip(scale * cut_h, lo_h, hi_h))
    new_w = int(np.clip(int(new_h / cut_h * cut_w), lo_w, hi_w))
    new_h = int(np.clip(int(new_w / cut_w * cut_h), lo_h, hi_h))
    new_h, new_w = min(new_h, height - 4), min(new_w, width - 4)
    if new_h < 5 or new_w < 5:  # the blended interior must be at least 3 x 3 pixels
        return None
    patch = cv2.resize(patch, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dst_y, dst_x = _top_left((height, width), (new_h, new_w), rng, placement, margin=1)
    source = current.copy()
    source[dst_y:dst_y + new_h, dst_x:dst_x + new_w] = patch
    region = np.zeros((height, width), dtype=bool)
    region[dst_y + 1:dst_y + new_h - 1, dst_x + 1:dst_x + new_w - 1] = True  # border row zero, as released
    if placement is not None:  # the Poisson boundary then follows the object's outline
        region &= placement
    if region.sum() < 50:  # as released: OpenCV's seamlessClone fails on tiny masks
        return None
    clone_mask = region.astype(np.uint8) * 255
    # OpenCV pastes the mask's bounding box centred on ``centre``; this keeps it in place
    mask_x, mask_y, mask_w, mask_h = cv2.boundingRect(clone_mask)
    centre = (mask_x + mask_w // 2, mask_y + mask_h // 2)
    try:
        return cv2.seamlessClone(source, current, clone_mask, centre, cv2.NORMAL_CLONE), region
    except cv2.error:  # as released: a mask OpenCV cannot blend skips this patch
        return None


def nsa_poisson(
    image: np.ndarray,
    other_normal_image: np.ndarray,
    rng: np.random.Generator,
    num_patches: int = 3,
    gamma: tuple[float, float, float] = (2.0, 0.05, 0.03),
    width_bounds: tuple[float, float] = (0.03, 0.4),
    resize_bounds: tuple[float, float] = (0.7, 1.3),
    min_change: int = 3,
    foreground_only: bool = False,
    foreground: np.ndarray | ForegroundMethod = "threshold",
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """NSA natural synthetic anomaly (Schlüter et al. 2022): patches of another normal image, rescaled,
    are blended into ``image`` by Poisson image editing (``cv2.seamlessClone``, normal clone), so the
    seam carries no artificial edge. Sampling follows the authors' code
    (github.com/hmsch/natural-synthetic-anomalies, ``self_sup_tasks.patch_ex`` with the MVTec settings):

    num_patches    the first patch is always blended, each further one with probability 1/2
                   (released MVTec settings: 3 for most objects, 4 for textures, screw and zipper)
    gamma          (shape, scale, offset): each half-width of a patch is ``(offset + Gamma(shape,
                   scale)) x side``, drawn per axis, clipped to ``width_bounds`` (fractions of the side)
    resize_bounds  the cut patch is resized by ``N(1, 0.5)`` clipped to these bounds, keeping its aspect
                   ratio (released: (0.7, 1.3) for objects, (0.5, 2) for textures); as released, the
                   resized sides are clipped to the half-width bounds
    min_change     Poisson blending changes pixels by amounts that fade towards the patch border; pixel
                   changes of at most ``min_change`` grey levels (on every channel) are undone (the
                   released code keeps them in the image but labels them normal when their mean
                   change is at most 1 grey level).
    Mask definition: the pixels whose value differs from ``image`` after all patches; each of them
    changed by more than ``min_change`` on some channel. Every other pixel equals the input.
    """
    check_rgb_image(image)
    check_rgb_image(other_normal_image, "other_normal_image")
    width_bounds = _check_range(width_bounds, "width_bounds", 1e-3, 0.5)
    resize_bounds = _check_range(resize_bounds, "resize_bounds", 1e-3, 1e3)
    if len(gamma) != 3 or not (gamma[0] > 0 and gamma[1] > 0 and gamma[2] >= 0):
        raise ValueError(f"gamma must be (shape > 0, scale > 0, offset >= 0), got {gamma!r}")
    if int(num_patches) != num_patches or num_patches < 1:
        raise ValueError(f"num_patches must be a positive integer, got {num_patches!r}")
    if int(min_change) != min_change or not 0 <= min_change < 255:
        raise ValueError(f"min_change must be an integer grey-level step in [0, 255), got {min_change!r}")
    height, width = image.shape[:2]
    if min(height, width) < 8:
        raise ValueError(f"image of shape {image.shape} is too small for Poisson blending (needs 8 x 8)")
    placement = resolve_foreground(image, foreground_only, foreground)
    for _ in range(max_attempts):
        altered = image.copy()
        for index in range(int(num_patches)):
            if index > 0 and rng.integers(2) == 0:
                continue
            blended = _nsa_patch(altered, other_normal_image, rng, gamma, width_bounds, resize_bounds,
                                 placement)
            if blended is None:
                continue
            result, region = blended
            difference = np.abs(result.astype(np.int16) - altered.astype(np.int16)).max(axis=-1)
            keep = region & (difference > min_change)
            altered[keep] = result[keep]
        mask = _changed(altered, image)
        if mask.any():
            return altered, mask
    raise ValueError(f"nsa_poisson changed no pixel by more than {min_change} grey levels in {max_attempts} "
                     "attempts; the two images may be too similar, lower min_change")
