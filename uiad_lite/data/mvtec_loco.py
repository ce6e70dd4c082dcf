"""Loader for MVTec LOCO AD (Bergmann et al., IJCV 2022; survey ref. [8]).

LOCO adds *logical* anomalies (a missing, extra or misplaced part; a wrong combination) beside the
usual *structural* ones, and a validation split of normal images. Each anomalous image may have
several annotated regions, stored as one PNG per region in a folder named after the image::

    <root>/<category>/train/good/000.png
    <root>/<category>/validation/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/logical_anomalies/000.png
    <root>/<category>/test/structural_anomalies/000.png
    <root>/<category>/ground_truth/logical_anomalies/000/000.png   (001.png, ... are OR-ed)

Region PNGs hold a non-zero grey value inside the region (the value encodes the defect type in
the dataset's own config); any non-zero pixel counts as anomalous here.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.mvtec import index_image_folder, read_image_sample
from uiad_lite.data.readers import ImageSize
from uiad_lite.data.splits import DatasetSplits, check_splits, evenly_spaced, make_splits, require_directory

LAYOUT = (
    "  <root>/<category>/train/good/*.png\n"
    "  <root>/<category>/validation/good/*.png\n"
    "  <root>/<category>/test/{good,logical_anomalies,structural_anomalies}/*.png\n"
    "  <root>/<category>/ground_truth/<defect>/<stem>/000.png, 001.png, ...  (one PNG per region)"
)
DEFECT_KINDS = {"logical_anomalies": "logical", "structural_anomalies": "structural"}


def index_test(category_dir: Path, category: str) -> list[SampleRecord]:
    records = index_image_folder(category_dir / "test" / "good", category, "test", 0, "good")
    for defect_dir in sorted(p for p in (category_dir / "test").iterdir() if p.is_dir() and p.name != "good"):
        kind = DEFECT_KINDS.get(defect_dir.name, "unknown")
        for record in index_image_folder(defect_dir, category, "test", 1, defect_dir.name):
            stem = Path(record.path).stem
            mask_dir = category_dir / "ground_truth" / defect_dir.name / stem
            if not mask_dir.is_dir():
                raise FileNotFoundError(
                    f"no ground-truth folder for {record.path}: expected {mask_dir}/000.png ...\n"
                    f"Expected layout:\n{LAYOUT}"
                )
            records.append(
                SampleRecord(
                    category=category,
                    split="test",
                    label=1,
                    defect=defect_dir.name,
                    path=record.path,
                    files={"image": record.path, "mask_dir": str(mask_dir)},
                    meta={"defect_kind": kind},
                )
            )
    return records


def load_mvtec_loco(
    root: Path, category: str, image_size: ImageSize | None = None, max_train: int | None = None
) -> DatasetSplits:
    root = Path(root)
    require_directory(root, "mvtec_loco root folder", LAYOUT)
    category_dir = root / category
    require_directory(category_dir, f"mvtec_loco category folder {category!r}", LAYOUT)
    for needed in ("train/good", "test"):
        require_directory(category_dir / needed, f"mvtec_loco folder {needed!r}", LAYOUT)
    train = index_image_folder(category_dir / "train" / "good", category, "train", 0, "good")
    validation = index_image_folder(category_dir / "validation" / "good", category, "validation", 0, "good")
    test = index_test(category_dir, category)
    check_splits("mvtec_loco", category, train, test, category_dir, LAYOUT)
    reader = partial(read_image_sample, image_size=image_size)
    return make_splits(
        "mvtec_loco",
        category,
        "rgb",
        root,
        reader,
        evenly_spaced(train, max_train),
        test,
        validation,
        meta={"layout": "mvtec_loco", "image_size": image_size, "train_available": len(train)},
    )


def list_categories(root: Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mvtec_loco root folder not found: {root}\nExpected layout:\n{LAYOUT}")
    return sorted(
        p.name for p in root.iterdir() if (p / "train" / "good").is_dir() and (p / "validation").is_dir()
    )
