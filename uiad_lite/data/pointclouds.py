"""Point-cloud files (.pcd, labelled .txt) and the Real3D-AD / Anomaly-ShapeNet loaders.

Real3D-AD (Liu et al., NeurIPS 2023 D&B; survey ref. [80])::

    <root>/<category>/train/<n>_template.pcd          a few (4) complete normal scans
    <root>/<category>/test/<n>_good.pcd               normal test scan
    <root>/<category>/test/<n>_<defect>.pcd           e.g. 12_bulge.pcd, 13_sink.pcd
    <root>/<category>/gt/<n>_<defect>.txt             one point per line: "x y z label" (SPACE separated)

Anomaly-ShapeNet (Li et al., CVPR 2024; ref. [68]) looks alike but differs in the details::

    <root>/<category>/train/<category>_template<k>.pcd
    <root>/<category>/test/<category>_positive<k>.pcd  normal test shapes are called "positive"
    <root>/<category>/test/<category>_<defect><k>.pcd  e.g. ashtray0_bulge0.pcd
    <root>/<category>/GT/<category>_<defect><k>.txt    upper-case GT; lines "x,y,z,label" (COMMA separated)

For anomalous samples both datasets' reference loaders take the points *and* labels from the
ground-truth text file; so do we. Normal test samples read the .pcd and get all-false labels.
"""

from __future__ import annotations

import re
import zlib
from functools import partial
from pathlib import Path

import numpy as np

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.open3d_support import import_open3d
from uiad_lite.data.sample import Sample
from uiad_lite.data.splits import DatasetSplits, check_splits, make_splits, require_directory, sorted_files

REAL3D_LAYOUT = (
    "  <root>/<category>/train/*template*.pcd\n"
    "  <root>/<category>/test/<n>_good.pcd and <n>_<defect>.pcd\n"
    "  <root>/<category>/gt/<n>_<defect>.txt   lines 'x y z label' (space separated)"
)
SHAPENET_LAYOUT = (
    "  <root>/<category>/train/*template*.pcd\n"
    "  <root>/<category>/test/<category>_positive<k>.pcd and <category>_<defect><k>.pcd\n"
    "  <root>/<category>/GT/<category>_<defect><k>.txt   lines 'x,y,z,label' (comma separated)"
)
PCD_TYPES = {"F": "f", "U": "u", "I": "i"}


# ----------------------------------------------------------------------------------------- .pcd files
def read_pcd_header(raw: bytes, path: Path) -> tuple[dict[str, list[str]], int]:
    """Parse the text header of a .pcd file; returns (fields, byte offset of the data)."""
    header: dict[str, list[str]] = {}
    offset = 0
    while offset < len(raw):
        end = raw.find(b"\n", offset)
        end = len(raw) if end < 0 else end
        line = raw[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key.upper() not in {
            "VERSION",
            "FIELDS",
            "SIZE",
            "TYPE",
            "COUNT",
            "WIDTH",
            "HEIGHT",
            "VIEWPOINT",
            "POINTS",
            "DATA",
        }:
            raise ValueError(f"{path} is not a valid .pcd file: unexpected header line {line[:60]!r}")
        header[key.upper()] = values
        if key.upper() == "DATA":
            break
    if "DATA" not in header or "FIELDS" not in header:
        raise ValueError(f"{path} is not a valid .pcd file: no FIELDS/DATA header found")
    if not {"x", "y", "z"} <= set(header["FIELDS"]):
        raise ValueError(f"{path}: .pcd fields {header['FIELDS']} do not include x, y and z")
    return header, offset


def read_pcd(path: str | Path) -> np.ndarray:
    """Read the x, y, z columns of a .pcd file as N×3 float32.

    ASCII and binary files are parsed here (so a malformed file gives an error naming it);
    binary_compressed files are handed to open3d (`open3d.io.read_point_cloud`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point-cloud file not found: {path}")
    raw = path.read_bytes()
    header, offset = read_pcd_header(raw, path)
    fields = header["FIELDS"]
    counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
    count = int(header.get("POINTS", [header.get("WIDTH", ["0"])[0]])[0])
    kind = header["DATA"][0].lower() if header["DATA"] else ""
    columns = np.cumsum([0] + counts)[:-1]
    xyz_columns = [int(columns[fields.index(axis)]) for axis in "xyz"]
    if kind == "ascii":
        rows = [
            line.split()
            for line in raw[offset:].decode("ascii", errors="replace").splitlines()
            if line.strip()
        ]
        if len(rows) != count or any(len(row) != sum(counts) for row in rows):
            raise ValueError(
                f"{path}: header promises {count} points of {sum(counts)} values, found "
                f"{len(rows)} lines with {sorted({len(r) for r in rows})} values"
            )
        try:
            values = np.array(rows, dtype=np.float64) if rows else np.zeros((0, sum(counts)))
        except ValueError as error:
            raise ValueError(f"{path}: non-numeric value in the point data ({error})") from error
        points = values[:, xyz_columns]
    elif kind == "binary":
        sizes, types = header.get("SIZE", []), header.get("TYPE", [])
        dtype = np.dtype(
            [
                (f"{name}_{i}", f"<{PCD_TYPES.get(t, '?')}{s}", (c,))
                for i, (name, s, t, c) in enumerate(zip(fields, sizes, types, counts, strict=False))
            ]
        )
        if len(raw) - offset < dtype.itemsize * count:
            raise ValueError(
                f"{path}: binary data truncated ({len(raw) - offset} bytes for {count} points of "
                f"{dtype.itemsize} bytes)"
            )
        table = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        points = np.stack([table[f"{axis}_{fields.index(axis)}"][:, 0] for axis in "xyz"], axis=1)
    elif kind == "binary_compressed":
        o3d = import_open3d()

        cloud = o3d.io.read_point_cloud(str(path), format="pcd")
        points = np.asarray(cloud.points)
        if len(points) != count:
            raise ValueError(f"{path}: open3d read {len(points)} points, the header promises {count}")
    else:
        raise ValueError(f"{path}: unsupported .pcd DATA type {header['DATA']}")
    points = np.asarray(points, dtype=np.float32)
    if not np.isfinite(points).all():
        points = points[np.isfinite(points).all(axis=1)]
    return points


def write_pcd(path: str | Path, points: np.ndarray) -> None:
    """Write an N×3 cloud as an ASCII .pcd (v0.7) with 6 decimals; byte-identical for equal input."""
    points = np.asarray(points, dtype=np.float64)
    lines = [
        "# .PCD v0.7 - Point Cloud Data file format",
        "VERSION 0.7",
        "FIELDS x y z",
        "SIZE 4 4 4",
        "TYPE F F F",
        "COUNT 1 1 1",
        f"WIDTH {len(points)}",
        "HEIGHT 1",
        "VIEWPOINT 0 0 0 1 0 0 0",
        f"POINTS {len(points)}",
        "DATA ascii",
    ]
    body = "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in points)
    Path(path).write_text("\n".join(lines) + "\n" + body + ("\n" if len(points) else ""))


def read_labelled_points(path: str | Path, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Read 'x y z label' lines (delimiter ' ' for Real3D-AD, ',' for Anomaly-ShapeNet)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth point file not found: {path}")
    shown = "space" if delimiter == " " else repr(delimiter)
    try:
        table = np.loadtxt(path, delimiter=None if delimiter == " " else delimiter, ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise ValueError(
            f"{path}: expected lines 'x y z label' separated by {shown}; could not parse ({error})"
        ) from error
    if table.shape[1] != 4:
        raise ValueError(
            f"{path}: expected 4 values per line (x y z label, {shown}-separated), found {table.shape[1]}"
        )
    labels = table[:, 3]
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: the label column must be 0 or 1, found values {np.unique(labels)[:5]}")
    return table[:, :3].astype(np.float32), labels.astype(bool)


def write_labelled_points(
    path: str | Path, points: np.ndarray, labels: np.ndarray, delimiter: str = " "
) -> None:
    rows = (
        delimiter.join((f"{x:.6f}", f"{y:.6f}", f"{z:.6f}", str(int(flag))))
        for (x, y, z), flag in zip(np.asarray(points, dtype=np.float64), labels, strict=False)
    )
    Path(path).write_text("\n".join(rows) + "\n")


# ----------------------------------------------------------------------------------------- samples
def subsample(
    points: np.ndarray, labels: np.ndarray, max_points: int | None, key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most `max_points` points, chosen by a generator seeded from the file name (stable)."""
    if max_points is None or len(points) <= max_points:
        return points, labels
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    keep = np.sort(rng.choice(len(points), size=max_points, replace=False))
    return points[keep], labels[keep]


def read_point_sample(record: SampleRecord, max_points: int | None = None) -> Sample:
    if "labels" in record.files:
        points, labels = read_labelled_points(record.files["labels"], record.meta["delimiter"])
    else:
        points = read_pcd(record.files["points"])
        labels = np.zeros(len(points), dtype=bool)
    if len(points) == 0:
        raise ValueError(f"{record.path}: the point cloud is empty")
    source_points = len(points)
    points, labels = subsample(points, labels, max_points, record.path)
    meta = {**record.meta, "source_points": source_points}
    return Sample(
        category=record.category,
        split=record.split,
        label=record.label,
        defect=record.defect,
        path=record.path,
        points=points,
        point_labels=labels,
        meta=meta,
    )


# ----------------------------------------------------------------------------------------- loaders
def real3d_defect(stem: str) -> str:
    """'12_bulge' -> 'bulge', '482_bulge_cut' -> 'bulge', '3_good' -> 'good'."""
    parts = stem.split("_")
    return parts[1] if len(parts) > 1 else "unknown"


def shapenet_defect(stem: str) -> str:
    """'ashtray0_bulge2' -> 'bulge', 'ashtray0_positive1' -> 'good'."""
    match = re.match(r"^.*?_([A-Za-z]+)\d*$", stem)
    name = match.group(1) if match else "unknown"
    return "good" if name == "positive" else name


def index_point_category(
    category_dir: Path,
    category: str,
    *,
    gt_folder: str,
    delimiter: str,
    is_good,
    defect_of,
    layout: str,
    name: str,
) -> tuple[list[SampleRecord], list[SampleRecord]]:
    train = [
        SampleRecord(
            category=category,
            split="train",
            label=0,
            defect="good",
            path=str(path),
            files={"points": str(path)},
            meta={"delimiter": delimiter},
        )
        for path in sorted_files(category_dir / "train", (".pcd",))
    ]
    test = []
    for path in sorted_files(category_dir / "test", (".pcd",)):
        if "temp" in path.stem:  # Real3D-AD's reference loader skips template copies left in test/
            continue
        if is_good(path.stem):
            test.append(
                SampleRecord(
                    category=category,
                    split="test",
                    label=0,
                    defect="good",
                    path=str(path),
                    files={"points": str(path)},
                    meta={"delimiter": delimiter},
                )
            )
            continue
        gt = category_dir / gt_folder / f"{path.stem}.txt"
        if not gt.is_file():
            raise FileNotFoundError(
                f"{name}: no ground truth for anomalous scan {path}: expected {gt}\n"
                f"Expected layout:\n{layout}"
            )
        test.append(
            SampleRecord(
                category=category,
                split="test",
                label=1,
                defect=defect_of(path.stem),
                path=str(path),
                files={"points": str(path), "labels": str(gt)},
                meta={"delimiter": delimiter},
            )
        )
    return train, test


def load_point_dataset(
    root: Path, category: str, *, name: str, max_points: int | None = None
) -> DatasetSplits:
    """Real3D-AD or Anomaly-ShapeNet (chosen by `name`)."""
    if name == "anomaly_shapenet":
        layout, options = (
            SHAPENET_LAYOUT,
            dict(
                gt_folder="GT",
                delimiter=",",
                defect_of=shapenet_defect,
                is_good=lambda stem: "positive" in stem,
            ),
        )
    else:
        layout, options = (
            REAL3D_LAYOUT,
            dict(gt_folder="gt", delimiter=" ", defect_of=real3d_defect, is_good=lambda stem: "good" in stem),
        )
    root = Path(root)
    require_directory(root, f"{name} root folder", layout)
    category_dir = root / category
    require_directory(category_dir, f"{name} category folder {category!r}", layout)
    require_directory(category_dir / "train", f"{name} training folder", layout)
    require_directory(category_dir / "test", f"{name} test folder", layout)
    train, test = index_point_category(category_dir, category, layout=layout, name=name, **options)
    check_splits(name, category, train, test, category_dir, layout)
    reader = partial(read_point_sample, max_points=max_points)
    return make_splits(
        name, category, "points", root, reader, train, test, meta={"layout": name, "max_points": max_points}
    )


def list_categories(root: Path, name: str) -> list[str]:
    root = Path(root)
    layout = SHAPENET_LAYOUT if name == "anomaly_shapenet" else REAL3D_LAYOUT
    if not root.is_dir():
        raise FileNotFoundError(f"{name} root folder not found: {root}\nExpected layout:\n{layout}")
    return sorted(p.name for p in root.iterdir() if (p / "train").is_dir() and (p / "test").is_dir())
