"""What a dataset holds: its composition, the size of its defects, and which modality shows them.

* :func:`composition` — one row per category: training / validation / good test counts and one
  column per defect type (read from the file index, no image is opened); :func:`composition_summary`
  folds the defect columns into one readable column.
* :func:`defect_statistics` — one row per sample: defect area as a share of the image (or of the
  cloud's points) and the number of connected defect regions, with the size of each region.
  Regions are 8-connected components, as in AU-PRO (Bergmann et al., IJCV 2021), so the numbers
  here are the regions that metric averages over.
* :func:`region_table` and :func:`pixel_share_of_smallest` — the per-region view behind the gap
  between pixel AUROC (every defect pixel counts once) and AU-PRO (every region counts once).
* :func:`modality_contrast` — for RGB-D samples, how far the defect stands out from a ring of
  surrounding surface in colour and in depth (the survey's cookie example: some defects show in one
  modality only; Lin et al. 2024, Sec. 1).
* :func:`survey_catalogue` and :func:`compare_with_survey` — the survey's Table 2 beside what
  uiad-lite can load, and a dataset on disk beside the counts the survey publishes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from uiad_lite.data import synthetic
from uiad_lite.data.loading import categories as dataset_categories
from uiad_lite.data.loading import load
from uiad_lite.data.registry import REGISTRY, info
from uiad_lite.data.sample import Sample
from uiad_lite.data.splits import SETTINGS

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def settings_of(
    name: str, categories: Sequence[str] | None = None, root: str | Path | None = None
) -> dict[str, list[str]]:
    """Categories of `name` grouped by setting ("rgb", "rgbd", "points"); every setting is a key.

    With `categories` None, every category of the dataset (found on disk when `root` or
    `$UIAD_DATA` holds it). Given categories are checked against the dataset's list.
    """
    entry = info(name)
    grouped: dict[str, list[str]] = {setting: [] for setting in SETTINGS}
    if categories is None:
        for setting in SETTINGS:
            grouped[setting] = dataset_categories(name, root=root, setting=setting)
        return grouped
    known = set(synthetic.CATEGORIES) if name == "synthetic" else set(dataset_categories(name, root=root))
    for category in categories:
        if category not in known:
            raise ValueError(f"{name} has no category {category!r}; choose from {sorted(known)}")
        setting = synthetic.CATEGORIES[category] if name == "synthetic" else entry.setting
        grouped[setting].append(category)
    return grouped


def composition(
    name: str,
    categories: Sequence[str] | None = None,
    root: str | Path | None = None,
    size: str = "quick",
    seed: int = 0,
) -> pd.DataFrame:
    """Samples per category and split, with one column per defect type (0 where a category lacks it).

    Columns: setting, train, validation, test_good, one column per defect type, test_anomalous.
    Counts come from the loaders' file index (no file is read); real datasets are counted in full
    (the "quick" cap on training images is lifted here), the synthetic one in its `size` variant.
    """
    grouped = settings_of(name, categories, root)
    rows = []
    for setting, names in grouped.items():
        for category in names:
            splits = load(name, root=root, category=category, size=size, seed=seed, max_train=None)
            test_defects = pd.Series(splits.test.defects, dtype="object")
            row: dict[str, object] = {
                "category": category,
                "setting": setting,
                "train": len(splits.train),
                "validation": len(splits.validation),
                "test_good": int((test_defects == "good").sum()),
            }
            row.update(test_defects[test_defects != "good"].value_counts(sort=False).to_dict())
            rows.append(row)
    if not rows:
        raise ValueError(f"composition: no categories of {name!r} to count")
    table = pd.DataFrame(rows).set_index("category")
    fixed = ["setting", "train", "validation", "test_good"]
    defect_columns = [column for column in table.columns if column not in fixed]
    table[defect_columns] = table[defect_columns].fillna(0).astype(int)
    table["test_anomalous"] = table[defect_columns].sum(axis=1)
    return table[fixed + defect_columns + ["test_anomalous"]]


def composition_summary(table: pd.DataFrame) -> pd.DataFrame:
    """A narrow view of a :func:`composition` table: the fixed counts plus a `defect_types` column
    listing the defect types a category has, with their counts ("crack 10, hole 10")."""
    fixed = ["setting", "train", "validation", "test_good", "test_anomalous"]
    missing = [column for column in fixed if column not in table.columns]
    if missing:
        raise ValueError(f"composition_summary: not a composition table, it lacks {missing}")
    defect_columns = [column for column in table.columns if column not in fixed]
    listed = [
        ", ".join(f"{name} {int(count)}" for name, count in row.items() if count)
        for _, row in table[defect_columns].iterrows()
    ]
    return table[fixed].assign(defect_types=listed)


def examples_per_defect(
    defects: Sequence[str], per_defect: int, rng: np.random.Generator, max_types: int | None = None
) -> dict[str, list[int]]:
    """Positions of up to `per_defect` samples of each defect type, drawn with `rng` ("good" first).

    `defects` is a split's list of defect names (``split.defects``, read without opening files).
    With `max_types`, "good" plus the first `max_types` - 1 defect types in order of appearance.
    """
    if per_defect < 1:
        raise ValueError(f"per_defect must be at least 1, got {per_defect}")
    names = pd.unique(pd.Series(list(defects), dtype="object"))
    order = (["good"] if "good" in names else []) + [name for name in names if name != "good"]
    if max_types is not None:
        order = order[:max_types]
    positions = np.arange(len(defects))
    chosen = {}
    for name in order:
        matching = positions[np.asarray(defects, dtype=object) == name]
        picked = rng.choice(matching, min(per_defect, len(matching)), replace=False)
        chosen[name] = sorted(int(p) for p in picked)
    return chosen


def _pixel_regions(mask: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.bincount(labelled[mask] - 1, minlength=count).astype(np.int64)


def point_regions(
    points: np.ndarray, labels: np.ndarray, neighbours: int = 8, radius_factor: float = 2.0
) -> np.ndarray:
    """Sizes of the connected groups of anomalous points.

    Two anomalous points are linked when they are closer than `radius_factor` times the cloud's
    median distance to its `neighbours`-th nearest neighbour; a region is a connected component of
    that graph. Scans sample a surface irregularly, so the nearest-neighbour distance alone would
    cut one bulge into many pieces; the 8th neighbour's distance spans the local gaps.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if labels.shape != (len(points),):
        raise ValueError(f"point_regions: {len(points)} points but labels of shape {labels.shape}")
    if not labels.any():
        return np.zeros(0, dtype=np.int64)
    k = min(neighbours, len(points) - 1)
    spacing = float(np.median(cKDTree(points).query(points, k=k + 1)[0][:, k])) if k > 0 else 0.0
    anomalous = points[labels]
    pairs = cKDTree(anomalous).query_pairs(radius_factor * max(spacing, 1e-12), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(anomalous),) * 2)
    count, component = connected_components(graph, directed=False)
    return np.bincount(component, minlength=count).astype(np.int64)


def _defect_units(sample: Sample) -> tuple[str, int, np.ndarray]:
    """(unit, number of units in the sample, region sizes) from the mask or the point labels."""
    if sample.mask is not None:
        mask = np.asarray(sample.mask, dtype=bool)
        return "pixels", int(mask.size), _pixel_regions(mask)
    if sample.point_labels is not None:
        sample.require("points")
        return "points", int(len(sample.points)), point_regions(sample.points, sample.point_labels)
    if sample.label == 0:  # a normal sample may come without a mask
        total = sample.image.shape[0] * sample.image.shape[1] if sample.image is not None else 0
        return "pixels", int(total), np.zeros(0, dtype=np.int64)
    raise ValueError(
        f"sample {sample.path or sample.category!r} is anomalous but has neither mask nor point_labels"
    )


def defect_statistics(samples: Iterable[Sample], anomalous_only: bool = False) -> pd.DataFrame:
    """One row per sample: how much of it is defective and in how many separate regions.

    Columns: category, position (index in `samples`), defect, label, unit ("pixels" | "points"),
    total_units, defect_units, area_fraction (defect_units / total_units), regions (8-connected
    mask components, or linked groups of anomalous points), region_units (sizes, largest first).
    """
    rows = []
    for position, sample in enumerate(samples):
        if anomalous_only and sample.label == 0:
            continue
        unit, total, sizes = _defect_units(sample)
        sizes = np.sort(sizes)[::-1]
        defect_units = int(sizes.sum())
        rows.append(
            {
                "category": sample.category,
                "position": position,
                "defect": sample.defect,
                "label": int(sample.label),
                "unit": unit,
                "total_units": total,
                "defect_units": defect_units,
                "area_fraction": defect_units / total if total else np.nan,
                "regions": int(sizes.size),
                "region_units": tuple(int(size) for size in sizes),
            }
        )
    columns = [
        "category",
        "position",
        "defect",
        "label",
        "unit",
        "total_units",
        "defect_units",
        "area_fraction",
        "regions",
        "region_units",
    ]
    return pd.DataFrame(rows, columns=columns)


def region_table(statistics: pd.DataFrame) -> pd.DataFrame:
    """One row per defect region of a :func:`defect_statistics` table, with its share of the sample."""
    table = statistics.loc[
        statistics["regions"] > 0, ["category", "position", "defect", "unit", "total_units", "region_units"]
    ]
    table = table.explode("region_units").rename(columns={"region_units": "units"})
    table["units"] = table["units"].astype(np.int64)
    table["area_fraction"] = table["units"] / table["total_units"]
    return table.drop(columns="total_units").reset_index(drop=True)


def pixel_share_of_smallest(region_units: Sequence[int] | np.ndarray, region_share: float = 0.5) -> float:
    """Share of all defect pixels (or points) held by the smallest `region_share` of the regions.

    A detector that misses exactly those regions loses `region_share` of the per-region overlap that
    AU-PRO averages, but only this share of the defect pixels that pixel AUROC counts.
    """
    sizes = np.sort(np.asarray(region_units, dtype=np.float64))
    if sizes.size == 0:
        raise ValueError("pixel_share_of_smallest: no regions")
    if not 0.0 <= region_share <= 1.0:
        raise ValueError(f"region_share must lie in [0, 1], got {region_share}")
    count = int(np.floor(region_share * sizes.size))
    return float(sizes[:count].sum() / sizes.sum())


def _quadratic_design(xy: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(xy)), xy, xy**2, xy[:, :1] * xy[:, 1:]])


def robust_spread(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: the standard deviation of Gaussian data, outlier-proof."""
    values = np.asarray(values, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def robust_surface_residuals(
    ring_xyz: np.ndarray, inside_xyz: np.ndarray, trials: int = 200, cutoff: float = 2.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Residual depth of ring and inside points from a quadratic surface z(x, y) fitted robustly to the ring.

    Least median of squares (Rousseeuw, JASA 1984): `trials` random 6-point subsets of the ring each
    give an exact quadratic; the one with the smallest median |residual| wins, and a final least-squares
    fit uses the ring points within `cutoff` robust spreads of it. Up to half of the ring may lie on
    another surface (the table beyond the object's edge, a neighbouring feature) without bending the fit.
    """
    centre = ring_xyz[:, :2].mean(axis=0)
    scale = max(float(np.abs(ring_xyz[:, :2] - centre).max()), 1e-12)
    ring_design = _quadratic_design((ring_xyz[:, :2] - centre) / scale)
    inside_design = _quadratic_design((inside_xyz[:, :2] - centre) / scale)
    depth = ring_xyz[:, 2]
    rng = np.random.default_rng(seed)
    best, best_median = None, np.inf
    for _ in range(trials):
        subset = rng.choice(len(depth), ring_design.shape[1], replace=False)
        coefficients, *_ = np.linalg.lstsq(ring_design[subset], depth[subset], rcond=None)
        median = float(np.median(np.abs(depth - ring_design @ coefficients)))
        if median < best_median:
            best, best_median = coefficients, median
    inliers = np.abs(depth - ring_design @ best) <= cutoff * 1.4826 * max(best_median, 1e-15)
    if inliers.sum() >= ring_design.shape[1]:
        best, *_ = np.linalg.lstsq(ring_design[inliers], depth[inliers], rcond=None)
    return depth - ring_design @ best, inside_xyz[:, 2] - inside_design @ best


def colour_and_depth_contrast(sample: Sample, ring_width: int | None = None) -> tuple[float, float]:
    """(colour contrast, depth contrast) of one anomalous RGB-D sample's defect against its surroundings.

    The ring is the band of `ring_width` pixels (default: 3 % of the image side, at least 3) around
    the mask. Both numbers are signal-to-noise ratios built from robust statistics (medians), so
    that a ring reaching over the object's edge onto the table does not swamp them:

    * colour: distance between the median RGB inside the mask and in the ring, divided by the robust
      spread of the ring colours' distances to their median;
    * depth: a quadratic surface z(x, y) is fitted robustly to the ring's valid points
      (:func:`robust_surface_residuals`); the median |residual| inside the mask is divided by the
      robust spread of the ring residuals.

    About 1 or less means "not visible in that modality". Depth is NaN when fewer than 3 valid points
    lie inside the mask or fewer than 6 in the ring (e.g. a defect where the sensor returned nothing).
    """
    sample.require("image", "mask", "xyz")
    mask = np.asarray(sample.mask, dtype=bool)
    if not mask.any():
        raise ValueError(
            f"sample {sample.path or sample.category!r} has an empty mask; contrast needs a defect"
        )
    if mask.shape != sample.image.shape[:2] or mask.shape != sample.xyz.shape[:2]:
        raise ValueError(
            f"sample {sample.path!r}: mask {mask.shape}, image {sample.image.shape[:2]} and "
            f"xyz {sample.xyz.shape[:2]} must have the same height and width"
        )
    width = ring_width if ring_width is not None else max(3, round(0.03 * max(mask.shape)))
    ring = ndimage.binary_dilation(mask, structure=EIGHT_CONNECTED, iterations=width) & ~mask
    colour = sample.image.astype(np.float64)
    ring_colours = colour[ring]
    ring_centre = np.median(ring_colours, axis=0)
    ring_distances = np.linalg.norm(ring_colours - ring_centre, axis=1)
    colour_noise = max(1.4826 * float(np.median(ring_distances)), 1.0)  # at least one grey level
    colour_contrast = float(np.linalg.norm(np.median(colour[mask], axis=0) - ring_centre) / colour_noise)

    xyz = np.asarray(sample.xyz, dtype=np.float64)
    valid = np.any(xyz != 0, axis=-1)
    inside_points, ring_points = xyz[mask & valid], xyz[ring & valid]
    if len(inside_points) < 3 or len(ring_points) < 6:
        return colour_contrast, float("nan")
    ring_residual, inside_residual = robust_surface_residuals(ring_points, inside_points)
    depth_noise = max(robust_spread(ring_residual), 1e-12)
    depth_contrast = float(np.median(np.abs(inside_residual)) / depth_noise)
    return colour_contrast, depth_contrast


def modality_contrast(
    samples: Iterable[Sample], threshold: float = 3.0, ring_width: int | None = None
) -> pd.DataFrame:
    """One row per anomalous RGB-D sample: colour and depth contrast and where the defect shows.

    `visible_in` is "colour", "depth", "both" or "neither", calling a modality visible when its
    contrast (see :func:`colour_and_depth_contrast`) exceeds `threshold` — a rule of thumb, not a
    detector.
    """
    rows = []
    for position, sample in enumerate(samples):
        if sample.label == 0:
            continue
        colour, depth = colour_and_depth_contrast(sample, ring_width)
        in_colour, in_depth = colour > threshold, bool(depth > threshold)
        visible = {
            (True, True): "both",
            (True, False): "colour",
            (False, True): "depth",
            (False, False): "neither",
        }[(in_colour, in_depth)]
        rows.append(
            {
                "category": sample.category,
                "position": position,
                "defect": sample.defect,
                "colour_contrast": colour,
                "depth_contrast": depth,
                "visible_in": visible,
            }
        )
    return pd.DataFrame(
        rows, columns=["category", "position", "defect", "colour_contrast", "depth_contrast", "visible_in"]
    )


def _reference_numbers(text: str) -> list[int]:
    return [int(number) for number in re.findall(r"\d+", str(text))]


def survey_catalogue(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The survey's Table 2 with what uiad-lite offers for each dataset.

    Adds `uiad_name` (the name for :func:`uiad_lite.data.load`, empty when uiad-lite does not know the
    dataset), `loader` (True when a loader exists) and `download` ("direct", "manual", or empty).
    Datasets are matched by the survey's reference number.
    """
    if table is None:
        from uiad_lite import survey

        table = survey.datasets()
    by_reference = {}
    for entry in REGISTRY.values():
        numbers = _reference_numbers(entry.survey_ref)
        if numbers:
            by_reference[numbers[0]] = entry
    names, loaders, downloads = [], [], []
    for reference in table["reference"]:
        entry = by_reference.get(int(reference)) if pd.notna(reference) else None
        names.append(entry.name if entry else "")
        loaders.append(bool(entry and entry.loader))
        downloads.append(entry.method if entry else "")
    return table.assign(uiad_name=names, loader=loaders, download=downloads)


def compare_with_survey(name: str, counts: pd.DataFrame) -> pd.DataFrame:
    """A :func:`composition` table's totals beside the survey's Table 2 counts for dataset `name`.

    Rows: train, test_good, test_anomalous, validation, classes. Columns: survey, on_disk, difference.
    A category subset or a partial download shows up as a negative difference.
    """
    published = info(name).survey_stats
    if not published:
        raise ValueError(f"the survey publishes no counts for {name!r} (it is not in its Table 2)")
    on_disk = {
        "train": counts["train"].sum(),
        "test_good": counts["test_good"].sum(),
        "test_anomalous": counts["test_anomalous"].sum(),
        "validation": counts["validation"].sum(),
        "classes": len(counts),
    }
    rows = []
    for key, value in on_disk.items():
        reference = published.get(key)
        rows.append(
            {
                "count": key,
                "survey": reference,
                "on_disk": int(value),
                "difference": int(value) - reference if reference is not None else None,
            }
        )
    return pd.DataFrame(rows).set_index("count").astype("Int64")
