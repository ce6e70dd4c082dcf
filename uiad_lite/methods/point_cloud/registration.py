"""Rigid registration of two unorganised clouds: RANSAC on FPFH matches, then ICP (open3d).

This is the alignment step of Reg3D-AD (Liu et al. 2023, Real3D-AD; released code
github.com/M-3LAB/Real3D-AD, ``feature_extractors/ransac_position.py``), in our own code, with the
released values as defaults (coordinates in millimetres, as in Real3D-AD):

* both clouds voxel-downsampled at ``voxel_size`` = 0.5; normals within 2·voxel (≤ 30 neighbours),
  FPFH within 5·voxel (≤ 100 neighbours);
* RANSAC over mutual FPFH matches (``mutual_filter=True``), 3 correspondences per hypothesis,
  point-to-point estimation without scaling, rejected early when edge lengths disagree by more than
  10 % or a match lies farther than 1.5·voxel; at most ``ransac_iterations`` = 100000, confidence 0.999;
* then point-to-point ICP from the RANSAC pose on the full clouds. The released scoring path stops
  after RANSAC (``get_registration_np``); its refined variant runs ICP with a 0.1 mm correspondence
  distance. ``icp=False`` gives the RANSAC-only path; ``icp_distance`` defaults to one voxel;
  ``icp_method="point_to_plane"`` minimises distances to the target's tangent planes instead, which
  suits two independent samplings of one surface (no point has an exact partner).

:func:`register` reports open3d's ``fitness`` (share of source points with a target point within
``icp_distance`` after alignment) and ``inlier_rmse``, which the detector uses to flag failures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uiad_lite.data.open3d_support import import_open3d

ICP_METHODS = ("point_to_point", "point_to_plane")


@dataclass
class RegistrationResult:
    """4×4 ``transformation`` mapping source onto target; ``fitness`` in [0, 1] and ``inlier_rmse`` after
    the last step; ``ransac_fitness`` after the global step alone."""

    transformation: np.ndarray
    fitness: float
    inlier_rmse: float
    ransac_fitness: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (
            np.asarray(points, dtype=np.float64) @ self.transformation[:3, :3].T + self.transformation[:3, 3]
        )


def _cloud(points: np.ndarray):
    o3d = import_open3d()
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))


def downsample_with_fpfh(points: np.ndarray, voxel_size: float):
    """(downsampled open3d cloud, its open3d FPFH Feature) with the released radii."""
    o3d = import_open3d()
    down = _cloud(points).voxel_down_sample(voxel_size)
    search = o3d.geometry.KDTreeSearchParamHybrid
    down.estimate_normals(search(radius=2 * voxel_size, max_nn=30))
    feature = o3d.pipelines.registration.compute_fpfh_feature(down, search(radius=5 * voxel_size, max_nn=100))
    return down, feature


def register(
    source: np.ndarray,
    target: np.ndarray,
    voxel_size: float = 0.5,
    *,
    icp: bool = True,
    icp_distance: float | None = None,
    ransac_iterations: int = 100000,
    confidence: float = 0.999,
    mutual_filter: bool = True,
    icp_method: str = "point_to_point",
    seed: int = 0,
    target_features=None,
) -> RegistrationResult:
    """Align ``source`` (N×3) onto ``target`` (M×3); see the module docstring. ``target_features`` may hold
    a precomputed ``downsample_with_fpfh(target, voxel_size)`` pair to save time over many sources."""
    o3d = import_open3d()
    o3d.utility.random.seed(int(seed))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):  # no C++ log in chapters
        return _register(
            o3d,
            source,
            target,
            voxel_size,
            icp,
            icp_distance,
            ransac_iterations,
            confidence,
            mutual_filter,
            target_features,
            icp_method,
        )


def _register(
    o3d,
    source,
    target,
    voxel_size,
    icp,
    icp_distance,
    ransac_iterations,
    confidence,
    mutual_filter,
    target_features,
    icp_method,
) -> RegistrationResult:
    if icp_method not in ICP_METHODS:
        raise ValueError(f"unknown icp_method {icp_method!r}; choose one of {list(ICP_METHODS)}")
    reg = o3d.pipelines.registration
    source_down, source_fpfh = downsample_with_fpfh(source, voxel_size)
    target_down, target_fpfh = target_features or downsample_with_fpfh(target, voxel_size)
    threshold = 1.5 * voxel_size
    ransac = reg.registration_ransac_based_on_feature_matching(
        source_down,
        target_down,
        source_fpfh,
        target_fpfh,
        mutual_filter,
        threshold,
        reg.TransformationEstimationPointToPoint(False),
        3,
        [
            reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
            reg.CorrespondenceCheckerBasedOnDistance(threshold),
        ],
        reg.RANSACConvergenceCriteria(int(ransac_iterations), float(confidence)),
    )
    distance = voxel_size if icp_distance is None else icp_distance
    source_cloud, target_cloud = _cloud(source), _cloud(target)
    transformation = np.asarray(ransac.transformation)
    if icp:
        if icp_method == "point_to_plane":
            target_cloud.estimate_normals(
                o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel_size, max_nn=30)
            )
            estimation = reg.TransformationEstimationPointToPlane()
        else:
            estimation = reg.TransformationEstimationPointToPoint(False)
        refined = reg.registration_icp(source_cloud, target_cloud, distance, transformation, estimation)
        transformation = np.asarray(refined.transformation)
    check = reg.evaluate_registration(source_cloud, target_cloud, distance, transformation)
    return RegistrationResult(
        transformation.copy(), float(check.fitness), float(check.inlier_rmse), float(ransac.fitness)
    )
