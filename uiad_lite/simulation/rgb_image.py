"""Input check shared by the image-level generators: an H x W x 3 uint8 RGB array."""

from __future__ import annotations

import numpy as np


def check_rgb_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` if it is an H x W x 3 uint8 array, else raise a ValueError naming ``name``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        if isinstance(image, np.ndarray):
            described = f"{image.dtype} array of shape {image.shape}"
        else:
            described = type(image).__name__
        raise ValueError(f"{name} must be an H x W x 3 uint8 RGB array, got {described}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2 x 2 pixels, got shape {image.shape}")
    return image
