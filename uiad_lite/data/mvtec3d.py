"""Loader for MVTec 3D-AD (Bergmann et al., VISAPP 2022; survey ref. [11]).

Every sample is an RGB image plus an *organised* point cloud: a float32 TIFF with the same
height and width whose three channels are the x, y, z coordinates of the surface seen by each
pixel (all three zero where the sensor returned no point)::

    <root>/<category>/train/good/rgb/000.png          <root>/<category>/train/good/xyz/000.tiff
    <root>/<category>/validation/good/rgb/000.png     <root>/<category>/validation/good/xyz/000.tiff
    <root>/<category>/test/<defect>/rgb/000.png       <root>/<category>/test/<defect>/xyz/000.tiff
    <root>/<category>/test/<defect>/gt/000.png        (ground truth; all black for test/good)

`preprocess=True` applies the background-plane removal of BTF (Horwitz & Hoshen 2023, ref. [53])
as the authors' script does it, out of place, into a cache folder: the table and stray points become
missing, and their RGB pixels black (see `preprocess3d`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.preprocess3d import PlaneRemoval, preprocess_records
from uiad_lite.data.readers import (
    ImageSize,
    check_same_size,
    read_mask,
    read_rgb,
    read_xyz_tiff,
    resize_image,
    resize_mask,
    resize_xyz,
)
from uiad_lite.data.sample import Sample
from uiad_lite.data.splits import (
    DatasetSplits,
    check_splits,
    evenly_spaced,
    make_splits,
    require_directory,
    sorted_files,
)

LAYOUT = (
    "  <root>/<category>/train/good/{rgb/*.png, xyz/*.tiff}\n"
    "  <root>/<category>/validation/good/{rgb/*.png, xyz/*.tiff}\n"
    "  <root>/<category>/test/<defect>/{rgb/*.png, xyz/*.tiff, gt/*.png}\n"
    "  xyz: float32 HxWx3 TIFF (x, y, z per pixel, zeros = no point)"
)


def read_rgbd_sample(record: SampleRecord, image_size: ImageSize | None = None) -> Sample:
    """Read rgb, xyz (and gt) of one record; check that all three share height and width."""
    image = read_rgb(record.files["image"])
    source_size = image.shape[:2]
    xyz = read_xyz_tiff(record.files["xyz"])
    check_same_size(xyz.shape, source_size, record.files["xyz"], record.files["image"])
    if "mask" in record.files:
        mask = read_mask(record.files["mask"], source_size, record.files["image"])
    else:
        mask = np.zeros(source_size, dtype=bool)
    if image_size is not None:
        image, mask, xyz = (
            resize_image(image, image_size),
            resize_mask(mask, image_size),
            resize_xyz(xyz, image_size),
        )
    meta = {**record.meta, "source_size": tuple(source_size), "xyz_path": record.files["xyz"]}
    return Sample(
        category=record.category,
        split=record.split,
        label=record.label,
        defect=record.defect,
        path=record.path,
        image=image,
        mask=mask,
        xyz=xyz,
        meta=meta,
    )


def index_defect_folder(folder: Path, category: str, split: str, defect: str) -> list[SampleRecord]:
    """Pair rgb/<stem>.png with xyz/<stem>.tiff (and gt/<stem>.png for anomalies) by file stem."""
    label = 0 if defect == "good" else 1
    records = []
    for image in sorted_files(folder / "rgb", (".png", ".jpg", ".jpeg")):
        xyz = next(
            (
                folder / "xyz" / f"{image.stem}{ext}"
                for ext in (".tiff", ".tif")
                if (folder / "xyz" / f"{image.stem}{ext}").is_file()
            ),
            None,
        )
        if xyz is None:
            raise FileNotFoundError(
                f"no point cloud for {image}: expected {folder / 'xyz' / (image.stem + '.tiff')}"
                f"\nExpected layout:\n{LAYOUT}"
            )
        files = {"image": str(image), "xyz": str(xyz)}
        gt = folder / "gt" / f"{image.stem}.png"
        if gt.is_file():
            files["mask"] = str(gt)
        elif label == 1:
            raise FileNotFoundError(
                f"no ground-truth mask for {image}: expected {gt}\nExpected layout:\n{LAYOUT}"
            )
        records.append(
            SampleRecord(
                category=category, split=split, label=label, defect=defect, path=str(image), files=files
            )
        )
    return records


def load_mvtec3d(
    root: Path,
    category: str,
    image_size: ImageSize | None = None,
    max_train: int | None = None,
    preprocess: bool | PlaneRemoval = False,
    preprocess_dir: Path | None = None,
    name: str = "mvtec_3d",
) -> DatasetSplits:
    root = Path(root)
    require_directory(root, f"{name} root folder", LAYOUT)
    category_dir = root / category
    require_directory(category_dir, f"{name} category folder {category!r}", LAYOUT)
    require_directory(category_dir / "train" / "good" / "rgb", f"{name} training folder", LAYOUT)
    require_directory(category_dir / "test", f"{name} test folder", LAYOUT)
    train = index_defect_folder(category_dir / "train" / "good", category, "train", "good")
    validation = index_defect_folder(category_dir / "validation" / "good", category, "validation", "good")
    test: list[SampleRecord] = []
    for defect_dir in sorted(p for p in (category_dir / "test").iterdir() if p.is_dir()):
        test += index_defect_folder(defect_dir, category, "test", defect_dir.name)
    check_splits(name, category, train, test, category_dir, LAYOUT)
    train = evenly_spaced(train, max_train)
    meta = {"layout": "mvtec_3d", "image_size": image_size, "preprocessed": bool(preprocess)}
    if preprocess:
        params = preprocess if isinstance(preprocess, PlaneRemoval) else PlaneRemoval()
        cache = preprocess_records(train + validation + test, root, name, preprocess_dir, params)
        train, validation, test = (cache.redirect(records) for records in (train, validation, test))
        meta["preprocess_dir"] = str(cache.folder)
    reader = partial(read_rgbd_sample, image_size=image_size)
    return make_splits(name, category, "rgbd", root, reader, train, test, validation, meta=meta)


def list_categories(root: Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mvtec_3d root folder not found: {root}\nExpected layout:\n{LAYOUT}")
    return sorted(p.name for p in root.iterdir() if (p / "train" / "good" / "xyz").is_dir())
