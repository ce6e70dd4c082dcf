"""Loaders on tiny fixtures written in each dataset's real on-disk format."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import data_fixtures as fx  # noqa: E402

from uiad_lite.data import DATASETS, LazySamples, catalogue, categories, load  # noqa: E402


def test_mvtec_ad_reads_every_split_with_exact_pixels(tmp_path):
    written = fx.write_mvtec_ad(tmp_path)
    splits = load("mvtec_ad", root=tmp_path, category="bottle", size="full")
    assert (splits.name, splits.category, splits.setting, splits.root) == (
        "mvtec_ad",
        "bottle",
        "rgb",
        tmp_path,
    )
    assert len(splits.train) == 5 and len(splits.test) == 5 and len(splits.validation) == 0
    assert list(splits.test.labels) == [
        1,
        1,
        1,
        0,
        0,
    ]  # folders in name order: broken_large, contamination, good
    assert splits.test.defects == ["broken_large", "broken_large", "contamination", "good", "good"]
    first = splits.test[0]
    np.testing.assert_array_equal(first.image, written["test/broken_large/000.png"])
    np.testing.assert_array_equal(first.mask, written["ground_truth/broken_large/000_mask.png"] > 0)
    good = splits.test[-1]
    assert good.label == 0 and good.defect == "good" and not good.mask.any()
    assert all(sample.split == "train" and sample.label == 0 for sample in splits.train)


def test_mpdd_uses_the_mvtec_layout(tmp_path):
    fx.write_mvtec_ad(tmp_path, category="metal_plate", defects={"scratches": 2})
    splits = load("mpdd", root=tmp_path, category="metal_plate", size="full")
    assert splits.name == "mpdd" and splits.test.defects.count("scratches") == 2


def test_btad_ok_ko_folders_and_mixed_mask_extensions(tmp_path):
    written = fx.write_btad(tmp_path)
    splits = load("btad", root=tmp_path, category="01", size="full")
    assert len(splits.train) == 2
    assert splits.test.defects == ["ko", "ko", "good"]
    np.testing.assert_array_equal(splits.test[0].mask, written["ground_truth/ko/0000.png"] > 0)
    np.testing.assert_array_equal(splits.test[1].mask, written["ground_truth/ko/0001.bmp"] > 0)
    np.testing.assert_array_equal(splits.test[1].image, written["test/ko/0001.bmp"])


def test_mvtec_loco_ors_region_masks_and_records_defect_kind(tmp_path):
    written = fx.write_mvtec_loco(tmp_path)
    splits = load("mvtec_loco", root=tmp_path, category="breakfast_box", size="full")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (3, 2, 3)
    assert all(sample.split == "validation" for sample in splits.validation)
    logical = next(s for s in splits.test if s.defect == "logical_anomalies")
    expected = (written["ground_truth/logical_anomalies/000/000.png"] > 0) | (
        written["ground_truth/logical_anomalies/000/001.png"] > 0
    )
    np.testing.assert_array_equal(logical.mask, expected)
    assert logical.meta["defect_kind"] == "logical"
    structural = next(s for s in splits.test if s.defect == "structural_anomalies")
    assert structural.meta["defect_kind"] == "structural"


def test_visa_follows_the_split_csv(tmp_path):
    written = fx.write_visa(tmp_path)
    splits = load("visa", root=tmp_path, category="candle", size="full")
    assert len(splits.train) == 3 and len(splits.test) == 3
    assert sorted(splits.test.labels) == [0, 1, 1]
    anomalous = [s for s in splits.test if s.label == 1]
    second = next(s for s in anomalous if s.path.endswith("001.JPG"))
    np.testing.assert_array_equal(second.mask, written["candle/Data/Masks/Anomaly/001.png"] > 0)
    reference = np.asarray(Image.open(tmp_path / "candle/Data/Images/Anomaly/001.JPG").convert("RGB"))
    np.testing.assert_array_equal(second.image, reference)
    assert categories("visa", root=tmp_path) == ["candle"]


def test_mvtec3d_pairs_rgb_xyz_and_gt(tmp_path):
    written = fx.write_mvtec3d(tmp_path)
    splits = load("mvtec_3d", root=tmp_path, category="cookie", size="full")
    assert splits.setting == "rgbd"
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (3, 1, 3)
    hole = next(s for s in splits.test if s.defect == "hole")
    np.testing.assert_array_equal(hole.xyz, written["test/hole/xyz/000.tiff"])
    np.testing.assert_array_equal(hole.image, written["test/hole/rgb/000.png"])
    np.testing.assert_array_equal(hole.mask, written["test/hole/gt/000.png"] > 0)
    assert hole.xyz.dtype == np.float32 and not hole.xyz[:2].any()


def test_real3d_reads_points_and_labels_from_space_separated_gt(tmp_path):
    written = fx.write_real3d(tmp_path)
    splits = load("real3d_ad", root=tmp_path, category="airplane", size="full")
    assert splits.setting == "points" and len(splits.train) == 2
    assert [Path(p).name for p in splits.test.paths] == ["2_sink.pcd", "3_good.pcd", "10_bulge.pcd"]
    assert splits.test.defects == ["sink", "good", "bulge"]
    bulge = splits.test[2]
    points, labels = written["gt/10_bulge.txt"]
    np.testing.assert_allclose(bulge.points, points, atol=1e-6)
    np.testing.assert_array_equal(bulge.point_labels, labels)
    good = splits.test[1]
    np.testing.assert_allclose(good.points, written["test/3_good.pcd"], atol=1e-6)
    assert not good.point_labels.any()


def test_anomaly_shapenet_positive_means_good_and_gt_is_comma_separated(tmp_path):
    written = fx.write_anomaly_shapenet(tmp_path)
    splits = load("anomaly_shapenet", root=tmp_path, category="ashtray0", size="full")
    assert sorted(splits.test.defects) == ["bulge", "good", "hole"]
    hole = next(s for s in splits.test if s.defect == "hole")
    points, labels = written["GT/hole1"]
    np.testing.assert_allclose(hole.points, points, atol=1e-6)
    np.testing.assert_array_equal(hole.point_labels, labels)


def test_anomaly_shapenet_root_may_be_the_archive_folder(tmp_path):
    fx.write_anomaly_shapenet(tmp_path / "dataset" / "pcd")
    splits = load("anomaly_shapenet", root=tmp_path, category="ashtray0", size="full")
    assert splits.root == tmp_path / "dataset" / "pcd"


def test_quick_preset_resizes_and_caps_training_images(tmp_path):
    fx.write_mvtec_ad(tmp_path, n_train=7)
    splits = load(
        "mvtec_ad", root=tmp_path, category="bottle", size="quick", max_train=3, image_size=(12, 16)
    )
    assert len(splits.train) == 3
    assert [Path(p).name for p in splits.train.paths] == ["000.png", "003.png", "006.png"]  # evenly spaced
    sample = splits.test[0]
    assert sample.image.shape == (12, 16, 3) and sample.mask.shape == (12, 16)
    assert sample.meta["source_size"] == (24, 32)
    quick = load("mvtec_ad", root=tmp_path, category="bottle", size="quick")
    assert quick.test[0].image.shape == (256, 256, 3)


def test_default_reads_a_real_dataset_as_it_is_on_disk(tmp_path):
    """No size given: native resolution and every training image (quick would give 256 px and cap at 100)."""
    fx.write_mvtec_ad(tmp_path, n_train=101)
    splits = load("mvtec_ad", root=tmp_path, category="bottle")
    assert splits.meta["size"] == "full"
    assert len(splits.train) == 101
    assert len(load("mvtec_ad", root=tmp_path, category="bottle", size="quick").train) == 100
    assert splits.test[0].image.shape == (24, 32, 3) and splits.test[0].mask.shape == (24, 32)
    assert "source_size" not in splits.test[0].meta or splits.test[0].meta["source_size"] == (24, 32)


def test_lazy_sequence_supports_len_index_slice_iteration_and_caches(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    test = load("mvtec_ad", root=tmp_path, category="bottle", size="full").test
    assert isinstance(test, LazySamples)
    assert test[-1].path == test[len(test) - 1].path
    assert test[0] is test[0]  # cached
    part = test[1:3]
    assert isinstance(part, LazySamples) and len(part) == 2 and part[0].path == test[1].path
    assert [s.path for s in test] == test.paths
    with pytest.raises(IndexError):
        test[len(test)]


def test_environment_variable_points_to_the_data(tmp_path, monkeypatch):
    fx.write_mvtec_ad(tmp_path / "mvtec_ad")
    monkeypatch.setenv("UIAD_DATA", str(tmp_path))
    assert load("mvtec_ad", category="bottle", size="full").root == tmp_path / "mvtec_ad"
    assert categories("mvtec_ad") == ["bottle"]


def test_catalogue_lists_every_dataset_with_loader_and_download_method(monkeypatch):
    monkeypatch.delenv("UIAD_DATA", raising=False)
    rows = {row["name"]: row for row in catalogue()}
    assert tuple(rows) == DATASETS
    assert set(DATASETS) >= {
        "synthetic",
        "mvtec_ad",
        "btad",
        "mpdd",
        "mvtec_loco",
        "visa",
        "mvtec_3d",
        "real3d_ad",
        "anomaly_shapenet",
        "eyecandies",
    }
    assert rows["eyecandies"]["loader"] is False and rows["mvtec_ad"]["download"] == "manual"
    assert rows["visa"]["download"] == "direct" and rows["mvtec_3d"]["setting"] == "rgbd"
    assert rows["mvtec_ad"]["survey_train"] == 3629  # survey Table 2
    assert len(categories("mvtec_ad")) == 15 and categories("mvtec_ad")[:2] == ["bottle", "cable"]
    assert categories("mvtec_3d", setting="rgb") == []


def test_center_crop_cuts_image_mask_and_xyz_alike(tmp_path):
    written = fx.write_mvtec_ad(tmp_path, size=(24, 32))
    splits = load("mvtec_ad", root=tmp_path, category="bottle", size="full", center_crop=(16, 20))
    first = splits.test[0]
    # 24x32 -> rows 4:20, columns 6:26, the label kept as the papers keep it
    np.testing.assert_array_equal(first.image, written["test/broken_large/000.png"][4:20, 6:26])
    np.testing.assert_array_equal(
        first.mask, written["ground_truth/broken_large/000_mask.png"][4:20, 6:26] > 0
    )
    assert first.label == 1 and first.meta["center_crop"] == (16, 20)
    assert splits.meta["center_crop"] == (16, 20)
    assert {sample.image.shape for sample in splits.train} == {(16, 20, 3)}
    # the PatchCore protocol: resize first, then crop
    resized = load("mvtec_ad", root=tmp_path, category="bottle", size="full", image_size=40, center_crop=30)
    assert resized.test[0].image.shape == (30, 30, 3) and resized.test[0].mask.shape == (30, 30)

    fx.write_mvtec3d(tmp_path / "m3d")
    rgbd = load("mvtec_3d", root=tmp_path / "m3d", category="cookie", size="full")
    cropped = load("mvtec_3d", root=tmp_path / "m3d", category="cookie", size="full", center_crop=10)
    anomalous = list(rgbd.test.labels).index(1)
    full, small = rgbd.test[anomalous], cropped.test[anomalous]
    assert full.mask.any()
    top, left = (full.xyz.shape[0] - 10) // 2, (full.xyz.shape[1] - 10) // 2
    np.testing.assert_array_equal(small.xyz, full.xyz[top : top + 10, left : left + 10])
    np.testing.assert_array_equal(small.mask, full.mask[top : top + 10, left : left + 10])


def test_center_crop_errors_name_the_file_and_the_fix(tmp_path):
    fx.write_mvtec_ad(tmp_path, size=(24, 32))
    splits = load("mvtec_ad", root=tmp_path, category="bottle", size="full", center_crop=30)
    with pytest.raises(ValueError, match=r"larger than the image of .*000\.png.*image_size >= center_crop"):
        splits.train[0]
    fx.write_real3d(tmp_path / "r3d")
    with pytest.raises(ValueError, match="center_crop applies to images"):
        load("real3d_ad", root=tmp_path / "r3d", category="airplane", size="full", center_crop=10)
