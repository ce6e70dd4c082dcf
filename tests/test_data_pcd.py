"""The .pcd reader agrees with open3d on ASCII, binary and compressed files; labelled .txt round trips."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from uiad_lite.data.pointclouds import (
    read_labelled_points,
    read_pcd,
    subsample,
    write_labelled_points,
    write_pcd,
)


@pytest.fixture
def points() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(257, 3)).astype(np.float32)


def open3d_write(path, points, **options) -> None:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    assert o3d.io.write_point_cloud(str(path), cloud, **options)


@pytest.mark.parametrize("options", [{"write_ascii": True}, {"write_ascii": False}, {"compressed": True}])
def test_reader_matches_open3d(tmp_path, points, options):
    path = tmp_path / "cloud.pcd"
    open3d_write(path, points, **options)
    reference = np.asarray(o3d.io.read_point_cloud(str(path)).points)
    np.testing.assert_allclose(read_pcd(path), reference, atol=1e-6)
    np.testing.assert_allclose(read_pcd(path), points, atol=1e-5)


def test_write_pcd_is_read_back_by_open3d_and_by_us(tmp_path, points):
    path = tmp_path / "ours.pcd"
    write_pcd(path, points)
    np.testing.assert_allclose(np.asarray(o3d.io.read_point_cloud(str(path)).points), points, atol=1e-6)
    np.testing.assert_allclose(read_pcd(path), points, atol=1e-6)


def test_extra_fields_are_skipped(tmp_path):
    path = tmp_path / "rgb.pcd"
    path.write_text(
        "VERSION 0.7\nFIELDS rgb x y z\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 2\nHEIGHT 1\n"
        "POINTS 2\nDATA ascii\n7 1 2 3\n8 4 5 6\n"
    )
    np.testing.assert_array_equal(read_pcd(path), [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("delimiter", [" ", ","])
def test_labelled_points_round_trip(tmp_path, points, delimiter):
    labels = np.arange(len(points)) % 7 == 0
    path = tmp_path / "gt.txt"
    write_labelled_points(path, points, labels, delimiter)
    read_points, read_labels = read_labelled_points(path, delimiter)
    np.testing.assert_allclose(read_points, points, atol=1e-6)
    np.testing.assert_array_equal(read_labels, labels)


def test_labels_other_than_0_1_are_refused(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("0 0 0 2\n")
    with pytest.raises(ValueError, match="0 or 1"):
        read_labelled_points(path, " ")


def test_subsample_is_stable_and_keeps_labels_aligned(points):
    labels = points[:, 0] > 0
    first = subsample(points, labels, 100, "some/file.pcd")
    second = subsample(points, labels, 100, "some/file.pcd")
    np.testing.assert_array_equal(first[0], second[0])
    assert len(first[0]) == 100
    np.testing.assert_array_equal(first[1], first[0][:, 0] > 0)
