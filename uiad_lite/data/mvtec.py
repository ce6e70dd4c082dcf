"""Loaders for the MVTec AD folder layout and its near-identical cousins BTAD and MPDD.

MVTec AD (Bergmann et al., CVPR 2019; survey ref. [9]) stores one folder per category::

    <root>/<category>/train/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/<defect>/000.png
    <root>/<category>/ground_truth/<defect>/000_mask.png

MPDD (Jezek et al. 2021, ref. [59]) uses exactly this layout. BTAD (Mishra et al. 2021, ref. [93])
names the normal folder ``ok`` and the anomalous one ``ko``, has categories ``01``-``03``, mixes
``.bmp`` and ``.png`` images, and its masks carry the image's stem without ``_mask``::

    <root>/<category>/train/ok/0000.bmp
    <root>/<category>/test/ok/0000.bmp
    <root>/<category>/test/ko/0000.bmp
    <root>/<category>/ground_truth/ko/0000.png      (.png or .bmp)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.readers import ImageSize, read_mask, read_rgb, resize_image, resize_mask
from uiad_lite.data.sample import Sample
from uiad_lite.data.splits import (
    DatasetSplits,
    check_splits,
    evenly_spaced,
    make_splits,
    require_directory,
    sorted_files,
)

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class FolderLayout:
    """How one MVTec-like dataset names its folders and mask files."""

    dataset: str
    good_folder: str = "good"
    mask_suffix: str = "_mask"
    mask_extensions: tuple[str, ...] = (".png",)
    description: str = ""


MVTEC_AD_LAYOUT = FolderLayout(
    dataset="mvtec_ad",
    description=(
        "  <root>/<category>/train/good/*.png\n"
        "  <root>/<category>/test/good/*.png\n"
        "  <root>/<category>/test/<defect>/*.png\n"
        "  <root>/<category>/ground_truth/<defect>/<stem>_mask.png"
    ),
)
MPDD_LAYOUT = FolderLayout(dataset="mpdd", description=MVTEC_AD_LAYOUT.description)
BTAD_LAYOUT = FolderLayout(
    dataset="btad",
    good_folder="ok",
    mask_suffix="",
    mask_extensions=(".png", ".bmp"),
    description=(
        "  <root>/<category>/train/ok/*.bmp|png\n"
        "  <root>/<category>/test/ok/*.bmp|png\n"
        "  <root>/<category>/test/ko/*.bmp|png\n"
        "  <root>/<category>/ground_truth/ko/<stem>.png|bmp"
    ),
)
LAYOUTS = {layout.dataset: layout for layout in (MVTEC_AD_LAYOUT, MPDD_LAYOUT, BTAD_LAYOUT)}


def read_image_sample(record: SampleRecord, image_size: ImageSize | None = None) -> Sample:
    """Read the image (and mask) of one record; resize both when `image_size` is given."""
    image = read_rgb(record.files["image"])
    source_size = image.shape[:2]
    if "mask" in record.files:
        mask = read_mask(record.files["mask"], source_size, record.files["image"])
    elif "mask_dir" in record.files:
        mask = read_mask_folder(Path(record.files["mask_dir"]), source_size, record.files["image"])
    else:
        mask = np.zeros(source_size, dtype=bool)
    if image_size is not None:
        image = resize_image(image, image_size)
        mask = resize_mask(mask, image_size)
    meta = {**record.meta, "source_size": tuple(source_size)}
    return Sample(
        category=record.category,
        split=record.split,
        label=record.label,
        defect=record.defect,
        path=record.path,
        image=image,
        mask=mask,
        meta=meta,
    )


def read_mask_folder(folder: Path, expected_size: ImageSize, image_path: str) -> np.ndarray:
    """MVTec LOCO AD style: one PNG per annotated region in `folder`; the mask is their union (OR)."""
    parts = sorted_files(folder, (".png",))
    if not parts:
        raise FileNotFoundError(f"mask folder {folder} (for image {image_path}) holds no PNG files")
    mask = np.zeros(expected_size, dtype=bool)
    for part in parts:
        mask |= read_mask(part, expected_size, image_path)
    return mask


def find_mask(ground_truth: Path, defect: str, stem: str, layout: FolderLayout) -> Path:
    candidates = [
        ground_truth / defect / f"{stem}{layout.mask_suffix}{ext}" for ext in layout.mask_extensions
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no ground-truth mask for {defect}/{stem}: looked for {', '.join(str(c) for c in candidates)}\n"
        f"Expected layout:\n{layout.description}"
    )


def index_image_folder(
    folder: Path, category: str, split: str, label: int, defect: str, meta: dict | None = None
) -> list[SampleRecord]:
    return [
        SampleRecord(
            category=category,
            split=split,
            label=label,
            defect=defect,
            path=str(path),
            files={"image": str(path)},
            meta=dict(meta or {}),
        )
        for path in sorted_files(folder, IMAGE_SUFFIXES)
    ]


def index_test_folder(
    category_dir: Path, category: str, layout: FolderLayout, defect_kinds: dict[str, str] | None = None
) -> list[SampleRecord]:
    """Test records; with `defect_kinds` each anomaly gets meta["defect_kind"] (default "structural")."""
    test_dir = category_dir / "test"
    records: list[SampleRecord] = []
    for defect_dir in sorted(path for path in test_dir.iterdir() if path.is_dir()):
        if defect_dir.name == layout.good_folder:
            records += index_image_folder(defect_dir, category, "test", 0, "good")
            continue
        for record in index_image_folder(defect_dir, category, "test", 1, defect_dir.name):
            stem = Path(record.path).stem
            mask = find_mask(category_dir / "ground_truth", defect_dir.name, stem, layout)
            records.append(
                SampleRecord(
                    category=category,
                    split="test",
                    label=1,
                    defect=defect_dir.name,
                    path=record.path,
                    files={"image": record.path, "mask": str(mask)},
                    meta={}
                    if defect_kinds is None
                    else {"defect_kind": defect_kinds.get(defect_dir.name, "structural")},
                )
            )
    return records


def load_mvtec_style(
    root: Path,
    category: str,
    layout: FolderLayout = MVTEC_AD_LAYOUT,
    image_size: ImageSize | None = None,
    max_train: int | None = None,
    name: str | None = None,
    defect_kinds: dict[str, str] | None = None,
) -> DatasetSplits:
    """Index one category of an MVTec-AD-like folder tree; files are read on access.

    `defect_kinds` maps defect folders to "logical"/"structural" (used by the synthetic benchmark).
    """
    name = name or layout.dataset
    root = Path(root)
    require_directory(root, f"{name} root folder", layout.description)
    category_dir = root / category
    require_directory(category_dir, f"{name} category folder {category!r}", layout.description)
    require_directory(
        category_dir / "train" / layout.good_folder, f"{name} training folder", layout.description
    )
    require_directory(category_dir / "test", f"{name} test folder", layout.description)
    train = index_image_folder(category_dir / "train" / layout.good_folder, category, "train", 0, "good")
    test = index_test_folder(category_dir, category, layout, defect_kinds)
    check_splits(name, category, train, test, category_dir, layout.description)
    reader = partial(read_image_sample, image_size=image_size)
    return make_splits(
        name,
        category,
        "rgb",
        root,
        reader,
        evenly_spaced(train, max_train),
        test,
        meta={"layout": layout.dataset, "image_size": image_size, "train_available": len(train)},
    )


def list_categories(root: Path, layout: FolderLayout) -> list[str]:
    """Category folders under `root` that have the training folder of this layout."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{layout.dataset} root folder not found: {root}\nExpected layout:\n{layout.description}"
        )
    return sorted(path.name for path in root.iterdir() if (path / "train" / layout.good_folder).is_dir())
