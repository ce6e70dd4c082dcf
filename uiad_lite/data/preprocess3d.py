"""BTF-style cleaning of organised point clouds, written out of place into a cache folder.

Back to the Feature (Horwitz & Hoshen 2023; survey ref. [53]) showed that on MVTec 3D-AD most of a
scan is the table the object lies on, and that removing it helps every 3D method. We follow the
recipe of the authors' released script (github.com/eliahuhorwitz/3D-ADS, ``utils/preprocessing.py``)
in our own code; every default of :class:`PlaneRemoval` is the released value:

1. fit a plane with RANSAC (`open3d` `segment_plane`: inlier distance 4 mm, 50 points per sample,
   1000 iterations) to the points in a 10-pixel frame along the image border, where only the table
   is visible; a point counts as valid when all three coordinates are non-zero;
2. drop every point closer than 5 mm to that plane;
3. run DBSCAN (`open3d` `cluster_dbscan`, eps 6 mm, 30 points) on *all* remaining valid points and
   keep the most frequent label, which removes specks and fragments of the table edge. As in the
   released code, DBSCAN's noise label takes part in that vote;
4. set the RGB pixels of every removed point to zero as well (``zero_rgb``).

Removed points become zeros, the dataset's "missing" value, so the output is a drop-in
replacement for the xyz TIFF (and the RGB PNG). The released script also pads every sample to a
square side rounded up to 100 pixels; we keep the original size, so masks stay aligned. Outputs
mirror the dataset's relative paths under ``<cache>/<dataset>-<hash of the root>-<hash of the
parameters>/``; the original files are never written, and existing outputs are reused on later runs.

Faster choices, kept as options (``PlaneRemoval.fast()``, measured in ``benchmarks/preprocess3d_bench.py``):
RANSAC on 3-point samples, DBSCAN on an even subsample of at most ``max_cluster_points`` points with
the rest assigned to their nearest sampled neighbour.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.open3d_support import import_open3d
from uiad_lite.data.readers import read_xyz_tiff


@dataclass(frozen=True)
class PlaneRemoval:
    """Parameters of the cleaning (units: metres, as in MVTec 3D-AD); defaults = BTF's released script."""

    border: int = 10  # width in pixels of the frame used to fit the table plane
    ransac_distance: float = 0.004  # RANSAC inlier threshold while fitting the plane
    distance: float = 0.005  # points closer than this to the fitted plane are table
    ransac_n: int = 50  # points per RANSAC sample (3 = the minimal sample, faster)
    iterations: int = 1000
    valid: Literal["all", "any"] = "all"  # a point is valid when all (or any) of x, y, z are non-zero
    cluster_eps: float = 0.006  # DBSCAN neighbourhood radius
    cluster_min_points: int = 30
    max_cluster_points: int | None = None  # None: DBSCAN on every point; else on an even subsample
    noise_can_win: bool = True  # DBSCAN's noise label (-1) competes for "largest cluster", as released
    zero_rgb: bool = True  # also zero the RGB pixels of removed points (in preprocess_records)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.valid not in ("all", "any"):
            raise ValueError(f"PlaneRemoval.valid must be 'all' or 'any', got {self.valid!r}")
        if self.ransac_n < 3:
            raise ValueError(f"PlaneRemoval.ransac_n must be at least 3, got {self.ransac_n!r}")
        if self.border < 1:
            raise ValueError(f"PlaneRemoval.border must be a positive number of pixels, got {self.border!r}")
        if self.max_cluster_points is not None and self.max_cluster_points < 1:
            raise ValueError(f"PlaneRemoval.max_cluster_points must be positive or None, "
                             f"got {self.max_cluster_points!r}")

    @classmethod
    def fast(cls, **overrides) -> PlaneRemoval:
        """The faster variant this package used before following the released code: 3-point RANSAC
        samples, DBSCAN on at most 20000 points (min_points 10), noise never kept."""
        settings = dict(ransac_n=3, ransac_distance=0.005, cluster_min_points=10,
                        max_cluster_points=20000, noise_can_win=False, valid="any")
        return cls(**{**settings, **overrides})

    def tag(self) -> str:
        return hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:8]


def valid_points(xyz: np.ndarray, params: PlaneRemoval) -> np.ndarray:
    """H x W bool: the pixels that carry a point (released rule: all three coordinates non-zero)."""
    nonzero = xyz != 0
    return nonzero.all(axis=-1) if params.valid == "all" else nonzero.any(axis=-1)


def fit_table_plane(xyz: np.ndarray, params: PlaneRemoval) -> np.ndarray:
    """(a, b, c, d) with a·x + b·y + c·z + d = 0, fitted by RANSAC to the border frame's points."""
    o3d = import_open3d()

    valid = valid_points(xyz, params)
    frame = np.zeros(valid.shape, dtype=bool)
    width = params.border
    frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
    points = xyz[valid & frame].astype(np.float64)
    if len(points) < max(3 * 3, params.ransac_n):
        raise ValueError(
            f"cannot fit a table plane: only {len(points)} valid points in the {width}-pixel border frame "
            f"(RANSAC samples {params.ransac_n}); the cloud may be empty or already cleaned "
            "(try another PlaneRemoval.border or a smaller ransac_n)"
        )
    o3d.utility.random.seed(params.seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    plane, _ = cloud.segment_plane(params.ransac_distance, params.ransac_n, params.iterations)
    plane = np.asarray(plane, dtype=np.float64)
    return plane / np.linalg.norm(plane[:3])


def largest_cluster(points: np.ndarray, params: PlaneRemoval) -> np.ndarray:
    """Boolean mask of the points that carry the most frequent DBSCAN label.

    Released behaviour (``noise_can_win=True``): the noise label -1 takes part in the vote, so a cloud
    that DBSCAN finds no cluster in is kept whole. With ``max_cluster_points`` DBSCAN runs on an even
    subsample and every other point takes the label of its nearest sampled point (noise when that one
    is farther than ``cluster_eps``)."""
    o3d = import_open3d()

    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    limit = params.max_cluster_points
    step = 1 if limit is None else max(1, int(np.ceil(len(points) / limit)))
    sample = points[::step].astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(sample))
    labels = np.asarray(cloud.cluster_dbscan(params.cluster_eps, params.cluster_min_points,
                                             print_progress=False))
    if step > 1:
        from scipy.spatial import cKDTree

        distance, nearest = cKDTree(sample).query(points, k=1)
        labels = np.where(distance <= params.cluster_eps, labels[nearest], -1)
    voters = labels if params.noise_can_win else labels[labels >= 0]
    if len(voters) == 0:
        return np.zeros(len(points), dtype=bool)
    values, counts = np.unique(voters, return_counts=True)
    return labels == values[np.argmax(counts)]


def background_mask(xyz: np.ndarray, params: PlaneRemoval = PlaneRemoval()) -> np.ndarray:
    """H x W bool: the points that the cleaning removes. As in the released script, the plane test
    applies to every pixel that carries a coordinate, the clustering only to valid points off the
    plane (a pixel without any coordinate is never marked)."""
    a, b, c, d = fit_table_plane(xyz, params)
    present = xyz.any(axis=-1)
    points = xyz.astype(np.float64)
    on_plane = present & (np.abs(points @ np.array([a, b, c]) + d) < params.distance)
    candidates = valid_points(xyz, params) & ~on_plane
    rows, cols = np.nonzero(candidates)
    in_cluster = largest_cluster(xyz[rows, cols], params)
    removed = on_plane.copy()
    removed[rows[~in_cluster], cols[~in_cluster]] = True
    return removed


def remove_background(xyz: np.ndarray, params: PlaneRemoval = PlaneRemoval()) -> np.ndarray:
    """A copy of `xyz` where table points and stray clusters are set to zero (missing)."""
    cleaned = xyz.copy()
    cleaned[background_mask(xyz, params)] = 0.0
    return cleaned


def remove_background_rgbd(
    xyz: np.ndarray, rgb: np.ndarray, params: PlaneRemoval = PlaneRemoval()
) -> tuple[np.ndarray, np.ndarray]:
    """Cleaned copies of `xyz` and of the aligned `rgb` image: the pixels of removed points are zero in
    both, as BTF's script writes them (pixels that had no point keep their colour)."""
    if rgb.shape[:2] != xyz.shape[:2]:
        raise ValueError(f"rgb of shape {rgb.shape} does not match the point cloud's {xyz.shape[:2]}")
    removed = background_mask(xyz, params)
    cleaned_xyz, cleaned_rgb = xyz.copy(), rgb.copy()
    cleaned_xyz[removed] = 0.0
    if params.zero_rgb:
        cleaned_rgb[removed] = 0
    return cleaned_xyz, cleaned_rgb


def default_cache() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return cache / "uiad_lite" / "preprocessed"


@dataclass
class PreprocessedCache:
    folder: Path
    mapping: dict[str, str]  # original xyz path -> cleaned xyz path
    images: dict[str, str] = field(default_factory=dict)  # original rgb path -> cleaned rgb (zero_rgb)

    def redirect(self, records: list[SampleRecord]) -> list[SampleRecord]:
        """The same records, reading the cleaned xyz (and rgb); the original paths stay in meta."""
        redirected = []
        for record in records:
            files = {**record.files, "xyz": self.mapping[record.files["xyz"]]}
            meta = {**record.meta, "xyz_original": record.files["xyz"]}
            if record.files.get("image") in self.images:
                files["image"] = self.images[record.files["image"]]
                meta["image_original"] = record.files["image"]
            redirected.append(replace(record, files=files, meta=meta))
        return redirected


def _write_atomically(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    write(partial)
    os.replace(partial, target)


def preprocess_records(
    records: list[SampleRecord],
    root: Path,
    name: str,
    preprocess_dir: Path | None = None,
    params: PlaneRemoval = PlaneRemoval(),
) -> PreprocessedCache:
    """Clean the xyz file (and, with ``params.zero_rgb``, the RGB image) of every record into the
    cache, skipping files already there."""
    import tifffile
    from PIL import Image

    from uiad_lite.data.readers import read_rgb

    root = Path(root).resolve()
    root_hash = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    base = Path(preprocess_dir) if preprocess_dir else default_cache()
    folder = (base / f"{name}-{root_hash}-{params.tag()}").expanduser().resolve()
    cache = PreprocessedCache(folder=folder, mapping={})
    emptied: list[Path] = []
    for record in records:
        source = Path(record.files["xyz"]).resolve()
        target = folder / source.relative_to(root)
        image_source = Path(record.files["image"]).resolve() if params.zero_rgb else None
        image_target = (folder / image_source.relative_to(root)).with_suffix(".png") if image_source else None
        if source in (target, image_target) or (image_source is not None and image_source == image_target):
            raise ValueError(
                f"preprocessing would overwrite the original file {source}; choose another preprocess_dir"
            )
        if not target.is_file() or (image_target is not None and not image_target.is_file()):
            xyz = read_xyz_tiff(source)
            removed = background_mask(xyz, params)
            cleaned = xyz.copy()
            cleaned[removed] = 0.0
            _write_atomically(target, partial(tifffile.imwrite, data=cleaned, photometric="rgb"))
            if image_target is not None:
                rgb = read_rgb(image_source).copy()
                if rgb.shape[:2] != xyz.shape[:2]:
                    raise ValueError(f"{image_source} has size {rgb.shape[:2]} but its point cloud {source} "
                                     f"has {xyz.shape[:2]}; BTF's cleaning needs them aligned")
                rgb[removed] = 0
                _write_atomically(image_target, partial(Image.fromarray(rgb).save, format="PNG"))
        if int(valid_points(read_xyz_tiff(target), params).sum()) < params.cluster_min_points:
            emptied.append(source)  # checked on cached files too: the warning comes back on every load
        cache.mapping[record.files["xyz"]] = str(target)
        if image_target is not None:
            cache.images[record.files["image"]] = str(image_target)
    if emptied:
        warnings.warn(
            f"background removal left fewer than {params.cluster_min_points} points in {len(emptied)} of "
            f"{len(records)} clouds of {name} (first: {emptied[0]}): the object lies within "
            f"PlaneRemoval.distance = {params.distance} of the table plane fitted on the {params.border}-px "
            f"border, so it was removed as table. For a flat object pass "
            f"preprocess=PlaneRemoval(distance=...) with a smaller distance, or preprocess=False",
            stacklevel=2,
        )
    return cache
