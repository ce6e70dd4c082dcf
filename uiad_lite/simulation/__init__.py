"""Anomaly simulation at every level of the survey's Table 9: image, feature, depth and point cloud.

Every generator takes an explicit ``numpy.random.Generator`` and returns the altered input together
with its exact ground truth (H x W bool mask or N bool labels marking exactly what changed).
"""

from uiad_lite.simulation.depth import depth_bump
from uiad_lite.simulation.feature import gaussian_feature_noise, gradient_guided_noise
from uiad_lite.simulation.foreground import foreground_mask
from uiad_lite.simulation.image import cutpaste, draem_perlin, jitter_colors, nsa_poisson
from uiad_lite.simulation.on_samples import (
    SIMULATION_NAMES,
    SIMULATIONS,
    check_simulation,
    simulate_images,
    simulate_on_sample,
    simulate_sample,
)
from uiad_lite.simulation.perlin import perlin_noise, random_perlin_field
from uiad_lite.simulation.pointcloud import point_bulge, point_noise_patch
from uiad_lite.simulation.texture import augment_texture, synthetic_texture

__all__ = [
    "SIMULATIONS",
    "SIMULATION_NAMES",
    "augment_texture",
    "check_simulation",
    "cutpaste",
    "depth_bump",
    "draem_perlin",
    "foreground_mask",
    "gaussian_feature_noise",
    "gradient_guided_noise",
    "jitter_colors",
    "nsa_poisson",
    "perlin_noise",
    "point_bulge",
    "point_noise_patch",
    "random_perlin_field",
    "simulate_images",
    "simulate_on_sample",
    "simulate_sample",
    "synthetic_texture",
]
