"""Dataset statistics: composition on real-format fixtures, defect sizes and regions on hand-drawn masks,
colour/depth contrast on hand-built RGB-D surfaces, the survey catalogue."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
import data_fixtures as fx  # noqa: E402

from uiad_lite import survey  # noqa: E402
from uiad_lite.data import Sample  # noqa: E402
from uiad_lite.data import statistics as st  # noqa: E402


def image_sample(mask: np.ndarray, defect: str = "scratch", category: str = "toy") -> Sample:
    image = np.zeros((*mask.shape, 3), dtype=np.uint8)
    return Sample(
        category=category,
        split="test",
        label=int(mask.any()),
        defect=defect if mask.any() else "good",
        image=image,
        mask=mask,
    )


# ---------------------------------------------------------------- defect sizes and regions


def test_defect_statistics_counts_area_and_8_connected_regions():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:5, 2:5] = True  # 9 pixels
    mask[10:12, 10:15] = True  # 10 pixels
    mask[17, 17] = mask[18, 18] = True  # touch at a corner: one 8-connected region of 2
    good = np.zeros((20, 20), dtype=bool)
    table = st.defect_statistics([image_sample(mask), image_sample(good)])
    defective, normal = table.iloc[0], table.iloc[1]
    assert defective["defect_units"] == 21
    assert defective["area_fraction"] == pytest.approx(21 / 400)
    assert defective["regions"] == 3
    assert defective["region_units"] == (10, 9, 2)
    assert defective["unit"] == "pixels" and defective["total_units"] == 400
    assert normal["defect"] == "good" and normal["regions"] == 0 and normal["area_fraction"] == 0
    only = st.defect_statistics([image_sample(good), image_sample(mask)], anomalous_only=True)
    assert list(only["position"]) == [1]


def test_point_regions_link_neighbours_only():
    # a 20 x 20 grid with spacing 1: the 8th neighbour lies at sqrt(2), so anomalous points
    # closer than 2 * sqrt(2) = 2.83 are linked
    xs, ys = np.meshgrid(np.arange(20.0), np.arange(20.0))
    points = np.column_stack([xs.ravel(), ys.ravel(), np.zeros(400)])
    x, y = points[:, 0], points[:, 1]
    labels = np.zeros(400, dtype=bool)
    labels[(x < 3) & (y < 2)] = True  # 6 points
    labels[(x >= 12) & (x < 16) & (y >= 12) & (y < 16)] = True  # 16 points
    labels[(x == 17) & (y == 15)] = True  # 2 from (15, 15): joins the 16
    labels[(x == 5) & (y == 0)] = True  # 3 from (2, 0): alone
    labels[(x == 18) & (y == 18)] = True  # 4.24 from (15, 15): alone
    assert sorted(st.point_regions(points, labels)) == [1, 1, 6, 17]
    sample = Sample(
        category="panel", split="test", label=1, defect="bulge", points=points, point_labels=labels
    )
    row = st.defect_statistics([sample]).iloc[0]
    assert row["unit"] == "points" and row["total_units"] == 400
    assert row["area_fraction"] == pytest.approx(25 / 400)
    assert row["region_units"] == (17, 6, 1, 1)
    with pytest.raises(ValueError, match="labels"):
        st.point_regions(points, labels[:10])


def test_point_regions_keep_one_bulge_of_an_irregular_scan_together():
    rng = np.random.default_rng(4)
    points = np.column_stack([rng.uniform(0, 100, (4000, 2)), rng.normal(0, 0.02, 4000)])
    labels = np.hypot(points[:, 0] - 50, points[:, 1] - 50) < 6  # one disc, about 45 points
    assert st.point_regions(points, labels).tolist() == [labels.sum()]


def test_anomalous_sample_without_ground_truth_is_an_error():
    sample = Sample(
        category="toy", split="test", label=1, defect="scratch", image=np.zeros((4, 4, 3), np.uint8)
    )
    with pytest.raises(ValueError, match="neither mask nor point_labels"):
        st.defect_statistics([sample])


def test_region_table_and_pixel_share_of_smallest():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0, 0] = True
    mask[5:8, 5:8] = True
    table = st.region_table(
        st.defect_statistics([image_sample(mask), image_sample(np.zeros((10, 10), bool))])
    )
    assert sorted(table["units"]) == [1, 9]
    assert sorted(table["area_fraction"]) == pytest.approx([0.01, 0.09])
    assert st.pixel_share_of_smallest([96, 1, 2, 1], 0.5) == pytest.approx(2 / 100)
    assert st.pixel_share_of_smallest([5, 5], 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no regions"):
        st.pixel_share_of_smallest([], 0.5)
    with pytest.raises(ValueError, match="region_share"):
        st.pixel_share_of_smallest([1, 2], 1.5)


def test_examples_per_defect_is_seeded_and_puts_good_first():
    defects = ["scratch", "good", "good", "hole", "scratch", "good", "scratch"]
    first = st.examples_per_defect(defects, 2, np.random.default_rng(3))
    again = st.examples_per_defect(defects, 2, np.random.default_rng(3))
    assert first == again
    assert list(first) == ["good", "scratch", "hole"]
    assert first["hole"] == [3]
    for name, positions in first.items():
        assert len(positions) == min(2, defects.count(name))
        assert all(defects[p] == name for p in positions)
    assert list(st.examples_per_defect(defects, 1, np.random.default_rng(0), max_types=2)) == [
        "good",
        "scratch",
    ]
    with pytest.raises(ValueError, match="per_defect"):
        st.examples_per_defect(defects, 0, np.random.default_rng(0))


# ---------------------------------------------------------------- composition on real on-disk formats


def test_composition_counts_every_file_of_a_real_dataset(tmp_path):
    fx.write_mvtec_ad(
        tmp_path, "bottle", n_train=103, n_good=2, defects={"broken_large": 2, "contamination": 1}
    )
    fx.write_mvtec_ad(tmp_path, "zipper", n_train=4, n_good=1, defects={"rough": 3}, seed=1)
    table = st.composition("mvtec_ad", ["bottle", "zipper"], root=tmp_path)
    assert table.loc["bottle", "train"] == 103  # the quick preset's 100-image cap is lifted
    assert table.loc["bottle", ["test_good", "broken_large", "contamination", "rough"]].tolist() == [
        2,
        2,
        1,
        0,
    ]
    assert table.loc["zipper", ["test_good", "rough", "test_anomalous"]].tolist() == [1, 3, 3]
    assert table.loc["bottle", "test_anomalous"] == 3
    assert (table["setting"] == "rgb").all() and (table["validation"] == 0).all()
    summary = st.composition_summary(table)
    assert summary.loc["bottle", "defect_types"] == "broken_large 2, contamination 1"
    assert summary.loc["zipper", "defect_types"] == "rough 3"
    assert list(summary.columns[:5]) == ["setting", "train", "validation", "test_good", "test_anomalous"]
    with pytest.raises(ValueError, match="not a composition table"):
        st.composition_summary(table.drop(columns="train"))


def test_composition_of_an_rgbd_dataset_and_comparison_with_the_survey(tmp_path):
    fx.write_mvtec3d(tmp_path, "cookie")
    table = st.composition("mvtec_3d", root=tmp_path)
    assert table.loc["cookie", ["setting", "train", "validation", "test_good", "hole"]].tolist() == [
        "rgbd",
        3,
        1,
        1,
        2,
    ]
    compared = st.compare_with_survey("mvtec_3d", table)
    assert compared.loc["train", "survey"] == 2656 and compared.loc["train", "on_disk"] == 3
    assert compared.loc["train", "difference"] == 3 - 2656
    assert compared.loc["classes", "on_disk"] == 1
    with pytest.raises(ValueError, match="no counts"):
        st.compare_with_survey("synthetic", table)


def test_settings_of_groups_categories(monkeypatch):
    monkeypatch.delenv("UIAD_DATA", raising=False)
    grouped = st.settings_of("synthetic", ["cookie", "brick", "panel"])
    assert grouped == {"rgb": ["brick"], "rgbd": ["cookie"], "points": ["panel"]}
    everything = st.settings_of("synthetic")
    assert sum(map(len, everything.values())) == 8 and everything["rgbd"] == ["cookie", "tablet"]
    real = st.settings_of("mvtec_3d")
    assert real["rgb"] == [] and real["points"] == [] and "cookie" in real["rgbd"]
    with pytest.raises(ValueError, match="no category 'pizza'"):
        st.settings_of("synthetic", ["pizza"])


# ---------------------------------------------------------------- colour / depth contrast


def rgbd_sample(
    colour_change: float,
    depth_change: float,
    curved: bool = False,
    seed: int = 0,
    step_in_ring: bool = False,
    hole_in_data: bool = False,
) -> Sample:
    """A 64 x 64 surface 0.25 m away (optionally a dome), grey texture; the defect: a disc of radius 6."""
    rng = np.random.default_rng(seed)
    size, pitch = 64, 0.001
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = (cols - size / 2) * pitch, (rows - size / 2) * pitch
    z = 0.25 + 0.02 * x - 0.01 * y + rng.normal(0, 1e-5, (size, size))
    if curved:
        z -= 20.0 * (x**2 + y**2)  # a dome: 5 mm higher in the middle than at the corners
    mask = np.hypot(rows - 30, cols - 30) < 6
    z[mask] += depth_change
    if step_in_ring:
        z[cols >= 37] -= 0.005  # a 5 mm step through the right part of the ring (e.g. the object's edge)
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    if hole_in_data:
        xyz[mask] = 0.0
    image = np.clip(rng.normal(128, 6, (size, size, 3)), 0, 255)
    image[mask] += colour_change
    return Sample(
        category="toy", split="test", label=1, defect="d", image=image.astype(np.uint8), mask=mask, xyz=xyz
    )


@pytest.mark.parametrize("curved", [False, True])
def test_contrast_separates_colour_only_depth_only_and_both(curved):
    colour_only = rgbd_sample(60, 0.0, curved)
    depth_only = rgbd_sample(0, 0.0005, curved)  # 0.5 mm dent, noise 0.01 mm
    both = rgbd_sample(60, 0.0005, curved)
    table = st.modality_contrast([colour_only, depth_only, both], threshold=3.0)
    assert list(table["visible_in"]) == ["colour", "depth", "both"]
    colour, depth = st.colour_and_depth_contrast(colour_only)
    # the colour shift is 60 grey levels per channel against a noise of about 6
    assert colour > 5 and depth < 1.5
    colour, depth = st.colour_and_depth_contrast(depth_only)
    assert colour < 1.5 and depth > 10


def test_surface_fit_ignores_a_step_crossing_part_of_the_ring():
    sample = rgbd_sample(60, 0.0, step_in_ring=True)
    ring = ndimage.binary_dilation(sample.mask, structure=np.ones((3, 3), bool), iterations=3) & ~sample.mask
    ring_xyz, inside_xyz = sample.xyz[ring].astype(np.float64), sample.xyz[sample.mask].astype(np.float64)
    assert 0.1 < (ring_xyz[:, 0] > 0.004).mean() < 0.3  # the step covers a minority of the ring
    ring_residual, inside_residual = st.robust_surface_residuals(ring_xyz, inside_xyz)
    assert np.median(np.abs(inside_residual)) < 3e-5  # the flat surface under the defect, to noise level
    assert np.median(np.abs(ring_residual)) < 3e-5
    # an ordinary least-squares quadratic is bent by the step: that is what the robust fit avoids
    design = np.column_stack(
        [np.ones(len(ring_xyz)), ring_xyz[:, :2], ring_xyz[:, :2] ** 2, ring_xyz[:, :1] * ring_xyz[:, 1:2]]
    )
    coefficients, *_ = np.linalg.lstsq(design, ring_xyz[:, 2], rcond=None)
    assert np.median(np.abs(ring_xyz[:, 2] - design @ coefficients)) > 1e-4
    _, depth = st.colour_and_depth_contrast(sample)
    assert depth < 1.5
    _, dent_depth = st.colour_and_depth_contrast(rgbd_sample(0, 0.0005, step_in_ring=True))
    assert dent_depth > 10


def test_missing_depth_inside_the_defect_gives_nan_and_good_samples_are_skipped():
    colour, depth = st.colour_and_depth_contrast(rgbd_sample(60, 0.0, hole_in_data=True))
    assert colour > 5 and np.isnan(depth)
    good = Sample(
        category="toy",
        split="test",
        label=0,
        image=np.zeros((8, 8, 3), np.uint8),
        mask=np.zeros((8, 8), bool),
        xyz=np.ones((8, 8, 3), np.float32),
    )
    assert st.modality_contrast([good]).empty
    no_depth = Sample(
        category="toy", split="test", label=1, image=np.zeros((8, 8, 3), np.uint8), mask=np.ones((8, 8), bool)
    )
    with pytest.raises(ValueError, match="xyz"):
        st.modality_contrast([no_depth])


def test_robust_spread_is_the_gaussian_sigma():
    values = np.random.default_rng(0).normal(0, 2.0, 200_000)
    assert st.robust_spread(values) == pytest.approx(2.0, rel=0.02)


# ---------------------------------------------------------------- the survey's Table 2


def test_survey_catalogue_matches_by_reference_number():
    table = st.survey_catalogue(survey.datasets()).set_index("name")
    assert table.loc["MVTec AD", "uiad_name"] == "mvtec_ad" and table.loc["MVTec AD", "loader"]
    assert table.loc["MVTec 3D-AD", "uiad_name"] == "mvtec_3d"
    assert table.loc["Real3D-AD", "download"] == "manual"
    assert table.loc["Eyecandies", "uiad_name"] == "eyecandies" and not table.loc["Eyecandies", "loader"]
    assert table.loc["GoodsAD", "uiad_name"] == "" and not table.loc["GoodsAD", "loader"]
    assert isinstance(table, pd.DataFrame) and len(table) == len(survey.datasets())
