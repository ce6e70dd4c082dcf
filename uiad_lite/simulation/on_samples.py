"""Apply simulation generators to samples and image sets (pseudo-anomalous training data).

:func:`simulate_on_sample` applies any generator to one modality of a
:class:`~uiad_lite.data.sample.Sample`; :data:`SIMULATIONS` names the image-level generators behind one
signature, which :func:`simulate_images` / :func:`simulate_sample` apply to a set of normal images (the
training data of the discriminative one-class methods, chapters 05 and 14).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from uiad_lite.data.sample import Sample
from uiad_lite.simulation.image import cutpaste, draem_perlin, nsa_poisson

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


# ----------------------------------------------------------------------------------------------
# the image-level simulations, behind one signature: (image, other normal image, rng, **kwargs)

ImageSimulation = Callable[..., tuple[np.ndarray, np.ndarray]]


def _cutpaste_patch(image: np.ndarray, other: np.ndarray, rng: np.random.Generator, **kwargs: Any):
    return cutpaste(image, rng, variant="patch", **kwargs)


def _cutpaste_scar(image: np.ndarray, other: np.ndarray, rng: np.random.Generator, **kwargs: Any):
    return cutpaste(image, rng, variant="scar", **kwargs)


def _draem(image: np.ndarray, other: np.ndarray, rng: np.random.Generator, **kwargs: Any):
    return draem_perlin(image, rng, **kwargs)


def _nsa(image: np.ndarray, other: np.ndarray, rng: np.random.Generator, **kwargs: Any):
    return nsa_poisson(image, other, rng, **kwargs)


#: Image-level simulations by name (survey Table 9, RGB rows); "mix" draws one of them per image.
SIMULATIONS: dict[str, ImageSimulation] = {
    "cutpaste": _cutpaste_patch,
    "cutpaste_scar": _cutpaste_scar,
    "draem": _draem,
    "nsa": _nsa,
}
SIMULATION_NAMES: tuple[str, ...] = (*SIMULATIONS, "mix")


def check_simulation(name: str) -> str:
    """``name`` if it is a known simulation, else a ValueError listing the known ones."""
    if name not in SIMULATION_NAMES:
        raise ValueError(f"unknown simulation {name!r}; choose one of {list(SIMULATION_NAMES)}")
    return name


def simulate_images(
    images: Sequence[np.ndarray],
    simulation: str,
    rng: np.random.Generator,
    per_image: int = 1,
    **kwargs: Any,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """``per_image`` pseudo-anomalous copies of every image: (altered images, masks, generator names).

    NSA blends in a patch of *another* normal image, drawn at random from ``images``; "mix" picks one
    of the four generators uniformly per copy (``kwargs`` then must suit all of them, so pass none).
    """
    check_simulation(simulation)
    if per_image < 1:
        raise ValueError(f"per_image must be a positive integer, got {per_image!r}")
    if len(images) == 0:
        raise ValueError("simulate_images needs at least one normal image")
    if simulation in ("nsa", "mix") and len(images) < 2:
        raise ValueError(
            f"simulation {simulation!r} blends in another normal image: give at least two images"
        )
    altered, masks, names = [], [], []
    for index, image in enumerate(images):
        for _ in range(per_image):
            name = simulation if simulation != "mix" else str(rng.choice(list(SIMULATIONS)))
            other = image
            if len(images) > 1:  # another image than this one (only NSA uses it)
                other = images[(index + 1 + int(rng.integers(len(images) - 1))) % len(images)]
            fake, mask = SIMULATIONS[name](image, other, rng, **kwargs)
            altered.append(fake)
            masks.append(mask)
            names.append(name)
    return altered, masks, names


def simulate_sample(
    sample: Sample,
    simulation: str,
    rng: np.random.Generator,
    other_image: np.ndarray | None = None,
    **kwargs: Any,
) -> Sample:
    """A pseudo-anomalous copy of ``sample`` (image, mask, label 1, defect ``"simulated_<name>"``).
    ``other_image`` is the second normal image NSA blends from (required for "nsa" and "mix")."""
    check_simulation(simulation)
    sample.require("image")
    name = simulation if simulation != "mix" else str(rng.choice(list(SIMULATIONS)))
    if name == "nsa" and other_image is None:
        raise ValueError("simulation 'nsa' blends in a patch of another normal image: pass other_image")
    fake, mask = SIMULATIONS[name](
        sample.image, other_image if other_image is not None else sample.image, rng, **kwargs
    )
    return dataclasses.replace(
        sample,
        image=fake,
        mask=mask,
        label=1,
        defect=f"simulated_{name}",
        meta={**sample.meta, "simulated": name, "simulated_modality": "image"},
    )
