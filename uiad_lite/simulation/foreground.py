"""Foreground masks so simulated defects land on the object, not on the background (DMDD-style).

DMDD (Liu et al. 2024) extracts the object with GrabCut (Rother et al. 2004) and simulates
anomalies only there. Two methods are offered: a fast Otsu threshold on the colour distance to the
border colour, and OpenCV's GrabCut initialised with a rectangle just inside the image border. Both
assume an object on a plain background (MVTec AD object categories), not a full-frame texture.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from scipy import ndimage

from uiad_lite.simulation.rgb_image import check_rgb_image

ForegroundMethod = Literal["threshold", "grabcut"]


def _border_color_distance(image: np.ndarray) -> np.ndarray:
    """Per-pixel max-over-channels distance (0-255) to the median colour of the image border."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]], axis=0)
    background = np.median(border.astype(np.float64), axis=0)
    distance = np.abs(image.astype(np.float64) - background).max(axis=-1)
    return np.clip(np.round(distance), 0, 255).astype(np.uint8)


def foreground_mask(
    image: np.ndarray,
    method: ForegroundMethod = "threshold",
    min_contrast: int = 12,
    border_margin: float = 0.05,
    grabcut_iterations: int = 5,
) -> np.ndarray:
    """H x W bool mask of the object in an H x W x 3 uint8 image.

    threshold  Otsu's threshold on the distance to the border's median colour (at least
               ``min_contrast`` grey levels), then a 3 x 3 opening and hole filling.
    grabcut    GrabCut (Rother et al. 2004) from the rectangle ``border_margin`` inside the border;
               OpenCV's global RNG is seeded with 0 first so the result is deterministic.
    Raises ValueError when no pixel differs from the border colour by ``min_contrast`` levels or
    when the method finds no foreground pixel.
    """
    check_rgb_image(image)
    distance = _border_color_distance(image)
    if int(distance.max()) < min_contrast:
        raise ValueError(
            f"image has no foreground: no pixel differs from the border colour by {min_contrast} grey levels "
            f"(largest difference {int(distance.max())})"
        )
    if method == "threshold":
        otsu, _ = cv2.threshold(distance, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask = distance > max(otsu, min_contrast - 1)
        mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
        mask = ndimage.binary_fill_holes(mask)
    elif method == "grabcut":
        mask = _grabcut(image, border_margin, grabcut_iterations)
    else:
        raise ValueError(f"method must be 'threshold' or 'grabcut', got {method!r}")
    if not mask.any():
        raise ValueError(f"image has no foreground: the {method!r} method found no object pixel")
    return mask


def _grabcut(image: np.ndarray, border_margin: float, iterations: int) -> np.ndarray:
    height, width = image.shape[:2]
    if not 0.0 < border_margin < 0.5:
        raise ValueError(f"border_margin must be in (0, 0.5), got {border_margin!r}")
    left, top = max(1, round(width * border_margin)), max(1, round(height * border_margin))
    rect = (left, top, width - 2 * left, height - 2 * top)
    if rect[2] < 1 or rect[3] < 1:
        raise ValueError(f"image of shape {image.shape} is too small for GrabCut with margin {border_margin}")
    labels = np.zeros((height, width), np.uint8)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(image, labels, rect, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_RECT)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def resolve_foreground(
    image: np.ndarray, foreground_only: bool, foreground: np.ndarray | ForegroundMethod
) -> np.ndarray | None:
    """The placement mask used by the image generators: None when ``foreground_only`` is False, else
    ``foreground`` itself (an H x W bool mask) or :func:`foreground_mask` computed with that method."""
    if not foreground_only:
        return None
    if isinstance(foreground, str):
        return foreground_mask(image, method=foreground)  # type: ignore[arg-type]
    mask = np.asarray(foreground)
    if mask.shape != image.shape[:2] or mask.dtype != bool:
        raise ValueError(
            f"foreground must be an H x W bool mask of shape {image.shape[:2]}, got {mask.dtype} {mask.shape}"
        )
    if not mask.any():
        raise ValueError("foreground mask is empty: the image has no foreground to place a defect on")
    return mask
