"""BTF-style cleaning of organised point clouds, written out of place into a cache folder.

Back to the Feature (Horwitz & Hoshen 2023; survey ref. [53]) showed that on MVTec 3D-AD most of a
scan is the table the object lies on, and that removing it helps every 3D method. We follow the
same recipe in our own code:

1. fit a plane with RANSAC (`open3d` `segment_plane`) to the valid points in a frame along the
   image border, where only the table is visible;
2. drop every point within `distance` of that plane;
3. keep the largest DBSCAN cluster (`open3d` `cluster_dbscan`) of what remains, which removes
   specks and fragments of the table edge.

Removed points become zeros, the dataset's "missing" value, so the output is a drop-in
replacement for the xyz TIFF. Outputs mirror the dataset's relative paths under
``<cache>/<dataset>-<hash of the root>-<hash of the parameters>/``; the original files are never
written, and existing outputs are reused on later runs.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.open3d_support import import_open3d
from uiad_lite.data.readers import read_xyz_tiff


@dataclass(frozen=True)
class PlaneRemoval:
    """Parameters of the cleaning (units: metres, as in MVTec 3D-AD)."""

    border: int = 10  # width in pixels of the frame used to fit the table plane
    distance: float = 0.005  # points closer than this to the plane are table
    ransac_n: int = 3
    iterations: int = 1000
    cluster_eps: float = 0.006  # DBSCAN neighbourhood radius
    cluster_min_points: int = 10
    max_cluster_points: int = 20000  # DBSCAN runs on an even subsample of at most this many points
    seed: int = 0

    def tag(self) -> str:
        return hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:8]


def fit_table_plane(xyz: np.ndarray, params: PlaneRemoval) -> np.ndarray:
    """(a, b, c, d) with a·x + b·y + c·z + d = 0, fitted by RANSAC to the border frame's points."""
    o3d = import_open3d()

    valid = xyz.any(axis=-1)
    frame = np.zeros(valid.shape, dtype=bool)
    width = params.border
    frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
    points = xyz[valid & frame].astype(np.float64)
    if len(points) < 3 * params.ransac_n:
        raise ValueError(
            f"cannot fit a table plane: only {len(points)} valid points in the {width}-pixel border frame; "
            f"the cloud may be empty or already cleaned (try another PlaneRemoval.border)"
        )
    o3d.utility.random.seed(params.seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    plane, _ = cloud.segment_plane(params.distance, params.ransac_n, params.iterations)
    plane = np.asarray(plane, dtype=np.float64)
    return plane / np.linalg.norm(plane[:3])


def largest_cluster(points: np.ndarray, params: PlaneRemoval) -> np.ndarray:
    """Boolean mask of the points that belong to the largest DBSCAN cluster."""
    o3d = import_open3d()
    from scipy.spatial import cKDTree

    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    step = max(1, int(np.ceil(len(points) / params.max_cluster_points)))
    sample = points[::step].astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(sample))
    labels = cloud.cluster_dbscan(params.cluster_eps, params.cluster_min_points, print_progress=False)
    labels = np.asarray(labels)
    if (labels >= 0).sum() == 0:
        return np.zeros(len(points), dtype=bool)
    biggest = np.bincount(labels[labels >= 0]).argmax()
    if step == 1:
        return labels == biggest
    distance, nearest = cKDTree(sample).query(points, k=1)
    return (labels[nearest] == biggest) & (distance <= params.cluster_eps)


def remove_background(xyz: np.ndarray, params: PlaneRemoval = PlaneRemoval()) -> np.ndarray:
    """A copy of `xyz` where table points and stray clusters are set to zero (missing)."""
    a, b, c, d = fit_table_plane(xyz, params)
    cleaned = xyz.copy()
    valid = xyz.any(axis=-1)
    points = xyz.astype(np.float64)
    off_plane = np.abs(points @ np.array([a, b, c]) + d) > params.distance
    keep = valid & off_plane
    rows, cols = np.nonzero(keep)
    in_cluster = largest_cluster(xyz[rows, cols], params)
    keep[rows[~in_cluster], cols[~in_cluster]] = False
    cleaned[~keep] = 0.0
    return cleaned


def default_cache() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return cache / "uiad_lite" / "preprocessed"


@dataclass
class PreprocessedCache:
    folder: Path
    mapping: dict[str, str]  # original xyz path -> cleaned xyz path

    def redirect(self, records: list[SampleRecord]) -> list[SampleRecord]:
        """The same records, reading the cleaned xyz (the original path stays in meta)."""
        return [
            replace(
                record,
                files={**record.files, "xyz": self.mapping[record.files["xyz"]]},
                meta={**record.meta, "xyz_original": record.files["xyz"]},
            )
            for record in records
        ]


def preprocess_records(
    records: list[SampleRecord],
    root: Path,
    name: str,
    preprocess_dir: Path | None = None,
    params: PlaneRemoval = PlaneRemoval(),
) -> PreprocessedCache:
    """Clean the xyz file of every record into the cache (skipping files already there)."""
    import tifffile

    root = Path(root).resolve()
    root_hash = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    base = Path(preprocess_dir) if preprocess_dir else default_cache()
    folder = (base / f"{name}-{root_hash}-{params.tag()}").expanduser().resolve()
    mapping: dict[str, str] = {}
    for record in records:
        source = Path(record.files["xyz"]).resolve()
        target = folder / source.relative_to(root)
        if target == source:
            raise ValueError(
                f"preprocessing would overwrite the original file {source}; choose another preprocess_dir"
            )
        if not target.is_file():
            cleaned = remove_background(read_xyz_tiff(source), params)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
            tifffile.imwrite(partial, cleaned, photometric="rgb")
            os.replace(partial, target)
        mapping[record.files["xyz"]] = str(target)
    return PreprocessedCache(folder=folder, mapping=mapping)
