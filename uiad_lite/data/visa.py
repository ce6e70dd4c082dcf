"""Loader for VisA (Zou et al., ECCV 2022; survey ref. [167]).

VisA keeps images per object under ``Data/Images/{Normal,Anomaly}`` (JPG) and masks under
``Data/Masks/Anomaly`` (PNG, same stem, values 0 = normal and a small positive index per defect
region). The official one-class split is a CSV, ``split_csv/1cls.csv``, with the columns
``object,split,label,image,mask`` (split ``train``/``test``, label ``normal``/``anomaly``, paths
relative to the root, ``mask`` empty for normal images)::

    <root>/split_csv/1cls.csv
    <root>/<object>/Data/Images/Normal/0000.JPG
    <root>/<object>/Data/Images/Anomaly/000.JPG
    <root>/<object>/Data/Masks/Anomaly/000.png
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from uiad_lite.data.lazy import SampleRecord
from uiad_lite.data.mvtec import read_image_sample
from uiad_lite.data.readers import ImageSize
from uiad_lite.data.splits import DatasetSplits, check_splits, evenly_spaced, make_splits, require_directory

SPLIT_CSV = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
LAYOUT = (
    "  <root>/split_csv/1cls.csv   (columns object,split,label,image,mask)\n"
    "  <root>/<object>/Data/Images/{Normal,Anomaly}/*.JPG\n"
    "  <root>/<object>/Data/Masks/Anomaly/*.png"
)
LABELS = {"normal": 0, "anomaly": 1}


def read_split_csv(root: Path) -> list[dict[str, str]]:
    path = root / SPLIT_CSV
    if not path.is_file():
        raise FileNotFoundError(f"VisA split file not found: {path}\nExpected layout:\n{LAYOUT}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected header {','.join(COLUMNS)}")
        return list(reader)


def record_from_row(root: Path, row: dict[str, str], csv_path: Path, line: int) -> SampleRecord:
    label_text = row["label"].strip().lower()
    if label_text not in LABELS:
        raise ValueError(f"{csv_path} line {line}: label must be 'normal' or 'anomaly', got {row['label']!r}")
    split = row["split"].strip().lower()
    if split not in ("train", "test"):
        raise ValueError(f"{csv_path} line {line}: split must be 'train' or 'test', got {row['split']!r}")
    label = LABELS[label_text]
    image = root / row["image"].strip()
    if not image.is_file():
        raise FileNotFoundError(f"{csv_path} line {line} names an image that does not exist: {image}")
    files = {"image": str(image)}
    if label == 1:
        if not row["mask"].strip():
            raise ValueError(f"{csv_path} line {line}: anomalous image {image} has no mask path")
        mask = root / row["mask"].strip()
        if not mask.is_file():
            raise FileNotFoundError(f"{csv_path} line {line} names a mask that does not exist: {mask}")
        files["mask"] = str(mask)
    return SampleRecord(
        category=row["object"].strip(),
        split=split,
        label=label,
        defect="anomaly" if label else "good",
        path=str(image),
        files=files,
    )


def load_visa(
    root: Path, category: str, image_size: ImageSize | None = None, max_train: int | None = None
) -> DatasetSplits:
    root = Path(root)
    require_directory(root, "visa root folder", LAYOUT)
    csv_path = root / SPLIT_CSV
    rows = read_split_csv(root)
    known = sorted({row["object"].strip() for row in rows})
    if category not in known:
        raise FileNotFoundError(
            f"visa category {category!r} has no rows in {csv_path}; categories there: {known}\n"
            f"Expected layout:\n{LAYOUT}"
        )
    records = [
        record_from_row(root, row, csv_path, line)
        for line, row in enumerate(rows, start=2)
        if row["object"].strip() == category
    ]
    train = [record for record in records if record.split == "train"]
    test = [record for record in records if record.split == "test"]
    check_splits("visa", category, train, test, root / category, LAYOUT)
    reader = partial(read_image_sample, image_size=image_size)
    return make_splits(
        "visa",
        category,
        "rgb",
        root,
        reader,
        evenly_spaced(train, max_train),
        test,
        meta={"layout": "visa-1cls", "image_size": image_size, "train_available": len(train)},
    )


def list_categories(root: Path) -> list[str]:
    return sorted({row["object"].strip() for row in read_split_csv(Path(root))})
