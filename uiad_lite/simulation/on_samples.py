"""Apply any simulation generator to a :class:`~uiad_lite.data.sample.Sample` (pseudo-anomalous samples)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from uiad_lite.data.sample import Sample

Modality = Literal["image", "xyz", "points"]


def simulate_on_sample(
    sample: Sample,
    rng: np.random.Generator,
    generator: Callable[..., tuple[np.ndarray, np.ndarray]],
    modality: Modality = "image",
    **kwargs: Any,
) -> Sample:
    """A copy of ``sample`` with ``generator(sample.<modality>, rng=rng, **kwargs)`` applied.

    The altered modality replaces the original; the ground truth is merged into the sample's own
    (``mask`` for image / xyz generators, ``point_labels`` for point generators, OR-ed with any
    existing annotation), ``label`` becomes 1 and ``defect`` names the generator. Other modalities
    are left as they are, so an RGB+3D sample altered in one modality only is a deliberate mismatch.
    """
    if modality not in ("image", "xyz", "points"):
        raise ValueError(f"modality must be 'image', 'xyz' or 'points', got {modality!r}")
    sample.require(modality)
    altered, truth = generator(getattr(sample, modality), rng=rng, **kwargs)
    truth_field = "point_labels" if modality == "points" else "mask"
    previous = getattr(sample, truth_field)
    if previous is not None:
        if previous.shape != truth.shape:
            raise ValueError(
                f"sample {truth_field} has shape {previous.shape}, the generator returned {truth.shape}"
            )
        truth = truth | previous.astype(bool)
    name = getattr(generator, "__name__", type(generator).__name__)
    return dataclasses.replace(
        sample,
        **{modality: altered, truth_field: truth},
        label=1,
        defect=f"simulated_{name}",
        meta={**sample.meta, "simulated": name, "simulated_modality": modality},
    )
