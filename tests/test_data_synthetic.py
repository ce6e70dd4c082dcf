"""The synthetic benchmark: exact masks, modality-specific defects, determinism, caching, loaders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from uiad_lite.data import load, synthetic
from uiad_lite.data.synthetic_depth import make_rgbd_sample
from uiad_lite.data.synthetic_images import make_rgb_sample
from uiad_lite.data.synthetic_points import make_point_sample


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return synthetic.generate(tmp_path_factory.mktemp("synthetic"), size="tiny", seed=0, workers=1)


@pytest.mark.parametrize("category", synthetic.categories("rgb"))
def test_rgb_masks_mark_exactly_the_changed_pixels(category):
    for defect in synthetic.DEFECTS[category]:
        for index in range(3):
            rng = np.random.default_rng([index, 7])
            clean, defective, mask = make_rgb_sample(category, defect, 96, rng)
            changed = (clean != defective).any(axis=-1)
            assert mask.any(), (category, defect, index)
            np.testing.assert_array_equal(mask, changed)
            # the clean image is the normal image the same generator state would have produced
            normal, same, empty = make_rgb_sample(category, "good", 96, np.random.default_rng([index, 7]))
            np.testing.assert_array_equal(normal, clean)
            assert np.array_equal(normal, same) and not empty.any()


def test_defect_sizes_vary_and_include_small_ones():
    areas = [
        make_rgb_sample("brick", "contamination", 224, np.random.default_rng(i))[2].sum() for i in range(30)
    ]
    assert min(areas) < 0.002 * 224 * 224 < 0.01 * 224 * 224 < max(areas)


def test_normal_images_differ_from_each_other():
    first = make_rgb_sample("washer", "good", 96, np.random.default_rng(1))[1].astype(int)
    second = make_rgb_sample("washer", "good", 96, np.random.default_rng(2))[1].astype(int)
    assert np.abs(first - second).mean() > 3


@pytest.mark.parametrize("category", synthetic.categories("rgbd"))
def test_rgbd_defects_change_only_their_modality(category):
    for defect in synthetic.DEFECTS[category]:
        sample = make_rgbd_sample(category, defect, 96, np.random.default_rng([3, len(defect)]))
        mask, valid = sample["mask"], sample["valid"]
        rgb_changed = (sample["rgb"] != sample["clean_rgb"]).any(axis=-1)
        xyz_changed = (sample["xyz"] != sample["clean_xyz"]).any(axis=-1)
        assert mask.any()
        if defect in ("dent", "bump"):  # geometry only: invisible in RGB
            assert not rgb_changed.any()
            np.testing.assert_array_equal(xyz_changed, mask & valid)
        elif defect == "stain":  # colour only: invisible in 3D
            assert not xyz_changed.any()
            np.testing.assert_array_equal(rgb_changed, mask)
        else:  # hole: both
            np.testing.assert_array_equal(rgb_changed, mask)
            np.testing.assert_array_equal(xyz_changed, mask & valid)
        missing = ~sample["xyz"].any(axis=-1)
        np.testing.assert_array_equal(missing, ~valid)
        assert missing.any() and missing.mean() < 0.2


def test_bump_raises_and_dent_lowers_the_surface():
    for defect, sign in (("bump", -1), ("dent", 1)):  # z is the distance from the camera
        sample = make_rgbd_sample("cookie", defect, 96, np.random.default_rng(11))
        where = sample["mask"] & sample["valid"]
        dz = sample["xyz"][..., 2][where] - sample["clean_xyz"][..., 2][where]
        assert np.all(np.sign(dz) == sign)


@pytest.mark.parametrize("category", synthetic.categories("points"))
def test_point_labels_mark_exactly_the_moved_or_rim_points(category):
    for defect in ("bulge", "sink"):
        sample = make_point_sample(category, defect, 2000, np.random.default_rng(5))
        assert sample["points"].shape == sample["clean"].shape
        moved = (sample["points"] != sample["clean"]).any(axis=1)
        assert sample["labels"].any()
        np.testing.assert_array_equal(moved, sample["labels"])
    sample = make_point_sample(category, "missing", 2000, np.random.default_rng(5))
    distance_clean = np.linalg.norm(sample["clean"] - sample["center"], axis=1)
    radius = float(sample["radius"])
    assert len(sample["points"]) == int((distance_clean >= radius).sum()) < len(sample["clean"])
    distance = np.linalg.norm(sample["points"] - sample["center"], axis=1)
    np.testing.assert_array_equal(sample["labels"], distance < radius * 1.4)
    assert sample["labels"].any()


def test_generation_is_byte_identical_for_the_same_seed(tmp_path, tiny):
    again = synthetic.generate(tmp_path / "a", size="tiny", seed=0, workers=2)
    assert tree_digest(again) == tree_digest(tiny)
    other = synthetic.generate(tmp_path / "b", size="tiny", seed=1, workers=1)
    assert tree_digest(other) != tree_digest(tiny)


def test_generated_folder_is_versioned_and_reused(tmp_path, monkeypatch):
    folder = synthetic.generate(tmp_path, size="tiny", seed=3, workers=1)
    assert folder == tmp_path / f"{synthetic.VERSION}-tiny-seed3"
    stamp = (folder / synthetic.MANIFEST).stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("must not regenerate")

    monkeypatch.setattr(synthetic, "write_category", fail)
    assert synthetic.generate(tmp_path, size="tiny", seed=3, workers=1) == folder
    assert (folder / synthetic.MANIFEST).stat().st_mtime_ns == stamp
    monkeypatch.setattr(synthetic, "VERSION", "v999")  # a generator change lands in a new folder
    with pytest.raises(AssertionError, match="must not regenerate"):
        synthetic.generate(tmp_path, size="tiny", seed=3, workers=1)


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def fail_late(root, category, spec, seed):
        calls.append(category)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return category

    monkeypatch.setattr(synthetic, "write_category", fail_late)
    with pytest.raises(RuntimeError, match="disk full"):
        synthetic.generate(tmp_path, size="tiny", seed=0, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_default_location_follows_uiad_data(tmp_path, monkeypatch):
    monkeypatch.setenv("UIAD_DATA", str(tmp_path))
    assert synthetic.default_base() == tmp_path / "synthetic"


def test_loaders_read_every_synthetic_category(tiny):
    spec = synthetic.SIZES["tiny"]
    for category, setting in synthetic.CATEGORIES.items():
        splits = load("synthetic", root=tiny, category=category, size="tiny")
        assert splits.setting == setting and splits.name == "synthetic"
        if setting == "points":
            assert len(splits.train) == spec.cloud_train
            assert len(splits.test) == spec.cloud_test_good + spec.cloud_test_anomalous
            sample = next(s for s in splits.test if s.label == 1)
            assert sample.points.shape[1] == 3 and sample.point_labels.any()
            continue
        assert len(splits.train) == spec.train
        assert int(splits.test.labels.sum()) == spec.test_anomalous
        assert set(splits.test.defects) == {"good", *synthetic.DEFECTS[category]}
        sample = next(s for s in splits.test if s.label == 1)
        assert sample.image.shape == (spec.image, spec.image, 3) and sample.mask.any()
        if setting == "rgbd":
            assert len(splits.validation) == spec.validation
            assert sample.xyz.shape == (spec.image, spec.image, 3)


def test_load_generates_into_the_cache_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("UIAD_DATA", str(tmp_path))
    splits = load("synthetic", category="panel", size="tiny", seed=4)
    assert splits.root == tmp_path / "synthetic" / f"{synthetic.VERSION}-tiny-seed4"
    assert not [p for p in (tmp_path / "synthetic").iterdir() if p.name.startswith(".tmp")]
    assert os.path.isfile(splits.root / synthetic.MANIFEST)


def test_catalogue_entry_lists_the_generated_categories():
    from uiad_lite.data import categories, info

    assert info("synthetic").categories == tuple(synthetic.CATEGORIES)
    assert categories("synthetic", setting="rgbd") == ["cookie", "tablet"]
    assert categories("synthetic", setting="points") == ["panel", "capsule"]


def test_logical_anomalies_are_marked_in_meta(tiny):
    splits = load("synthetic", root=tiny, category="plate", size="tiny")
    kinds = {s.defect: s.meta["defect_kind"] for s in splits.test if s.label == 1}
    assert kinds == {
        "missing_bolt": "logical",
        "misplaced_bolt": "logical",
        "scratch": "structural",
        "contamination": "structural",
    }
