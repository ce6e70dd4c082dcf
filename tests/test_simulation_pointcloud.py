"""Point-cloud simulation: R3D-AD bulges/sinks and Group3AD-style noisy patches; labels must be exact."""

from __future__ import annotations

import numpy as np
import pytest

from uiad_lite.simulation import point_bulge, point_noise_patch


def sphere(count: int = 2000, radius: float = 1.0) -> np.ndarray:
    """Evenly spread points on a sphere (Fibonacci lattice), float32."""
    index = np.arange(count) + 0.5
    polar = np.arccos(1.0 - 2.0 * index / count)
    azimuth = np.pi * (1.0 + 5**0.5) * index
    ring = np.sin(polar)
    points = np.stack([np.cos(azimuth) * ring, np.sin(azimuth) * ring, np.cos(polar)], axis=1)
    return (radius * points).astype(np.float32)


def check_exact(original: np.ndarray, altered: np.ndarray, labels: np.ndarray) -> None:
    assert altered.dtype == original.dtype and altered.shape == original.shape
    assert labels.dtype == bool and labels.shape == (len(original),) and labels.any()
    assert np.isfinite(altered).all()
    np.testing.assert_array_equal(altered[~labels], original[~labels])
    assert (altered[labels] != original[labels]).any(axis=1).all()


def nearest(points: np.ndarray, centre: int, count: int) -> set[int]:
    """Brute-force indices of the ``count`` nearest points to points[centre] (itself included)."""
    distances = np.linalg.norm(points.astype(np.float64) - points[centre], axis=1)
    return set(np.argsort(distances, kind="stable")[:count].tolist())


GENERATORS = {
    "bulge_out": lambda points, rng, n: point_bulge(points, rng, n_affected=n, direction="out"),
    "bulge_in": lambda points, rng, n: point_bulge(points, rng, n_affected=n, direction="in"),
    "noise_patch": lambda points, rng, n: point_noise_patch(points, rng, n_affected=n),
}


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("seed", range(6))
def test_labels_mark_exactly_the_moved_points_of_one_local_patch(name, seed):
    points = sphere()
    before = points.copy()
    altered, labels = GENERATORS[name](points, np.random.default_rng(seed), 80)
    np.testing.assert_array_equal(points, before)
    check_exact(points, altered, labels)
    assert 0.9 * 80 <= labels.sum() <= 80
    moved = np.flatnonzero(labels)
    # some point's 80 nearest neighbours contain every moved point: the defect is one local patch
    assert any(set(moved.tolist()) <= nearest(points, int(centre), 80) for centre in moved)


@pytest.mark.parametrize("direction, outward", [("out", True), ("in", False)])
def test_bulge_direction_on_a_sphere(direction, outward):
    points = sphere()
    for seed in range(5):
        altered, labels = point_bulge(points, np.random.default_rng(seed), n_affected=100,
                                      direction=direction)
        radius_change = np.linalg.norm(altered[labels], axis=1) - np.linalg.norm(points[labels], axis=1)
        assert ((radius_change > 0) if outward else (radius_change < 0)).all()


def test_bulge_peaks_at_the_anchor_with_the_requested_magnitude():
    points = sphere()
    for seed in range(5):
        altered, labels = point_bulge(points, np.random.default_rng(seed), n_affected=100, magnitude=0.05)
        shift = np.linalg.norm(altered.astype(np.float64) - points, axis=1)
        anchor = int(np.argmax(shift))
        assert abs(shift[anchor] - 0.05) < 1e-6
        assert set(np.flatnonzero(labels).tolist()) <= nearest(points, anchor, 100)
        # displacement fades with distance from the anchor
        distance = np.linalg.norm(points - points[anchor], axis=1)
        moved = np.flatnonzero(labels)
        order = moved[np.argsort(distance[moved])]
        assert np.all(np.diff(shift[order]) <= 1e-6)


def test_bulge_strength_and_size_grow_with_their_parameters():
    points = sphere()
    mean_shift = {}
    for magnitude in (0.01, 0.03, 0.1):
        shifts = []
        for seed in range(20):
            altered, labels = point_bulge(points, np.random.default_rng(seed), n_affected=60,
                                          magnitude=magnitude)
            shifts.append(np.linalg.norm(altered[labels] - points[labels], axis=1).mean())
        mean_shift[magnitude] = np.mean(shifts)
    assert mean_shift[0.01] < mean_shift[0.03] < mean_shift[0.1]


@pytest.mark.parametrize("name", GENERATORS)
def test_labelled_points_are_one_local_patch_whose_extent_grows_with_n_affected(name):
    """The labels mark one neighbourhood: exactly the ``n`` points nearest to some point of the cloud
    (not ``n`` points scattered over it), and a larger ``n`` covers a wider part of the surface."""
    points = sphere(1500)
    extent = {}
    for n in (20, 80, 300):
        spans = []
        for seed in range(6):
            _, labels = GENERATORS[name](points, np.random.default_rng(seed), n)
            moved = set(np.flatnonzero(labels).tolist())
            assert len(moved) == n
            assert any(nearest(points, centre, n) == moved for centre in moved)
            chosen = points[labels].astype(np.float64)
            spans.append(np.linalg.norm(chosen - chosen.mean(axis=0), axis=1).max())
        extent[n] = np.mean(spans)
    assert extent[20] < extent[80] < extent[300]


def test_noise_patch_spread_matches_sigma():
    points = sphere(4000)
    altered, labels = point_noise_patch(points, np.random.default_rng(1), n_affected=600, sigma=0.02)
    check_exact(points, altered, labels)
    offsets = (altered[labels].astype(np.float64) - points[labels])
    assert abs(offsets.std() - 0.02) < 0.002
    assert abs(offsets.mean()) < 0.003
    spreads = [np.abs(point_noise_patch(points, np.random.default_rng(s), n_affected=100, sigma=sigma)[0]
                      - points).max() for s in range(5) for sigma in (0.001, 0.01)]
    assert np.mean(spreads[0::2]) < np.mean(spreads[1::2])


@pytest.mark.parametrize("name", GENERATORS)
def test_seeded(name):
    points = sphere()
    first = GENERATORS[name](points, np.random.default_rng(2), 50)
    again = GENERATORS[name](points, np.random.default_rng(2), 50)
    other = GENERATORS[name](points, np.random.default_rng(3), 50)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("generate", [point_bulge, point_noise_patch])
@pytest.mark.parametrize(
    "points, kwargs, message",
    [
        (sphere(50), {"n_affected": 50}, "smaller than the number of points"),
        (sphere(50), {"n_affected": 80}, "smaller than the number of points"),
        (sphere(50), {"n_affected": 0}, "positive integer"),
        (sphere(50)[:, :2], {"n_affected": 5}, "N x 3"),
        (np.full((50, 3), np.nan, np.float32), {"n_affected": 5}, "NaN"),
        (np.ones((50, 3), np.int64), {"n_affected": 5}, "floating"),
        (np.zeros((50, 3), np.float32), {"n_affected": 5}, "coincide"),
    ],
)
def test_bad_input_raises_clear_errors(generate, points, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(points, np.random.default_rng(0), **kwargs)


def test_bad_direction_magnitude_and_sigma():
    points = sphere(100)
    with pytest.raises(ValueError, match="direction"):
        point_bulge(points, np.random.default_rng(0), n_affected=10, direction="up")
    with pytest.raises(ValueError, match="magnitude"):
        point_bulge(points, np.random.default_rng(0), n_affected=10, magnitude=0.0)
    with pytest.raises(ValueError, match="sigma"):
        point_noise_patch(points, np.random.default_rng(0), n_affected=10, sigma=-1.0)


def test_simulate_on_sample_alters_points_and_sets_point_labels():
    from uiad_lite.data.sample import Sample
    from uiad_lite.simulation import simulate_on_sample

    sample = Sample(category="ball", split="test", points=sphere(500))
    simulated = simulate_on_sample(sample, np.random.default_rng(4), point_bulge, modality="points",
                                   n_affected=30)
    expected_points, expected_labels = point_bulge(sphere(500), np.random.default_rng(4), n_affected=30)
    np.testing.assert_array_equal(simulated.points, expected_points)
    np.testing.assert_array_equal(simulated.point_labels, expected_labels)
    assert simulated.mask is None and simulated.label == 1
    assert simulated.meta["simulated_modality"] == "points"
    with pytest.raises(ValueError, match="no image"):
        simulate_on_sample(sample, np.random.default_rng(0), point_bulge)


def test_bulge_push_follows_the_lines_to_the_viewpoint_or_the_patch_normal():
    points = sphere(2000)
    radius = np.linalg.norm(points - points.mean(axis=0), axis=1).max()
    for seed in range(5):
        altered, labels = point_bulge(points, np.random.default_rng(seed), n_affected=80, push="viewpoint")
        start = points[labels].astype(np.float64)
        moves = altered[labels].astype(np.float64) - start
        lengths = np.linalg.norm(moves, axis=1)
        clear = lengths > 0.2 * lengths.max()  # float32 rounding blurs the direction of tiny moves at the rim
        start, moves = start[clear], moves[clear]
        units = moves / np.linalg.norm(moves, axis=1, keepdims=True)
        # R3D-AD: every moved point travels along its own line towards one viewpoint; the lines meet there
        projectors = np.eye(3)[None] - units[:, :, None] * units[:, None, :]
        meeting = np.linalg.solve(projectors.sum(0), np.einsum("nij,nj->i", projectors, start))
        towards = (meeting - start) / np.linalg.norm(meeting - start, axis=1, keepdims=True)
        assert np.allclose(towards, units, atol=1e-3)
        assert np.linalg.norm(meeting - points.mean(axis=0)) == pytest.approx(2 * radius, rel=1e-3)
        altered, labels = point_bulge(points, np.random.default_rng(seed), n_affected=80, push="normal")
        moves = altered[labels].astype(np.float64) - points[labels]
        lengths = np.linalg.norm(moves, axis=1)
        units = moves[lengths > 0.2 * lengths.max()] / lengths[lengths > 0.2 * lengths.max(), None]
        assert np.allclose(units, units[0], atol=1e-3)  # one direction for the whole patch
    with pytest.raises(ValueError, match="push must be 'viewpoint' or 'normal'"):
        point_bulge(points, np.random.default_rng(0), n_affected=10, push="up")


def test_noise_patch_size_grows_with_n_affected():
    points = sphere(2000)
    rng = np.random.default_rng
    sizes = [point_noise_patch(points, rng(0), n_affected=n)[1].sum() for n in (16, 64, 256)]
    assert sizes == [16, 64, 256]  # every point of the patch moves (continuous noise), no other point
