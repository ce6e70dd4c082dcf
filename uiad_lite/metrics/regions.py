"""Ground-truth regions: maximal 8-connected components of each mask, numbered across images.

Used by AU-PRO (Bergmann et al., MVTec AD, IJCV 2021: one overlap value per connected defect
region) and by the instance metrics of DeSTSeg (Zhang et al., CVPR 2023: an instance is a
maximal connected ground-truth area). Components never cross image borders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Regions:
    """Region id (0..K-1) of every anomalous pixel, in C order of the (N, H, W) masks, and sizes."""

    pixel_region: np.ndarray
    sizes: np.ndarray

    @property
    def count(self) -> int:
        return int(self.sizes.size)


def label_regions(masks: np.ndarray) -> Regions:
    """Label the 8-connected components of bool ``masks`` (N, H, W), one image at a time.

    Only the labels of anomalous pixels are kept, so memory stays O(anomalous pixels).
    """
    pixel_region: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    offset = 0
    for mask in masks:
        if not mask.any():
            continue
        labelled, n_components = ndimage.label(mask, structure=EIGHT_CONNECTED)
        ids = labelled[mask].astype(np.int64) - 1
        pixel_region.append(ids + offset)
        sizes.append(np.bincount(ids, minlength=n_components))
        offset += n_components
    if not pixel_region:
        return Regions(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return Regions(np.concatenate(pixel_region), np.concatenate(sizes).astype(np.int64))
