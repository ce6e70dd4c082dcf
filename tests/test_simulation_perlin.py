"""Perlin noise: range, lattice zeros, determinism, tileable seams, frequency control."""

from __future__ import annotations

import numpy as np
import pytest

from uiad_lite.simulation import perlin_noise, random_perlin_field


def _roughness(noise: np.ndarray) -> float:
    """Mean absolute difference between horizontally adjacent pixels."""
    return float(np.abs(np.diff(noise, axis=1)).mean())


@pytest.mark.parametrize("octaves, persistence", [(1, 0.5), (3, 0.5), (5, 0.9)])
def test_values_stay_in_unit_range_and_use_it(octaves, persistence):
    rng = np.random.default_rng(0)
    largest = 0.0
    for _ in range(30):
        noise = perlin_noise((48, 40), (3, 5), rng, octaves=octaves, persistence=persistence)
        assert noise.shape == (48, 40) and noise.dtype == np.float64
        assert np.all(noise >= -1.0) and np.all(noise <= 1.0)
        largest = max(largest, float(np.abs(noise).max()))
    assert largest > 0.5  # the normalisation does not squash the noise towards zero


def test_single_octave_is_zero_on_lattice_points_only():
    noise = perlin_noise((64, 96), (4, 6), np.random.default_rng(3))
    lattice = noise[::16, ::16]  # 64 / 4 and 96 / 6 pixels per cell
    np.testing.assert_allclose(lattice, 0.0, atol=1e-12)
    off_lattice = noise[8::16, 8::16]
    assert np.abs(off_lattice).mean() > 0.05


def test_same_seed_same_noise_different_seed_different_noise():
    first = perlin_noise((32, 32), 4, np.random.default_rng(7), octaves=3)
    again = perlin_noise((32, 32), 4, np.random.default_rng(7), octaves=3)
    other = perlin_noise((32, 32), 4, np.random.default_rng(8), octaves=3)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("seed", range(5))
def test_tileable_noise_has_no_seam(seed):
    tiled = perlin_noise((128, 128), (4, 4), np.random.default_rng(seed), octaves=3, tileable=True)
    plain = perlin_noise((128, 128), (4, 4), np.random.default_rng(seed), octaves=3, tileable=False)
    for noise, seamless in ((tiled, True), (plain, False)):
        interior = np.abs(np.diff(noise, axis=1)).mean()
        seam_columns = np.abs(noise[:, 0] - noise[:, -1]).mean()  # step across the seam of np.tile
        seam_rows = np.abs(noise[0, :] - noise[-1, :]).mean()
        if seamless:
            assert seam_columns < 2.0 * interior and seam_rows < 2.0 * interior
        else:
            assert seam_columns > 3.0 * interior and seam_rows > 3.0 * interior


def test_more_lattice_cells_means_higher_frequency():
    rng = np.random.default_rng(11)
    roughness = [np.mean([_roughness(perlin_noise((128, 128), scale, rng)) for _ in range(5)])
                 for scale in (1, 2, 4, 8, 16)]
    assert all(a < b for a, b in zip(roughness, roughness[1:], strict=False)), roughness


def test_octaves_add_fine_detail():
    rng = np.random.default_rng(12)
    roughness = [np.mean([_roughness(perlin_noise((128, 128), 2, rng, octaves=k)) for _ in range(5)])
                 for k in (1, 2, 4)]
    assert roughness[0] < roughness[1] < roughness[2], roughness


def test_scale_per_axis_is_respected():
    noise = perlin_noise((64, 64), (1, 16), np.random.default_rng(2))
    vertical = np.abs(np.diff(noise, axis=0)).mean()
    horizontal = np.abs(np.diff(noise, axis=1)).mean()
    assert horizontal > 4 * vertical


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": (0, 8), "scale": 2}, "shape"),
        ({"shape": (8, 8, 8), "scale": 2}, "shape"),
        ({"shape": 8, "scale": 0}, "scale"),
        ({"shape": 8, "scale": 1.5}, "scale"),
        ({"shape": 8, "scale": 2, "octaves": 0}, "octaves"),
        ({"shape": 8, "scale": 2, "persistence": 0.0}, "persistence"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        perlin_noise(rng=np.random.default_rng(0), **kwargs)


def test_random_perlin_field_is_deterministic_bounded_and_varied():
    fields = [random_perlin_field((64, 80), np.random.default_rng(seed)) for seed in (0, 0, 1)]
    np.testing.assert_array_equal(fields[0], fields[1])
    assert not np.allclose(fields[0], fields[2])
    for field in fields:
        assert field.shape == (64, 80)
        assert np.all(np.abs(field) <= 1.0)
    unrotated = random_perlin_field((64, 80), np.random.default_rng(5), scale_exponents=(3, 4), rotate=False)
    np.testing.assert_allclose(unrotated[::8, ::10], 0.0, atol=1e-12)  # 8 x 8 cells, no rotation
    with pytest.raises(ValueError, match="scale_exponents"):
        random_perlin_field((8, 8), np.random.default_rng(0), scale_exponents=(3, 3))
