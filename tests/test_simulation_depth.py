"""Depth-level simulation: Perlin-masked smooth bumps and dents on depth images and xyz maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from uiad_lite.simulation import depth_bump

SIZE = 64


def depth_image() -> np.ndarray:
    """A tilted plane 0.5 m away with a missing corner and 5 % scattered missing pixels (zeros)."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    depth = (0.5 + 0.001 * cols + 0.0005 * rows).astype(np.float32)
    depth[:12, :12] = 0.0
    depth[np.random.default_rng(0).random((SIZE, SIZE)) < 0.05] = 0.0
    return depth


def xyz_map() -> np.ndarray:
    """Organised cloud in MVTec 3D-AD layout: x, y from the pixel grid, z from the depth, zeros = missing."""
    depth = depth_image()
    rows, cols = np.mgrid[:SIZE, :SIZE]
    xyz = np.stack([(cols - 32) * 0.001 * depth, (rows - 32) * 0.001 * depth, depth], axis=-1)
    return xyz.astype(np.float32)


def check_exact(original: np.ndarray, altered: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Assert the mask is exact and return dz."""
    assert altered.dtype == original.dtype and altered.shape == original.shape
    assert mask.dtype == bool and mask.shape == original.shape[:2] and mask.any()
    assert np.isfinite(altered).all()
    np.testing.assert_array_equal(altered[~mask], original[~mask])
    z_before = original if original.ndim == 2 else original[..., 2]
    z_after = altered if altered.ndim == 2 else altered[..., 2]
    assert (z_after[mask] != z_before[mask]).all()
    if original.ndim == 3:  # only z moves
        np.testing.assert_array_equal(altered[..., :2], original[..., :2])
    return (z_after.astype(np.float64) - z_before.astype(np.float64))


@pytest.mark.parametrize("make", [depth_image, xyz_map])
@pytest.mark.parametrize("seed", range(6))
def test_mask_is_exact_and_missing_points_stay_zero(make, seed):
    data = make()
    before = data.copy()
    valid = (data != 0) if data.ndim == 2 else (data != 0).any(axis=-1)
    altered, mask = depth_bump(data, np.random.default_rng(seed))
    np.testing.assert_array_equal(data, before)
    check_exact(data, altered, mask)
    assert not (mask & ~valid).any()
    assert (altered[~valid] == 0).all()


@pytest.mark.parametrize("direction, sign", [("out", -1.0), ("in", 1.0)])
def test_direction_sets_the_sign_of_the_z_change(direction, sign):
    data = depth_image()
    for seed in range(5):
        altered, mask = depth_bump(data, np.random.default_rng(seed), magnitude=0.01, direction=direction)
        dz = check_exact(data, altered, mask)
        assert (np.sign(dz[mask]) == sign).all()


def test_random_direction_gives_one_sign_per_connected_region():
    data = depth_image()
    signs_seen = set()
    for seed in range(10):
        altered, mask = depth_bump(data, np.random.default_rng(seed), magnitude=0.01, threshold=0.2)
        dz = check_exact(data, altered, mask)
        labels, count = ndimage.label(mask)
        for component in range(1, count + 1):
            component_signs = np.unique(np.sign(dz[labels == component]))
            assert len(component_signs) == 1
            signs_seen.add(float(component_signs[0]))
    assert signs_seen == {-1.0, 1.0}


def test_plateau_height_is_the_magnitude_and_the_rim_starts_near_zero():
    """Away from holes (a clean plane) the plateau reaches the magnitude; pixels touching the untouched
    surface move by at most smoothstep(1 / rim_width) of it."""
    plane = np.full((SIZE, SIZE), 0.5, np.float32)
    for seed in range(5):
        altered, mask = depth_bump(plane, np.random.default_rng(seed), magnitude=0.02, direction="in",
                                   threshold=0.1, rim_width=4.0)
        dz = check_exact(plane, altered, mask)
        assert dz.max() <= 0.02 * (1 + 1e-4)
        assert dz.max() >= 0.02 * (1 - 1e-4)
        outline = mask & ndimage.binary_dilation(~mask)  # masked pixels with an unmasked 4-neighbour
        ramp = 1.0 / 4.0
        assert dz[outline].max() <= 0.02 * ramp * ramp * (3 - 2 * ramp) * (1 + 1e-3)


def test_threshold_controls_area_and_magnitude_controls_strength():
    data = depth_image()
    area = {t: np.mean([depth_bump(data, np.random.default_rng(s), threshold=t)[1].sum() for s in range(20)])
            for t in (0.1, 0.3, 0.5)}
    assert area[0.1] > area[0.3] > area[0.5], area
    strength = {}
    for magnitude in (0.001, 0.005, 0.02):
        changes = [np.abs(check_exact(data, *depth_bump(data, np.random.default_rng(s), magnitude=magnitude)))
                   .max() for s in range(10)]
        strength[magnitude] = np.mean(changes)
    assert strength[0.001] < strength[0.005] < strength[0.02]


def test_default_magnitude_is_one_percent_of_the_median_depth():
    plane = np.full((SIZE, SIZE), 2.0, np.float32)
    altered, mask = depth_bump(plane, np.random.default_rng(1), threshold=0.0, rim_width=1.0)
    assert np.isclose(np.abs(altered - plane).max(), 0.02, rtol=1e-4)
    low_high = [np.abs(depth_bump(plane, np.random.default_rng(s), magnitude=(0.1, 0.2), threshold=0.0,
                                  rim_width=1.0)[0] - plane).max() for s in range(5)]
    assert all(0.1 - 1e-5 <= value <= 0.2 + 1e-5 for value in low_high)


def test_foreground_restricts_the_defect():
    data = depth_image()
    right = np.zeros((SIZE, SIZE), bool)
    right[:, 40:] = True
    for seed in range(5):
        altered, mask = depth_bump(data, np.random.default_rng(seed), foreground=right, threshold=0.0)
        check_exact(data, altered, mask)
        assert not mask[:, :40].any()


def test_seeded():
    data = xyz_map()
    first = depth_bump(data, np.random.default_rng(3))
    again = depth_bump(data, np.random.default_rng(3))
    other = depth_bump(data, np.random.default_rng(4))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        (np.zeros((16, 16), np.float32), {}, "no valid point"),
        (np.zeros((16, 16, 3), np.float32), {}, "no valid point"),
        (np.full((16, 16), np.nan, np.float32), {}, "NaN"),
        (np.ones((16, 16), np.int32), {}, "floating-point"),
        (np.ones((16, 16, 4), np.float32), {}, "H x W x 3"),
        (np.full((16, 16), 0.01, np.float32), {"magnitude": 1.0, "direction": "out", "threshold": -1.0},
         "below zero"),
        (np.ones((16, 16), np.float32), {"direction": "sideways"}, "direction"),
        (np.ones((16, 16), np.float32), {"magnitude": -0.1}, "positive"),
        (np.ones((16, 16), np.float32), {"rim_width": 0}, "rim_width"),
        (np.ones((16, 16), np.float32), {"foreground": np.zeros((16, 16), bool)}, "foreground"),
        (np.ones((16, 16), np.float32), {"threshold": 0.999999, "max_attempts": 2}, "changed no valid point"),
    ],
)
def test_bad_input_raises_clear_errors(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        depth_bump(data, np.random.default_rng(0), **kwargs)


def test_simulate_on_sample_alters_the_xyz_map_and_sets_the_mask():
    from uiad_lite.data.sample import Sample
    from uiad_lite.simulation import simulate_on_sample

    sample = Sample(category="plane", split="test", xyz=xyz_map())
    simulated = simulate_on_sample(sample, np.random.default_rng(2), depth_bump, modality="xyz",
                                   magnitude=0.01)
    expected_xyz, expected_mask = depth_bump(xyz_map(), np.random.default_rng(2), magnitude=0.01)
    np.testing.assert_array_equal(simulated.xyz, expected_xyz)
    np.testing.assert_array_equal(simulated.mask, expected_mask)
    assert simulated.label == 1 and simulated.defect == "simulated_depth_bump"
    assert sample.mask is None and sample.label == 0
