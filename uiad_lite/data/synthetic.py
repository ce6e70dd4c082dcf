"""The embedded synthetic benchmark: generated on first use, deterministic, in real dataset layouts.

Eight categories in three settings, written in the on-disk formats of the real datasets so that
the very same loaders read them:

* RGB (MVTec AD layout): textures ``brick`` and ``grass`` (built on scikit-image's bundled
  photographs), objects ``washer`` and ``plate``. Defects: scratch, crack, hole, colour
  contamination, and on the plate the *logical* anomalies missing_bolt / misplaced_bolt.
* RGB-D (MVTec 3D-AD layout): ``cookie`` and ``tablet`` with dent / bump (geometry only), stain
  (colour only) and hole (both), and missing points at borders and silhouettes.
* Point clouds (Real3D-AD layout): ``panel`` and ``capsule`` with bulge / sink / missing, 4 training
  templates each.

Every mask/label marks exactly what differs from the same sample drawn without its defect.
The output goes to ``<base>/<VERSION>-<size>-seed<seed>`` with ``<base>`` = ``$UIAD_DATA/synthetic``
or ``~/.cache/uiad_lite/synthetic``; it is written to a temporary folder and renamed when complete,
reused afterwards, and ``VERSION`` changes whenever the generator's output would.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import uuid
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from uiad_lite.data import synthetic_depth, synthetic_images, synthetic_points

VERSION = "v3"
MANIFEST = "uiad_synthetic.json"
CATEGORIES: dict[str, str] = {
    "brick": "rgb",
    "grass": "rgb",
    "washer": "rgb",
    "plate": "rgb",
    "cookie": "rgbd",
    "tablet": "rgbd",
    "panel": "points",
    "capsule": "points",
}
DEFECTS: dict[str, tuple[str, ...]] = {
    **synthetic_images.DEFECTS,
    **synthetic_depth.DEFECTS,
    **synthetic_points.DEFECTS,
}


@dataclass(frozen=True)
class SizeSpec:
    """How much to generate per category."""

    image: int  # RGB / RGB-D side length in pixels
    train: int
    test_good: int
    test_anomalous: int
    validation: int  # RGB-D only (MVTec 3D-AD has a validation split)
    cloud_train: int
    cloud_test_good: int
    cloud_test_anomalous: int
    cloud_points: int


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(64, 8, 4, 8, 2, 4, 3, 6, 800),  # for unit tests
    "quick": SizeSpec(224, 100, 20, 40, 10, 4, 10, 20, 4000),
    "full": SizeSpec(256, 200, 40, 80, 20, 4, 20, 40, 8000),
}
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def sample_rng(seed: int, category: str, split: str, index: int) -> np.random.Generator:
    """One independent generator per sample, so categories can be generated in any order or in parallel."""
    return np.random.default_rng([seed, zlib.crc32(category.encode()), SPLIT_CODES[split], index])


def test_plan(category: str, good: int, anomalous: int) -> list[str]:
    """Defect type of every test sample: `good` normal ones, then defects in round-robin order."""
    defects = DEFECTS[category]
    return ["good"] * good + [defects[i % len(defects)] for i in range(anomalous)]


def default_base() -> Path:
    if os.environ.get("UIAD_DATA"):
        return Path(os.environ["UIAD_DATA"]).expanduser() / "synthetic"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return cache / "uiad_lite" / "synthetic"


def folder_name(size: str, seed: int) -> str:
    return f"{VERSION}-{size}-seed{seed}"


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def save_tiff(path: Path, xyz: np.ndarray) -> None:
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, xyz, photometric="rgb", compression="zlib", compressionargs={"level": 1})


def write_rgb_category(root: Path, category: str, spec: SizeSpec, seed: int) -> None:
    folder = root / category
    for index in range(spec.train):
        _, image, _ = synthetic_images.make_rgb_sample(
            category, "good", spec.image, sample_rng(seed, category, "train", index)
        )
        save_png(folder / "train" / "good" / f"{index:03d}.png", image)
    counters: dict[str, int] = {}
    for index, defect in enumerate(test_plan(category, spec.test_good, spec.test_anomalous)):
        _, image, mask = synthetic_images.make_rgb_sample(
            category, defect, spec.image, sample_rng(seed, category, "test", index)
        )
        number = counters.setdefault(defect, 0)
        counters[defect] += 1
        save_png(folder / "test" / defect / f"{number:03d}.png", image)
        if defect != "good":
            save_png(folder / "ground_truth" / defect / f"{number:03d}_mask.png", mask.astype(np.uint8) * 255)


def write_rgbd_category(root: Path, category: str, spec: SizeSpec, seed: int) -> None:
    folder = root / category
    plans = [
        ("train", ["good"] * spec.train),
        ("validation", ["good"] * spec.validation),
        ("test", test_plan(category, spec.test_good, spec.test_anomalous)),
    ]
    for split, plan in plans:
        counters: dict[str, int] = {}
        for index, defect in enumerate(plan):
            sample = synthetic_depth.make_rgbd_sample(
                category, defect, spec.image, sample_rng(seed, category, split, index)
            )
            number = counters.setdefault(defect, 0)
            counters[defect] += 1
            target = folder / split / defect
            save_png(target / "rgb" / f"{number:03d}.png", sample["rgb"])
            save_tiff(target / "xyz" / f"{number:03d}.tiff", sample["xyz"])
            if split == "test":
                save_png(target / "gt" / f"{number:03d}.png", sample["mask"].astype(np.uint8) * 255)


def write_points_category(root: Path, category: str, spec: SizeSpec, seed: int) -> None:
    from uiad_lite.data.pointclouds import write_labelled_points, write_pcd

    folder = root / category
    for name in ("train", "test", "gt"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index in range(spec.cloud_train):
        sample = synthetic_points.make_point_sample(
            category, "good", spec.cloud_points, sample_rng(seed, category, "train", index)
        )
        write_pcd(folder / "train" / f"{index}_template.pcd", sample["points"])
    for index, defect in enumerate(test_plan(category, spec.cloud_test_good, spec.cloud_test_anomalous)):
        sample = synthetic_points.make_point_sample(
            category, defect, spec.cloud_points, sample_rng(seed, category, "test", index)
        )
        write_pcd(folder / "test" / f"{index}_{defect}.pcd", sample["points"])
        if defect != "good":
            write_labelled_points(folder / "gt" / f"{index}_{defect}.txt", sample["points"], sample["labels"])


WRITERS = {"rgb": write_rgb_category, "rgbd": write_rgbd_category, "points": write_points_category}


def write_category(root: Path, category: str, spec: SizeSpec, seed: int) -> str:
    WRITERS[CATEGORIES[category]](root, category, spec, seed)
    return category


def manifest(size: str, seed: int) -> dict:
    spec = SIZES[size]
    return {
        "generator": "uiad_lite.data.synthetic",
        "version": VERSION,
        "size": size,
        "seed": seed,
        "spec": asdict(spec),
        "categories": {
            name: {"setting": setting, "defects": list(DEFECTS[name])} for name, setting in CATEGORIES.items()
        },
    }


def generate(
    root: str | Path | None = None, size: str = "quick", seed: int = 0, workers: int | None = None
) -> Path:
    """Generate the benchmark (or find it already generated) and return its folder.

    `root` is the base folder (default `$UIAD_DATA/synthetic` or `~/.cache/uiad_lite/synthetic`);
    the data lands in `<root>/<VERSION>-<size>-seed<seed>`. `workers` processes share the
    categories (default: up to 4, one per CPU); `workers=1` stays in this process.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; choose one of {sorted(SIZES)}")
    seed = int(seed)
    base = Path(root).expanduser() if root is not None else default_base()
    final = base / folder_name(size, seed)
    if (final / MANIFEST).is_file():
        return final
    if final.exists():
        raise FileExistsError(
            f"{final} exists but has no {MANIFEST}; it is not a finished synthetic benchmark. "
            f"Remove it and call generate() again."
        )
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        order = sorted(CATEGORIES, key=lambda name: ("rgbd", "rgb", "points").index(CATEGORIES[name]))
        workers = min(len(order), os.cpu_count() or 1, 4) if workers is None else max(1, int(workers))
        spec = SIZES[size]
        if workers == 1:
            for category in order:
                write_category(staging, category, spec, seed)
        else:
            # fork where the platform has it: no re-import of the caller's __main__ (scripts without a guard)
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                list(
                    pool.map(
                        write_category,
                        [staging] * len(order),
                        order,
                        [spec] * len(order),
                        [seed] * len(order),
                    )
                )
        (staging / MANIFEST).write_text(json.dumps(manifest(size, seed), indent=2, sort_keys=True) + "\n")
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # not a concurrent generator finishing first
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def resolve(root: str | Path | None, size: str, seed: int) -> Path:
    """The generated folder to read: `root` itself if it holds a manifest, else generate under `root`."""
    if root is not None and (Path(root).expanduser() / MANIFEST).is_file():
        return Path(root).expanduser()
    return generate(root, size=size, seed=seed)


def categories(setting: str | None = None) -> list[str]:
    return [name for name, value in CATEGORIES.items() if setting is None or value == setting]
