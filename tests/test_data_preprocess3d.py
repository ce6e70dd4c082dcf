"""BTF-style background removal: removes the table and stray specks, out of place, once."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import data_fixtures as fx  # noqa: E402

from uiad_lite.data import load, preprocess3d  # noqa: E402
from uiad_lite.data.preprocess3d import PlaneRemoval, remove_background  # noqa: E402


def scene(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tilted table with a 10 mm box in the middle and a 2-pixel speck floating 20 mm above a corner."""
    rng = np.random.default_rng(seed)
    pitch = 0.001
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - size / 2) * pitch, (rows - size / 2) * pitch
    z = 0.25 + 0.05 * x - 0.03 * y + rng.normal(0, 1e-4, size=x.shape)
    box = (np.abs(rows - size / 2) < 12) & (np.abs(cols - size / 2) < 10)
    speck = np.zeros_like(box)
    speck[14, 14:16] = True
    z = np.where(box, z - 0.010, z)
    z = np.where(speck, z - 0.020, z)
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    xyz[:, :2] = 0.0  # a missing strip, as at real borders
    return xyz, box


def test_only_the_object_survives():
    xyz, box = scene()
    cleaned = remove_background(
        xyz, PlaneRemoval(border=6, distance=0.003, cluster_eps=0.003, cluster_min_points=5)
    )
    kept = cleaned.any(axis=-1)
    np.testing.assert_array_equal(kept, box)
    np.testing.assert_array_equal(cleaned[kept], xyz[kept])  # surviving points are untouched


def test_empty_border_is_a_clear_error():
    xyz, _ = scene()
    xyz[:, :] = 0.0
    with pytest.raises(ValueError, match="border frame"):
        remove_background(xyz)


def test_load_with_preprocess_writes_a_cache_and_never_touches_the_originals(tmp_path, monkeypatch):
    root = tmp_path / "data"
    fx.write_mvtec3d(root)
    for path in root.rglob("*.tiff"):  # replace the random fixtures by table-and-box scenes
        tifffile.imwrite(path, scene(size=32, seed=len(path.name))[0][:24], photometric="rgb")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    params = PlaneRemoval(border=4, distance=0.003, cluster_eps=0.003, cluster_min_points=3)
    splits = load(
        "mvtec_3d",
        root=root,
        category="cookie",
        size="full",
        preprocess=params,
        preprocess_dir=tmp_path / "cache",
    )
    sample = splits.train[0]
    original = tifffile.imread(sample.meta["xyz_original"])
    assert Path(sample.meta["xyz_path"]).is_relative_to(tmp_path / "cache")
    assert 0 < sample.xyz.any(axis=-1).sum() < original.any(axis=-1).sum()
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    written = sorted((tmp_path / "cache").rglob("*.tiff"))
    assert len(written) == 3 + 1 + 3 and not list((tmp_path / "cache").rglob("*.tmp"))
    assert len(list((tmp_path / "cache").rglob("rgb/*.png"))) == 3 + 1 + 3
    removed = original.any(axis=-1) & ~sample.xyz.any(axis=-1)
    original_rgb = np.asarray(Image.open(sample.meta["image_original"]).convert("RGB"))
    assert (sample.image[removed] == 0).all()  # BTF zeroes the colour of removed points too
    np.testing.assert_array_equal(sample.image[~removed], original_rgb[~removed])

    def fail(*args, **kwargs):
        raise AssertionError("cached files must be reused")

    monkeypatch.setattr(preprocess3d, "remove_background", fail)
    again = load(
        "mvtec_3d",
        root=root,
        category="cookie",
        size="full",
        preprocess=params,
        preprocess_dir=tmp_path / "cache",
    )
    np.testing.assert_array_equal(again.train[0].xyz, sample.xyz)


def test_preprocess_is_refused_for_image_datasets(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    with pytest.raises(ValueError, match="preprocess"):
        load("mvtec_ad", root=tmp_path, category="bottle", preprocess=True)


def test_defaults_are_the_released_script_values():
    """3D-ADS utils/preprocessing.py: segment_plane(0.004, ransac_n=50, 1000 iterations) on a 10-px
    frame of points with all coordinates non-zero, 5 mm plane distance, cluster_dbscan(0.006, 30) on
    every point, RGB of removed points zeroed."""
    params = PlaneRemoval()
    assert (params.border, params.ransac_distance, params.ransac_n) == (10, 0.004, 50)
    assert params.iterations == 1000
    assert (params.distance, params.cluster_eps, params.cluster_min_points) == (0.005, 0.006, 30)
    assert params.valid == "all" and params.max_cluster_points is None and params.zero_rgb


def test_border_points_with_a_zero_coordinate_do_not_fit_the_plane():
    """Most of the frame holds points with x == 0 on a steep false plane; only the rest is the table
    (z = 0.25). The released validity rule (all coordinates non-zero) ignores the former."""
    size = 60
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - size / 2) * 0.001 + 0.0005, (rows - size / 2) * 0.001 + 0.0005
    xyz = np.stack([x, y, np.full_like(x, 0.25)], axis=-1).astype(np.float32)
    false = (cols % 10) < 7
    xyz[false, 0] = 0.0
    xyz[false, 2] = 0.3 + 0.5 * y[false]
    released = preprocess3d.fit_table_plane(xyz, PlaneRemoval())
    assert abs(abs(released[2]) - 1.0) < 1e-6 and abs(abs(released[3]) - 0.25) < 1e-6
    anything = preprocess3d.fit_table_plane(xyz, PlaneRemoval(valid="any"))
    assert abs(abs(anything[2]) - 1.0) > 1e-3  # the steep false plane wins when any coordinate counts


def test_largest_label_includes_noise_as_released():
    """Sparse points that DBSCAN calls noise everywhere: the released vote keeps them all."""
    points = np.random.default_rng(0).uniform(0, 1, size=(200, 3))
    assert preprocess3d.largest_cluster(points, PlaneRemoval()).all()
    assert not preprocess3d.largest_cluster(points, PlaneRemoval.fast()).any()


def test_rgb_pixels_of_removed_points_are_zeroed_and_missing_pixels_keep_their_colour():
    xyz, box = scene()
    xyz[40:44, 50:54] = 0.0  # a hole without any coordinate on the table
    rgb = np.random.default_rng(1).integers(1, 256, size=(*xyz.shape[:2], 3), dtype=np.uint8)
    params = PlaneRemoval(border=6, distance=0.003, cluster_eps=0.003, cluster_min_points=5)
    cleaned_xyz, cleaned_rgb = preprocess3d.remove_background_rgbd(xyz, rgb, params)
    removed = xyz.any(axis=-1) & ~cleaned_xyz.any(axis=-1)
    assert removed.sum() > 1000 and not (removed & box).any()
    assert (cleaned_rgb[removed] == 0).all()
    np.testing.assert_array_equal(cleaned_rgb[~removed], rgb[~removed])
    kept_colour = PlaneRemoval(border=6, distance=0.003, cluster_eps=0.003, cluster_min_points=5,
                               zero_rgb=False)
    np.testing.assert_array_equal(preprocess3d.remove_background_rgbd(xyz, rgb, kept_colour)[1], rgb)


def test_fast_option_finds_the_same_object():
    xyz, box = scene()
    fast = PlaneRemoval.fast(border=6, distance=0.003, cluster_eps=0.003, cluster_min_points=5,
                             max_cluster_points=200)
    np.testing.assert_array_equal(remove_background(xyz, fast).any(axis=-1), box)


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="valid"):
        PlaneRemoval(valid="some")
    with pytest.raises(ValueError, match="ransac_n"):
        PlaneRemoval(ransac_n=2)


def test_an_object_flatter_than_the_plane_distance_is_named_in_a_warning(tmp_path):
    """A box 3 mm high lies within the released 5 mm of the table plane: the cleaning removes it with
    the table. load() must say so, naming a file and the parameter, instead of leaving empty clouds
    for a detector to trip over; with a 2 mm distance the box survives and nothing is said."""
    import warnings

    root = tmp_path / "data"
    fx.write_mvtec3d(root)
    for path in root.rglob("*.tiff"):
        xyz, box = scene(size=32, seed=len(path.name))
        xyz[box, 2] += 0.007  # the box now stands 3 mm above the table
        tifffile.imwrite(path, xyz[:24], photometric="rgb")
    options = dict(root=root, category="cookie", size="full", preprocess_dir=tmp_path / "cache")
    thin = PlaneRemoval(border=4, distance=0.005, cluster_eps=0.003, cluster_min_points=3)
    named = r"clouds of .* \(first: .*\.tiff\).*PlaneRemoval\.distance = 0\.005"
    with pytest.warns(UserWarning, match=named):
        splits = load("mvtec_3d", preprocess=thin, **options)
    assert splits.train[0].xyz.all(axis=-1).sum() < thin.cluster_min_points
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = load("mvtec_3d", preprocess=PlaneRemoval(**{**thin.__dict__, "distance": 0.002}), **options)
    assert kept.train[0].xyz.any(axis=-1).sum() > 100
