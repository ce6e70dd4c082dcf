"""CPMF: rendering (projection, z-buffer), visibility-aware feature transfer, a geometry defect, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from uiad_lite import methods, metrics
from uiad_lite.data import synthetic_points
from uiad_lite.data.sample import Sample
from uiad_lite.features.multiview import (
    point_view_features,
    released_view_angles,
    render_views,
    rotation_from_xyz,
    view_rotations,
)
from uiad_lite.methods import NotFittedError
from uiad_lite.methods.point_cloud.cpmf import CPMF


def _square_and_pin(depth_of_pin: float) -> np.ndarray:
    """A flat 21×21 grid of points at z=0 (spacing 1) plus one pin at (3, 4, depth_of_pin)."""
    grid = np.stack(np.meshgrid(np.arange(-10, 11), np.arange(-10, 11)), axis=-1).reshape(-1, 2)
    square = np.concatenate([grid, np.zeros((len(grid), 1))], axis=1).astype(np.float64)
    return np.concatenate([square, [[3.0, 4.0, depth_of_pin]]])


def test_released_views_follow_open3d_xyz_order() -> None:
    import open3d as o3d

    angles = released_view_angles()
    assert len(angles) == 27 and angles[0] == (0.0, 0.0, 0.0) and angles[1] == (0.0, 0.0, -np.pi / 12)
    expected = o3d.geometry.get_rotation_matrix_from_xyz(np.array([0.1, -0.2, 0.3]))
    assert np.allclose(rotation_from_xyz((0.1, -0.2, 0.3)), expected)
    assert np.allclose(view_rotations(6, "grid")[1], rotation_from_xyz(angles[1]))
    sphere = view_rotations(6, "sphere")
    assert np.allclose(sphere @ sphere.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    directions = sphere[:, 2]  # the direction each view's camera looks from
    assert np.ptp(directions, axis=0).min() > 1.0  # spread round the sphere, not one side
    with pytest.raises(ValueError, match="1 to 27 views"):
        view_rotations(28, "grid")


def test_a_known_point_lands_on_the_expected_pixel() -> None:
    points = _square_and_pin(0.5)
    size, margin = 64, 0.1
    views = render_views(
        points, view_rotations(1, "grid"), size, point_size=1, shading="depth", margin=margin
    )
    centred = points - points.mean(axis=0)
    scale = (size / 2) * (1 - margin) / np.linalg.norm(centred, axis=1).max()
    pin = centred[-1]
    expected = (int(np.floor(size / 2 - pin[1] * scale)), int(np.floor(size / 2 + pin[0] * scale)))
    assert tuple(views.pixels[0, -1]) == expected
    assert views.owner[0][expected] == len(points) - 1  # the pin is in front of the square: it is drawn
    assert views.images[0][expected].tolist() == [255, 255, 255]  # nearest point, brightest depth shade
    assert views.images[0][0, 0].tolist() == [255, 255, 255] and views.owner[0][0, 0] == -1  # background
    square_pixel = tuple(views.pixels[0, 0])
    assert views.images[0][square_pixel].tolist() == [51] * 3  # the farthest depth: shade 0.2
    # the corner (-10, -10), the farthest point from the centre, sits lower left at (1 - margin) * size / 2
    row, col = views.pixels[0, 0]
    assert row > size / 2 and col < size / 2
    assert np.hypot(row + 0.5 - size / 2, col + 0.5 - size / 2) == pytest.approx(
        (1 - margin) * size / 2, abs=1.5
    )


def test_the_z_buffer_hides_a_point_behind_the_surface() -> None:
    points = _square_and_pin(-2.0)  # the pin is behind the square, on the line of sight of (3, 4, 0)
    front = int(np.flatnonzero((points[:, 0] == 3) & (points[:, 1] == 4) & (points[:, 2] == 0))[0])
    back_turn = np.diag([1.0, -1.0, -1.0])  # a camera on the other side: the pin is now in front
    rotations = np.stack([np.eye(3), back_turn])
    views = render_views(points, rotations, 64, point_size=1, shading="depth", depth_tolerance=0.5)
    pin = len(points) - 1
    pixel = tuple(views.pixels[0, pin])
    assert views.owner[0][pixel] == front and not views.visible[0, pin] and views.visible[0, front]
    assert views.visible[1, pin] and views.owner[1][tuple(views.pixels[1, pin])] == pin
    # features: view 0 says 0 everywhere, view 1 says 1 everywhere but on the pin's pixel (7)
    maps = torch.zeros(2, 1, 64, 64)
    maps[1] = 1.0
    maps[1, 0][tuple(views.pixels[1, pin])] = 7.0
    visible_only = point_view_features([maps], views, "zbuffer")[:, 0]
    every_view = point_view_features([maps], views, "all")[:, 0]
    assert visible_only[pin] == pytest.approx(7.0)  # only the view where it is seen
    assert every_view[pin] == pytest.approx((0.0 + 7.0) / 2)  # released: the hidden view counts too
    # in view 0 the hidden pin reads the pixel of the point in front of it
    assert np.array_equal(views.pixels[0, pin], views.pixels[0, front])


def _panel_split(seed: int = 0, count: int = 2500):
    rng = np.random.default_rng(seed)
    train = [
        Sample(
            "panel", "train", points=synthetic_points.make_point_sample("panel", "good", count, rng)["points"]
        )
        for _ in range(3)
    ]
    test = []
    for index, defect in enumerate(["good"] * 3 + ["bulge", "sink"] * 2):
        cloud = synthetic_points.make_point_sample("panel", defect, count, rng)
        test.append(
            Sample(
                "panel", "test", label=int(defect != "good"), defect=defect, path=f"test/{index}.pcd",
                points=cloud["points"], point_labels=cloud["labels"],
            )
        )  # fmt: skip
    return train, test


def test_cpmf_finds_a_geometry_only_defect_at_the_right_points() -> None:
    train, test = _panel_split()
    detector = methods.create(
        "cpmf", preset="quick", device="cpu", progress=False, image_size=64, downsample=None
    )
    prediction = detector.fit(train).predict(test)
    found = metrics.evaluate(prediction, test)
    assert found["pt_auroc"] > 0.85 and found["i_auroc"] > 0.8, dict(found)
    assert all(len(s) == len(t.points) for s, t in zip(prediction.point_scores, test, strict=True))
    assert detector.bank_.shape[1] == sum(detector._extractor().info.channels) + 33  # 2D + FPFH
    again = methods.create(
        "cpmf", preset="quick", device="cpu", progress=False, image_size=64, downsample=None
    ).fit(train)
    assert np.allclose(again.predict(test[:2]).scores, prediction.scores[:2])  # deterministic


def test_bad_input_and_predict_before_fit() -> None:
    train, test = _panel_split(count=400)
    detector = CPMF(image_size=32, n_views=2, device="cpu", progress=False)
    with pytest.raises(NotFittedError):
        detector.predict(test[:1])
    with pytest.raises(ValueError, match="has no points"):
        detector.fit([replace(train[0], points=None)])
    with pytest.raises(ValueError, match=r"tiny\.pcd.*only 5 points"):
        detector.fit([replace(train[0], points=train[0].points[:5], path="tiny.pcd")])
    bad = train[0].points.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"nan\.pcd.*NaN or infinite"):
        detector.fit([replace(train[0], points=bad, path="nan.pcd")])
    with pytest.raises(ValueError, match=r"zero\.pcd.*all zeros"):
        detector.fit([replace(train[0], points=np.zeros((100, 3)), path="zero.pcd")])
    with pytest.raises(ValueError, match="unknown visibility"):
        CPMF(visibility="sometimes")
    with pytest.raises(FileNotFoundError, match="no pretrained weights|weights file"):
        CPMF(backbone_name="resnet18", weights="/nonexistent/resnet18.pth", device="cpu").fit(train)


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_the_registry_builds_cpmf_with_its_presets(preset) -> None:
    table = methods.catalogue().set_index("name")
    assert table.loc["cpmf", "chapter"] == "09_point_clouds" and table.loc["cpmf", "needs"] == "points"
    assert table.loc["cpmf", "setting"] == "multimodal"  # as the survey files it
    detector = methods.create("cpmf", preset=preset, device="cpu", progress=False)
    for key, value in methods.preset_settings("cpmf", preset).items():
        assert getattr(detector, key) == (tuple(value) if isinstance(value, list) else value), key
    assert len(detector.rotations) == (6 if preset == "quick" else 27)
