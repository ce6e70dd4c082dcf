"""`load(name, category=...)` and `categories(name)`: one entry point for every dataset.

Real datasets are read from `root`, or from `$UIAD_DATA/<name>` when `root` is None, by default as
they are on disk (`size="full"`: native resolution, every training image, every point). `size="quick"`
is the chapters' CPU preset, asked for explicitly: it resizes images to 256×256, keeps at most 100
evenly spaced training images and at most 16384 points per cloud. Explicit `image_size`,
`max_train`, `max_points` override the preset. For the synthetic benchmark `size` selects the
generated variant ("tiny", "quick", "full"; default "quick", the embedded one) instead.
`center_crop` (after the resize) gives the PaDiM / PatchCore protocol: `image_size=256, center_crop=224`.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from uiad_lite.data import mvtec, mvtec3d, mvtec_loco, pointclouds, synthetic, synthetic_images, visa
from uiad_lite.data.lazy import LazySamples
from uiad_lite.data.preprocess3d import PlaneRemoval
from uiad_lite.data.readers import as_size
from uiad_lite.data.readers import center_crop as crop_sample
from uiad_lite.data.registry import DATASETS, info
from uiad_lite.data.splits import DatasetSplits

QUICK_PRESET = {"image_size": 256, "max_train": 100, "max_points": 16384}
FULL_PRESET = {"image_size": None, "max_train": None, "max_points": None}
_UNSET = object()

LAYOUT_HINTS = {
    "mvtec_ad": mvtec.MVTEC_AD_LAYOUT.description,
    "mpdd": mvtec.MPDD_LAYOUT.description,
    "btad": mvtec.BTAD_LAYOUT.description,
    "mvtec_loco": mvtec_loco.LAYOUT,
    "visa": visa.LAYOUT,
    "mvtec_3d": mvtec3d.LAYOUT,
    "real3d_ad": pointclouds.REAL3D_LAYOUT,
    "anomaly_shapenet": pointclouds.SHAPENET_LAYOUT,
}


def dataset_root(name: str, root: str | Path | None) -> Path:
    """`root`, or `$UIAD_DATA/<name>`; descends into a known archive sub-folder when that is where data is."""
    entry = info(name)
    if root is None:
        if not os.environ.get("UIAD_DATA"):
            raise FileNotFoundError(
                f"no folder given for dataset {name!r}: pass root=... or set UIAD_DATA so that "
                f"$UIAD_DATA/{name} holds it. Expected layout:\n{LAYOUT_HINTS.get(name, '')}\n"
                f"Get the data with `uiad-lite data download {name}`."
            )
        root = Path(os.environ["UIAD_DATA"]) / name
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{name} root folder not found: {root}\nExpected layout:\n{LAYOUT_HINTS.get(name, '')}\n"
            f"Get the data with `uiad-lite data download {name} --root {root}`."
        )
    for nested in entry.nested_roots:
        if (root / nested).is_dir() and not any((root / category).is_dir() for category in entry.categories):
            return root / nested
    return root


def load(
    name: str,
    root: str | Path | None = None,
    category: str | None = None,
    size: str | None = None,
    *,
    seed: int = 0,
    image_size=_UNSET,
    max_train=_UNSET,
    max_points=_UNSET,
    preprocess: bool | PlaneRemoval = False,
    preprocess_dir: str | Path | None = None,
    center_crop: int | tuple[int, int] | None = None,
) -> DatasetSplits:
    """Load one category of a dataset as lazy train / test / validation sequences of `Sample`.

    name      one of `DATASETS`
    root      dataset folder; None -> `$UIAD_DATA/<name>` (synthetic: the generation cache)
    category  required; `categories(name, root)` lists the choices
    size      None (default) reads the data as it is: "full" for real datasets, the embedded
              "quick" variant for synthetic; "quick" shrinks a real dataset (256 px, <= 100
              training images, <= 16384 points); synthetic also "tiny". See the module docstring
    seed      synthetic only: generator seed
    preprocess      RGB-D only: True (or a `PlaneRemoval` with your parameters) applies BTF's
                    background-plane removal, written to `preprocess_dir` (default: a cache folder)
    center_crop     image datasets: keep the central window of this size (after `image_size`),
                    masks and xyz maps alike, e.g. ``image_size=256, center_crop=224``
    """
    entry = info(name)
    if category is None:
        raise ValueError(f"load({name!r}) needs category=...; choose from {categories(name, root)}")
    if size is None:
        size = "quick" if name == "synthetic" else "full"
    if name == "synthetic":
        if category not in synthetic.CATEGORIES:
            raise FileNotFoundError(
                f"synthetic category {category!r} does not exist; choose from {list(synthetic.CATEGORIES)}"
            )
        folder = synthetic.resolve(root, size=size, seed=seed)
        options = {"image_size": None, "max_train": None, "max_points": None}
    else:
        if not entry.loader:
            raise ValueError(
                f"{name}: no loader yet. {entry.instructions.format(**_format_args(entry, root))}"
            )
        if size not in ("quick", "full"):
            raise ValueError(f"size must be 'quick' or 'full' for {name}, got {size!r}")
        folder = dataset_root(name, root)
        options = dict(QUICK_PRESET if size == "quick" else FULL_PRESET)
    for key, value in (("image_size", image_size), ("max_train", max_train), ("max_points", max_points)):
        if value is not _UNSET:
            options[key] = value
    image_size_hw = as_size(options["image_size"])
    if preprocess and (entry.setting if name != "synthetic" else synthetic.CATEGORIES[category]) != "rgbd":
        raise ValueError(
            f"preprocess=True applies to organised point clouds (MVTec 3D-AD layout), not to {name}"
        )
    splits = _dispatch(name, folder, category, image_size_hw, options, preprocess, preprocess_dir)
    splits.meta.update({"size": size, "seed": seed if name == "synthetic" else None})
    if center_crop is not None:
        _crop_splits(splits, as_size(center_crop))
    return splits


def _crop_splits(splits: DatasetSplits, size: tuple[int, int]) -> None:
    """Make every split of ``splits`` read its samples center-cropped to ``size``."""
    if splits.setting == "points":
        raise ValueError(f"center_crop applies to images, not to the point clouds of {splits.name}")
    for role in ("train", "test", "validation"):
        samples = getattr(splits, role)
        reader = partial(_read_cropped, samples.reader, size)
        setattr(splits, role, LazySamples(samples.records, reader, samples.cache_size))
    splits.meta["center_crop"] = size


def _read_cropped(reader, size, record):
    return crop_sample(reader(record), size)


def _dispatch(name, folder, category, image_size, options, preprocess, preprocess_dir) -> DatasetSplits:
    setting = synthetic.CATEGORIES[category] if name == "synthetic" else info(name).setting
    max_train, max_points = options["max_train"], options["max_points"]
    if name == "synthetic" and setting == "rgb":
        kinds = synthetic_images.DEFECT_KINDS  # plate: missing/misplaced bolt are logical anomalies
        return mvtec.load_mvtec_style(
            folder, category, mvtec.MVTEC_AD_LAYOUT, image_size, max_train, name=name, defect_kinds=kinds
        )
    if name in ("mvtec_ad", "mpdd", "btad"):
        return mvtec.load_mvtec_style(folder, category, mvtec.LAYOUTS[name], image_size, max_train)
    if name == "mvtec_loco":
        return mvtec_loco.load_mvtec_loco(folder, category, image_size, max_train)
    if name == "visa":
        return visa.load_visa(folder, category, image_size, max_train)
    if setting == "rgbd":
        return mvtec3d.load_mvtec3d(
            folder,
            category,
            image_size,
            max_train,
            preprocess=preprocess,
            preprocess_dir=Path(preprocess_dir) if preprocess_dir else None,
            name=name,
        )
    if setting == "points":
        return pointclouds.load_point_dataset(folder, category, name=name, max_points=max_points)
    raise ValueError(f"no loader for dataset {name!r}")


def categories(name: str, root: str | Path | None = None, setting: str | None = None) -> list[str]:
    """Category names of a dataset.

    Synthetic: its fixed categories (optionally only those of one `setting`). Real datasets: the
    categories present on disk when `root` (or `$UIAD_DATA`) is available, else the official list.
    """
    entry = info(name)
    if name == "synthetic":
        return synthetic.categories(setting)
    if setting is not None and entry.setting != setting:
        return []
    if root is None and not (os.environ.get("UIAD_DATA") and (Path(os.environ["UIAD_DATA"]) / name).is_dir()):
        return list(entry.categories)
    folder = dataset_root(name, root)
    if name in mvtec.LAYOUTS:
        return mvtec.list_categories(folder, mvtec.LAYOUTS[name])
    listers = {
        "mvtec_loco": lambda: mvtec_loco.list_categories(folder),
        "visa": lambda: visa.list_categories(folder),
        "mvtec_3d": lambda: mvtec3d.list_categories(folder),
        "real3d_ad": lambda: pointclouds.list_categories(folder, name),
        "anomaly_shapenet": lambda: pointclouds.list_categories(folder, name),
    }
    if name in listers:
        return listers[name]()
    return list(entry.categories)


def _format_args(entry, root) -> dict[str, str]:
    return {
        "name": entry.name,
        "title": entry.title,
        "homepage": entry.homepage,
        "root": str(root or f"$UIAD_DATA/{entry.name}"),
        "filename": entry.archives[0].filename if entry.archives else "",
    }


__all__ = ["DATASETS", "DatasetSplits", "categories", "load"]
