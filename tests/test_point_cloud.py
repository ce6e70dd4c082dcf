"""3D descriptors (features/point_features.py), registration and the chapter-09 detectors (BTF, Reg3D-AD)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from uiad_lite import data, methods, metrics
from uiad_lite.data import synthetic_points
from uiad_lite.data.open3d_support import import_open3d
from uiad_lite.data.sample import Sample
from uiad_lite.features.point_features import organised_fpfh, point_fpfh, pool_to_grid, raw_patches
from uiad_lite.methods import NotFittedError
from uiad_lite.methods.point_cloud import Reg3DAD, register


def _bumpy_organised(size: int = 24) -> np.ndarray:
    """A tilted plane with a bump, metres, with a hole of missing points and a zero border row."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = (cols - size / 2) * 0.002, (rows - size / 2) * 0.002
    z = 0.25 + 0.01 * x - 0.004 * np.exp(-((x - 0.004) ** 2 + y**2) / 1e-4)
    xyz = np.stack([x + 1e-4, y + 1e-4, z], axis=-1).astype(np.float32)  # no coordinate exactly zero
    xyz[0] = 0
    xyz[10:13, 4:7] = 0
    return xyz


def _asymmetric_surface(count: int, rng: np.random.Generator) -> np.ndarray:
    """A wavy sheet with one off-centre bump: no rigid symmetry maps it onto itself (millimetres)."""
    x, y = rng.uniform(-30, 30, count), rng.uniform(-30, 30, count)
    z = 3 * np.sin(2 * np.pi * x / 30 + 0.7) * np.cos(2 * np.pi * y / 40) + 6 * np.exp(
        -((x - 14) ** 2 + (y - 9) ** 2) / 40
    )
    return np.stack([x, y, z], axis=1)


# ------------------------------------------------------------------------------------------ descriptors
def test_organised_fpfh_matches_open3d_on_the_valid_points_and_is_zero_elsewhere() -> None:
    o3d = import_open3d()
    xyz = _bumpy_organised()
    ours = organised_fpfh(xyz, voxel_size=0.05, cloud_size=None)
    valid = np.all(xyz != 0, axis=-1)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[valid].astype(np.float64)))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=0.1, max_nn=30))
    reference = o3d.pipelines.registration.compute_fpfh_feature(
        cloud, o3d.geometry.KDTreeSearchParamHybrid(radius=0.25, max_nn=100)
    ).data.T
    assert ours.shape == (24, 24, 33)
    np.testing.assert_allclose(ours[valid], reference, rtol=1e-5, atol=1e-4)
    assert not ours[~valid].any() and ours[valid].any(axis=1).all()


def test_pooling_averages_valid_pixels_only_when_masked() -> None:
    features = np.ones((12, 12, 2), dtype=np.float32) * np.array([2.0, 5.0], dtype=np.float32)
    valid = np.ones((12, 12), dtype=bool)
    valid[:, :6] = False
    masked, fraction = pool_to_grid(features * valid[..., None], valid, grid=2, masked=True)
    plain, _ = pool_to_grid(features * valid[..., None], valid, grid=2, masked=False)
    assert masked.shape == (2, 2, 2) and fraction.shape == (2, 2)
    np.testing.assert_allclose(masked[0], 2.0, rtol=1e-6)  # even half-empty cells keep the valid value
    np.testing.assert_allclose(masked[1], 5.0, rtol=1e-6)
    assert (plain[0, :, 0] < 2.0).all() and (plain[0, :, 0] > 0).all()  # zeros pulled the plain mean down
    # 3x3 means of the 12-wide image are 10 wide; each grid half pools 5 of them: (2/3 + 4) / 5 and (1/3) / 5
    assert fraction[0, 1] == pytest.approx(14 / 15) and fraction[0, 0] == pytest.approx(1 / 15)


def test_raw_patches_released_strips_and_square_cells() -> None:
    xyz = np.random.default_rng(0).uniform(1, 2, size=(8, 8, 3)).astype(np.float32)
    strips, _ = raw_patches(xyz, grid=2, cloud_size=None, layout="strips")
    np.testing.assert_array_equal(strips[:, 0, 1], xyz[..., 2].reshape(-1)[16:32])  # row-major runs of z
    cells, fraction = raw_patches(xyz, grid=2, cloud_size=None, layout="cells")
    np.testing.assert_array_equal(cells[:, 1, 0].reshape(16, 3), xyz[4:, :4].reshape(16, 3))
    assert (fraction == 1).all()


def test_point_fpfh_on_a_downsampled_cloud_owns_every_point() -> None:
    points = _asymmetric_surface(3000, np.random.default_rng(1))
    full = point_fpfh(points, voxel_size=2.0)
    down = point_fpfh(points, voxel_size=2.0, downsample=2.0)
    assert full.features.shape == (3000, 33) and (full.owner == np.arange(3000)).all()
    assert len(down.points) < 1500 and down.owner.shape == (3000,)
    nearest = np.linalg.norm(points[:, None] - down.points[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(down.owner, nearest)


# ------------------------------------------------------------------------------------------ registration
@pytest.mark.parametrize("degrees", [40.0, 120.0, 179.0])
def test_registration_recovers_a_known_rigid_motion(degrees) -> None:
    rng = np.random.default_rng(int(degrees))
    target = _asymmetric_surface(4000, rng)
    source_surface = _asymmetric_surface(4000, rng)  # another sampling of the same surface
    axis = rng.normal(size=3)
    rotation = Rotation.from_rotvec(np.deg2rad(degrees) * axis / np.linalg.norm(axis)).as_matrix()
    shift = np.array([25.0, -40.0, 12.0])
    source = source_surface @ rotation.T + shift
    result = register(source, target, voxel_size=2.0)
    recovered = result.transformation[:3, :3]
    angle_error = np.rad2deg(np.arccos(np.clip((np.trace(recovered @ rotation) - 1) / 2, -1, 1)))
    assert angle_error < 2.0, angle_error
    assert np.abs(result.apply(source) - source_surface).max() < 1.0
    assert result.fitness > 0.8 and result.inlier_rmse < 1.0


# ------------------------------------------------------------------------------------------ detectors
def _moved_point_split(rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    train = []
    for index in range(3):
        cloud = synthetic_points.make_point_sample("panel", "good", 2500, rng)
        train.append(Sample("panel", "train", points=cloud["points"], path=f"train/{index}.pcd"))
    test = []
    for index, defect in enumerate(["good"] * 3 + ["bulge", "sink"] * 2):
        cloud = synthetic_points.make_point_sample("panel", defect, 2500, rng)
        motion = Rotation.from_rotvec(rng.uniform(-np.pi, np.pi) * np.array([0.3, 0.2, 0.93])).as_matrix()
        points = cloud["points"] @ motion.T + rng.uniform(-30, 30, 3)
        test.append(
            Sample(
                "panel",
                "test",
                label=int(defect != "good"),
                defect=defect,
                path=f"test/{index}.pcd",
                points=points.astype(np.float32),
                point_labels=cloud["labels"],
            )
        )
    return train, test


def test_reg3dad_finds_a_geometry_defect_where_a_raw_coordinate_bank_is_at_chance() -> None:
    train, test = _moved_point_split()
    detector = methods.create("reg3dad", preset="quick", progress=False, device="cpu").fit(train)
    prediction = detector.predict(test)
    found = metrics.evaluate(prediction, test)
    assert found["pt_auroc"] > 0.85 and found["i_auroc"] > 0.8, dict(found)
    assert len(prediction.point_scores) == len(test)
    assert all(len(s) == len(t.points) for s, t in zip(prediction.point_scores, test, strict=True))
    assert (detector.registration_table()["fitness"] > 0.5).all()
    raw = Reg3DAD(register=False, features=("xyz",), progress=False).fit(train)
    chance = metrics.evaluate(raw.predict(test), test)
    assert chance["pt_auroc"] < 0.7, dict(chance)


def test_btf_fpfh_sees_geometry_defects_and_misses_colour_only_ones() -> None:
    split = data.load("synthetic", category="cookie", size="tiny")
    detector = methods.create(
        "btf_fpfh", preset="quick", cloud_size=64, grid=16, progress=False, device="cpu"
    )
    prediction = detector.fit(split.train).predict(split.test)
    assert prediction.maps.shape == (len(split.test), *split.test[0].mask.shape)
    by_kind = {}
    for kind, defects in {"geometry": ("dent", "bump"), "colour": ("stain",)}.items():
        chosen = [i for i, s in enumerate(split.test) if s.defect in defects]
        by_kind[kind] = metrics.evaluate(
            methods.Prediction(prediction.scores[chosen], prediction.maps[chosen]),
            [split.test[i] for i in chosen],
        )["p_auroc"]
    assert by_kind["geometry"] > 0.9 and by_kind["colour"] < 0.75, by_kind


def test_btf_raw_maps_come_at_mask_resolution_and_missing_points_never_vote() -> None:
    split = data.load("synthetic", category="cookie", size="tiny")
    detector = methods.create(
        "btf_raw", preset="quick", cloud_size=64, grid=16, raw_layout="cells", progress=False, device="cpu"
    )  # released "strips" are runs of a raster row, not square cells
    detector.fit(split.train)
    emptied = replace(split.test[0], xyz=split.test[0].xyz.copy())
    emptied.xyz[:, :32] = 0  # the left half has no points
    prediction = detector.predict([emptied])
    assert prediction.maps.shape == (1, *split.test[0].mask.shape)
    assert prediction.maps[0, :, :20].max() < 1e-3 * max(prediction.maps[0].max(), 1e-12)


# ------------------------------------------------------------------------------------------ bad input
def test_bad_inputs_get_clear_errors_and_failed_registrations_warn() -> None:
    split = data.load("synthetic", category="cookie", size="tiny")
    btf = methods.create("btf_fpfh", preset="quick", cloud_size=64, grid=16, progress=False, device="cpu")
    with pytest.raises(NotFittedError):
        btf.predict(split.test[:1])
    with pytest.raises(ValueError, match="has no xyz"):
        btf.fit([replace(split.train[0], xyz=None)])
    zero = replace(split.train[0], xyz=np.zeros_like(split.train[0].xyz), path="bad/zero.tiff", meta={})
    with pytest.raises(ValueError, match=r"bad/zero\.tiff.*all zeros"):
        btf.fit([zero])
    broken = split.train[0].xyz.copy()
    broken[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        btf.fit([replace(split.train[0], xyz=broken)])

    train, test = _moved_point_split()
    reg = Reg3DAD(progress=False)
    with pytest.raises(NotFittedError):
        reg.predict(test[:1])
    with pytest.raises(ValueError, match="has no points"):
        reg.fit([replace(train[0], points=None)])
    with pytest.raises(ValueError, match=r"tiny\.pcd.*only 5 points"):
        reg.fit([replace(train[0], points=train[0].points[:5], path="tiny.pcd")])
    with pytest.raises(ValueError, match=r"inf\.pcd.*NaN or infinite"):
        bad = train[0].points.copy()
        bad[0, 1] = np.inf
        reg.fit([replace(train[0], points=bad, path="inf.pcd")])
    reg.fit(train)
    blob = np.random.default_rng(0).normal(0, 8, size=(2500, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"registration of blob\.pcd .*failed"):
        reg.predict([replace(test[0], points=blob, point_labels=np.zeros(2500, bool), path="blob.pcd")])


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_the_registry_builds_the_chapter_methods_with_their_presets(preset) -> None:
    expected = {"btf_raw": "BTFRaw", "btf_fpfh": "BTFFPFH", "reg3dad": "Reg3DAD", "fpfh_bank": "Reg3DAD"}
    table = methods.catalogue().set_index("name")
    for name, cls in expected.items():
        detector = methods.create(name, preset=preset, device="cpu", progress=False)
        assert type(detector).__name__ == cls
        assert table.loc[name, "chapter"] == "09_point_clouds" and table.loc[name, "setting"] == "3d"
        for key, value in methods.preset_settings(name, preset).items():
            assert getattr(detector, key) == (tuple(value) if isinstance(value, list) else value), (name, key)
    assert methods.create("fpfh_bank", preset=preset).register is False
    assert methods.create("btf_fpfh", preset=preset).grid == (20 if preset == "quick" else 28)


def _tiny_bank_detector(object_score: str) -> tuple[Reg3DAD, np.ndarray]:
    import torch

    bank = np.random.default_rng(3).normal(size=(12, 4)).astype(np.float32)
    detector = Reg3DAD(object_score=object_score, features=("fpfh",), device="cpu", progress=False)
    detector.banks_, detector.trees_ = {"fpfh": torch.from_numpy(bank)}, {}
    return detector, bank


def test_reg3dad_scores_a_point_by_its_squared_distance_to_the_nearest_bank_entry_as_released() -> None:
    detector, bank = _tiny_bank_detector("max")
    assert detector.num_neighbors == 1  # the released run: one neighbour (see the module docstring)
    queries = np.random.default_rng(4).normal(size=(7, 4)).astype(np.float32)
    expected = (((queries[:, None, :] - bank[None]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(detector._distances("fpfh", queries), expected, rtol=1e-5)


def test_reg3dad_eq7_weight_matches_an_independent_numpy_computation() -> None:
    detector, bank = _tiny_bank_detector("reweighted")
    worst = np.array([0.3, -1.2, 2.0, 0.5], np.float32)
    gaps = np.linalg.norm(bank - worst, axis=1)
    star = gaps.min()  # s*, and m* = the nearest bank entry
    around = np.argsort(np.linalg.norm(bank - bank[gaps.argmin()], axis=1))[1:3]  # m*'s next 2 neighbours
    root = np.sqrt(bank.shape[1])
    expected = 1 - np.exp(star / root) / np.exp(gaps[around] / root).sum()
    assert 0 < expected < 1
    assert detector.eq7_weight("fpfh", worst) == pytest.approx(expected, rel=1e-5)
    assert _tiny_bank_detector("max")[0].eq7_weight("fpfh", worst) == 1.0
    with pytest.raises(ValueError, match="object_score"):
        Reg3DAD(object_score="mean")
