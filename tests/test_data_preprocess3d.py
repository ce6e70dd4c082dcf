"""BTF-style background removal: removes the table and stray specks, out of place, once."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

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
