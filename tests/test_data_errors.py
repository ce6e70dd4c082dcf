"""Bad input gives a clear error that names the file or folder and what was expected."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import data_fixtures as fx  # noqa: E402

from uiad_lite.data import load  # noqa: E402
from uiad_lite.data.pointclouds import read_pcd  # noqa: E402


def test_missing_root_names_the_path_and_shows_the_layout(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as error:
        load("mvtec_ad", root=missing, category="bottle")
    assert "train/good" in str(error.value) and "ground_truth" in str(error.value)


def test_missing_category_names_the_folder(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "cable"))) as error:
        load("mvtec_ad", root=tmp_path, category="cable")
    assert "Expected layout" in str(error.value)


def test_no_root_and_no_environment_variable(monkeypatch):
    monkeypatch.delenv("UIAD_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="UIAD_DATA"):
        load("visa", category="candle")


def test_category_is_required():
    with pytest.raises(ValueError, match="category"):
        load("synthetic")


def test_mask_of_another_size_names_both_files(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    mask_path = tmp_path / "bottle/ground_truth/broken_large/000_mask.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(mask_path)
    splits = load("mvtec_ad", root=tmp_path, category="bottle", size="full")
    with pytest.raises(ValueError) as error:
        splits.test[0]
    message = str(error.value)
    assert str(mask_path) in message and "test/broken_large/000.png" in message and "10x10" in message


def test_unreadable_png_names_the_file(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    broken = tmp_path / "bottle/train/good/001.png"
    broken.write_bytes(b"this is not a png")
    splits = load("mvtec_ad", root=tmp_path, category="bottle", size="full")
    with pytest.raises(ValueError, match=f"cannot read image {re.escape(str(broken))}"):
        splits.train[1]


def test_unreadable_tiff_names_the_file(tmp_path):
    fx.write_mvtec3d(tmp_path)
    broken = tmp_path / "cookie/train/good/xyz/001.tiff"
    broken.write_bytes(b"II*\x00garbage")
    splits = load("mvtec_3d", root=tmp_path, category="cookie", size="full")
    with pytest.raises(ValueError, match=f"cannot read xyz TIFF {re.escape(str(broken))}"):
        splits.train[1]


def test_tiff_that_is_not_hxwx3_float_says_what_was_found(tmp_path):
    fx.write_mvtec3d(tmp_path)
    wrong = tmp_path / "cookie/train/good/xyz/000.tiff"
    tifffile.imwrite(wrong, np.zeros((24, 32), dtype=np.uint16))
    splits = load("mvtec_3d", root=tmp_path, category="cookie", size="full")
    with pytest.raises(ValueError, match=r"HxWx3.*\(24, 32\).*uint16"):
        splits.train[0]


def test_xyz_of_another_size_names_both_files(tmp_path):
    fx.write_mvtec3d(tmp_path)
    wrong = tmp_path / "cookie/train/good/xyz/000.tiff"
    tifffile.imwrite(wrong, np.zeros((8, 8, 3), dtype=np.float32), photometric="rgb")
    splits = load("mvtec_3d", root=tmp_path, category="cookie", size="full")
    with pytest.raises(ValueError, match="size mismatch") as error:
        splits.train[0]
    assert str(wrong) in str(error.value) and "rgb/000.png" in str(error.value)


def test_unreadable_pcd_names_the_file(tmp_path):
    broken = tmp_path / "broken.pcd"
    broken.write_text("hello world\n1 2 3\n")
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        read_pcd(broken)
    truncated = tmp_path / "short.pcd"
    truncated.write_text(fx.pcd_text(np.ones((3, 3))).rsplit("\n", 2)[0] + "\n")
    with pytest.raises(ValueError, match="promises 3 points"):
        read_pcd(truncated)


def test_category_without_test_anomalies(tmp_path):
    fx.write_mvtec_ad(tmp_path, defects={})
    with pytest.raises(ValueError, match="no anomalous samples"):
        load("mvtec_ad", root=tmp_path, category="bottle")


def test_category_without_training_images(tmp_path):
    fx.write_mvtec_ad(tmp_path, n_train=0)
    (tmp_path / "bottle/train/good").mkdir(parents=True, exist_ok=True)
    with pytest.raises(ValueError, match="no training samples"):
        load("mvtec_ad", root=tmp_path, category="bottle")


def test_anomalous_image_without_mask_names_the_expected_mask(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    (tmp_path / "bottle/ground_truth/contamination/000_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match="000_mask.png"):
        load("mvtec_ad", root=tmp_path, category="bottle")


def test_visa_bad_label_names_the_csv_line(tmp_path):
    fx.write_visa(tmp_path)
    csv_path = tmp_path / "split_csv/1cls.csv"
    csv_path.write_text(csv_path.read_text().replace("anomaly", "broken", 1))
    with pytest.raises(ValueError, match=r"1cls.csv line \d+: label"):
        load("visa", root=tmp_path, category="candle")


def test_real3d_gt_with_commas_explains_the_space_delimiter(tmp_path):
    fx.write_real3d(tmp_path)
    gt = tmp_path / "airplane/gt/10_bulge.txt"
    gt.write_text(gt.read_text().replace(" ", ","))
    splits = load("real3d_ad", root=tmp_path, category="airplane")
    with pytest.raises(ValueError, match="separated by space") as error:
        splits.test[2]
    assert str(gt) in str(error.value)


def test_dataset_without_loader_says_so():
    with pytest.raises(ValueError, match="no loader yet"):
        load("eyecandies", root=".", category="CandyCane")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="mvtec_ad"):
        load("mnist", category="zero")
