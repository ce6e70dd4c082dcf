"""Writers of tiny datasets in the exact on-disk formats of the real ones (used by tests/test_data_*.py).

Each writer returns what it wrote (arrays by relative path) so a test can compare a loaded sample
with the bytes on disk.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def random_image(rng: np.random.Generator, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    return rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)


def random_mask(rng: np.random.Generator, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    top, left = rng.integers(0, size[0] - 6), rng.integers(0, size[1] - 6)
    mask[top : top + 5, left : left + 4] = True
    return mask


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_mvtec_ad(
    root: Path,
    category: str = "bottle",
    n_train: int = 5,
    n_good: int = 2,
    defects: dict[str, int] | None = None,
    size: tuple[int, int] = (24, 32),
    seed: int = 0,
) -> dict:
    """MVTec AD / MPDD layout: train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png."""
    rng = np.random.default_rng(seed)
    defects = {"broken_large": 2, "contamination": 1} if defects is None else defects
    written: dict[str, np.ndarray] = {}
    base = root / category
    for i in range(n_train):
        written[f"train/good/{i:03d}.png"] = random_image(rng, size)
    for i in range(n_good):
        written[f"test/good/{i:03d}.png"] = random_image(rng, size)
    for defect, count in defects.items():
        for i in range(count):
            written[f"test/{defect}/{i:03d}.png"] = random_image(rng, size)
            written[f"ground_truth/{defect}/{i:03d}_mask.png"] = random_mask(rng, size).astype(np.uint8) * 255
    for relative, array in written.items():
        save(base / relative, array)
    return written


def write_btad(root: Path, category: str = "01", size: tuple[int, int] = (24, 32), seed: int = 1) -> dict:
    """BTAD: train/ok, test/ok, test/ko (.bmp images), ground_truth/ko/<stem>.png masks (no _mask suffix)."""
    rng = np.random.default_rng(seed)
    written = {
        "train/ok/0000.bmp": random_image(rng, size),
        "train/ok/0001.bmp": random_image(rng, size),
        "test/ok/0000.bmp": random_image(rng, size),
        "test/ko/0000.bmp": random_image(rng, size),
        "test/ko/0001.bmp": random_image(rng, size),
        "ground_truth/ko/0000.png": random_mask(rng, size).astype(np.uint8) * 255,
        "ground_truth/ko/0001.bmp": random_mask(rng, size).astype(np.uint8) * 255,
    }
    for relative, array in written.items():
        save(root / category / relative, array)
    return written


def write_mvtec_loco(
    root: Path, category: str = "breakfast_box", size: tuple[int, int] = (24, 32), seed: int = 2
) -> dict:
    """LOCO: validation split; masks are folders of region PNGs (non-binary grey values) to be OR-ed."""
    rng = np.random.default_rng(seed)
    written: dict[str, np.ndarray] = {}
    for split, count in (("train/good", 3), ("validation/good", 2), ("test/good", 1)):
        for i in range(count):
            written[f"{split}/{i:03d}.png"] = random_image(rng, size)
    for defect, n_regions in (("logical_anomalies", 2), ("structural_anomalies", 1)):
        written[f"test/{defect}/000.png"] = random_image(rng, size)
        for region in range(n_regions):
            grey = np.zeros(size, dtype=np.uint8)
            grey[random_mask(rng, size)] = 251 - region  # LOCO stores a per-defect grey value, not 255
            written[f"ground_truth/{defect}/000/{region:03d}.png"] = grey
    for relative, array in written.items():
        save(root / category / relative, array)
    return written


def write_visa(root: Path, category: str = "candle", size: tuple[int, int] = (24, 32), seed: int = 3) -> dict:
    """VisA: Data/Images/{Normal,Anomaly}/*.JPG, Data/Masks/Anomaly/*.png, split_csv/1cls.csv."""
    rng = np.random.default_rng(seed)
    rows, written = [], {}
    for i in range(4):
        relative = f"{category}/Data/Images/Normal/{i:04d}.JPG"
        written[relative] = random_image(rng, size)
        rows.append([category, "train" if i < 3 else "test", "normal", relative, ""])
    for i in range(2):
        relative = f"{category}/Data/Images/Anomaly/{i:03d}.JPG"
        mask_relative = f"{category}/Data/Masks/Anomaly/{i:03d}.png"
        written[relative] = random_image(rng, size)
        mask = np.zeros(size, dtype=np.uint8)
        mask[random_mask(rng, size)] = i + 1  # VisA masks hold small region indices
        written[mask_relative] = mask
        rows.append([category, "test", "anomaly", relative, mask_relative])
    for relative, array in written.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, format="JPEG" if relative.endswith(".JPG") else "PNG", quality=95)
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)
    return written


def random_xyz(rng: np.random.Generator, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    xyz = rng.normal(0, 0.01, size=(*size, 3)).astype(np.float32)
    xyz[..., 2] += 0.25
    xyz[:2] = 0.0  # missing rows, as at real image borders
    return xyz


def write_mvtec3d(
    root: Path, category: str = "cookie", size: tuple[int, int] = (24, 32), seed: int = 4
) -> dict:
    """MVTec 3D-AD: <split>/<defect>/{rgb/*.png, xyz/*.tiff, gt/*.png}."""
    rng = np.random.default_rng(seed)
    written: dict[str, np.ndarray] = {}
    plan = [("train", "good", 3), ("validation", "good", 1), ("test", "good", 1), ("test", "hole", 2)]
    for split, defect, count in plan:
        for i in range(count):
            folder = f"{split}/{defect}"
            written[f"{folder}/rgb/{i:03d}.png"] = random_image(rng, size)
            written[f"{folder}/xyz/{i:03d}.tiff"] = random_xyz(rng, size)
            if split == "test":
                mask = random_mask(rng, size) if defect != "good" else np.zeros(size, dtype=bool)
                written[f"{folder}/gt/{i:03d}.png"] = mask.astype(np.uint8) * 255
    for relative, array in written.items():
        path = root / category / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".tiff"):
            tifffile.imwrite(path, array, photometric="rgb")
        else:
            Image.fromarray(array).save(path)
    return written


def pcd_text(points: np.ndarray) -> str:
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n"
        f"COUNT 1 1 1\nWIDTH {len(points)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {len(points)}\nDATA ascii\n"
    )
    return header + "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in points)


def write_real3d(root: Path, category: str = "airplane", seed: int = 5) -> dict:
    """Real3D-AD: train/*template*.pcd, test/<n>_good|<defect>.pcd, gt/<n>_<defect>.txt 'x y z label'."""
    rng = np.random.default_rng(seed)
    written: dict[str, np.ndarray] = {}
    base = root / category
    for folder in ("train", "test", "gt"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for i in range(2):
        points = rng.normal(size=(50, 3)).round(4)
        written[f"train/{i}_template.pcd"] = points
        (base / "train" / f"{i}_template.pcd").write_text(pcd_text(points))
    good = rng.normal(size=(40, 3)).round(4)
    written["test/3_good.pcd"] = good
    (base / "test" / "3_good.pcd").write_text(pcd_text(good))
    for n, defect in ((10, "bulge"), (2, "sink")):
        points = rng.normal(size=(60, 3)).round(4)
        labels = rng.random(60) < 0.2
        (base / "test" / f"{n}_{defect}.pcd").write_text(pcd_text(points))
        lines = "".join(
            f"{x:.4f} {y:.4f} {z:.4f} {int(flag)}\n" for (x, y, z), flag in zip(points, labels, strict=True)
        )
        (base / "gt" / f"{n}_{defect}.txt").write_text(lines)
        written[f"gt/{n}_{defect}.txt"] = (points, labels)
    return written


def write_anomaly_shapenet(root: Path, category: str = "ashtray0", seed: int = 6) -> dict:
    """Anomaly-ShapeNet: train/*template*.pcd, test/<cat>_positive<k>.pcd, GT/<cat>_<defect><k>.txt (CSV)."""
    rng = np.random.default_rng(seed)
    written: dict[str, np.ndarray] = {}
    base = root / category
    for folder in ("train", "test", "GT"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for k in range(2):
        points = rng.normal(size=(30, 3)).round(4)
        (base / "train" / f"{category}_template{k}.pcd").write_text(pcd_text(points))
    positive = rng.normal(size=(25, 3)).round(4)
    (base / "test" / f"{category}_positive0.pcd").write_text(pcd_text(positive))
    written["test/positive0"] = positive
    for defect in ("bulge0", "hole1"):
        points = rng.normal(size=(35, 3)).round(4)
        labels = rng.random(35) < 0.3
        (base / "test" / f"{category}_{defect}.pcd").write_text(pcd_text(points))
        lines = "".join(
            f"{x:.4f},{y:.4f},{z:.4f},{int(flag)}\n" for (x, y, z), flag in zip(points, labels, strict=True)
        )
        (base / "GT" / f"{category}_{defect}.txt").write_text(lines)
        written[f"GT/{defect}"] = (points, labels)
    return written
