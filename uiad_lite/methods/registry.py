"""One name per detector: ``create(name, preset=...)`` builds it, ``catalogue()`` lists them all.

Presets live here, not in notebooks:

* ``"quick"`` — what the chapters run in quick mode on two CPU cores (offline EfficientNet-Lite0
  weights, small images, fewer epochs);
* ``"paper"`` — the settings of the method's paper / released code (WideResNet-50-2 with
  torchvision's ImageNet weights, 224 px, ...). Those weights must be in the local torch or Hugging
  Face cache: without them the backbone build raises a ``FileNotFoundError`` that says how to get them.

Any keyword given to :func:`create` overrides the preset (``device``, ``seed``, ``progress``, ...).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pandas as pd

from uiad_lite.methods.registry_entry import PAPER_BACKBONE, PRESETS, QUICK_BACKBONE, MethodEntry

_MEMORY_BANK = dict(
    family="feature embedding",
    subfamily="memory bank",
    setting="rgb",
    chapter="03_memory_bank",
    needs="image",
)

_POINT_CLOUD = dict(
    family="feature embedding", subfamily="memory bank", setting="3d", chapter="09_point_clouds"
)

_CORE_ENTRIES: list[MethodEntry] = [
        MethodEntry(
            "pixel_gaussian",
            "uiad_lite.methods.baselines.pixel_gaussian:PixelGaussian",
            "",
            family="baseline",
            subfamily="per-pixel statistics",
            setting="rgb",
            chapter="00_introduction",
            needs="image",
            trains=False,
            reference="",
            presets={"quick": {}, "paper": {}},  # no paper: one setting, blur 1 px, smoothing 4 px
        ),
        MethodEntry(
            "padim",
            "uiad_lite.methods.memory_bank.padim:PaDiM",
            "PaDiM",
            **_MEMORY_BANK,
            trains=False,
            reference="defard2021padim",
            presets={
                "quick": dict(backbone=QUICK_BACKBONE, layers=(1, 2, 3), image_size=160, reduced_dim=100),
                "paper": dict(
                    backbone=PAPER_BACKBONE,
                    layers=("layer1", "layer2", "layer3"),
                    image_size=224,
                    reduced_dim=550,
                ),
            },
        ),
        MethodEntry(
            "patchcore",
            "uiad_lite.methods.memory_bank.patchcore:PatchCore",
            "PatchCore",
            **_MEMORY_BANK,
            trains=False,
            reference="roth2022total",
            presets={
                # 64-d coreset projection (released: 128) keeps the greedy search in the CPU cache;
                # pretrain/target dims sized to the small backbone's 40 + 112 channels
                "quick": dict(
                    backbone=QUICK_BACKBONE,
                    layers=(2, 3),
                    image_size=160,
                    coreset_ratio=0.1,
                    pretrain_dim=256,
                    target_dim=256,
                    projection_dim=64,
                ),
                "paper": dict(
                    backbone=PAPER_BACKBONE,
                    layers=("layer2", "layer3"),
                    image_size=224,
                    coreset_ratio=0.1,
                    pretrain_dim=1024,
                    target_dim=1024,
                    projection_dim=128,
                ),
            },
        ),
        MethodEntry(
            "cfa",
            "uiad_lite.methods.memory_bank.cfa:CFA",
            "CFA",
            **_MEMORY_BANK,
            trains=True,
            reference="lee2022cfa",
            presets={
                "quick": dict(backbone=QUICK_BACKBONE, layers=(2, 3), image_size=160, epochs=10),
                "paper": dict(
                    backbone=PAPER_BACKBONE, layers=("layer1", "layer2", "layer3"), image_size=224, epochs=30
                ),
            },
        ),
        MethodEntry(
            "simulation_head",
            "uiad_lite.methods.one_class.simulation_trained:SimulationTrainedHead",
            "",
            family="feature embedding",
            subfamily="one-class classification",
            setting="rgb",
            chapter="14_anomaly_simulation",
            needs="image",
            trains=True,
            reference="liu2023simplenet",
            presets={
                "quick": dict(
                    backbone=QUICK_BACKBONE,
                    layers=(2, 3),
                    image_size=128,
                    max_train_images=32,
                    simulated_per_image=1,
                    hidden=128,
                    epochs=15,
                ),
                # SimpleNet's backbone (WRN50 layers 2+3) and 1024-unit discriminator
                "paper": dict(
                    backbone=PAPER_BACKBONE,
                    layers=("layer2", "layer3"),
                    image_size=256,
                    max_train_images=None,
                    simulated_per_image=2,
                    hidden=1024,
                    epochs=40,
                ),
            },
        ),
        # point clouds (chapter 09). The survey's "PatchCore+FPFH" row is BTF's RGB + FPFH (multimodal); the
        # FPFH-only and raw variants are its 3D ablations, hence no survey name. No backbone; quick = the
        # grid of the quick backbone's first stage
        # (160 px / 8 = 20) on an 80 px cloud; paper = BTF's released 224 px cloud on a 28x28 grid
        MethodEntry(
            "btf_raw", "uiad_lite.methods.point_cloud.btf:BTFRaw", "", **_POINT_CLOUD, needs="xyz",
            trains=False,
            reference="horwitz2023back",
            presets={"quick": dict(grid=20, cloud_size=80, image_size=160),
                     "paper": dict(grid=28, cloud_size=224, image_size=224)},
        ),
        MethodEntry(
            "btf_fpfh", "uiad_lite.methods.point_cloud.btf:BTFFPFH", "", **_POINT_CLOUD, needs="xyz",
            trains=False, reference="horwitz2023back",
            presets={"quick": dict(grid=20, cloud_size=80, image_size=160, voxel_size=0.05),
                     "paper": dict(grid=28, cloud_size=224, image_size=224, voxel_size=0.05)},
        ),
        MethodEntry(
            "reg3dad", "uiad_lite.methods.point_cloud.reg3dad:Reg3DAD", "Reg3D-AD", **_POINT_CLOUD,
            needs="points",
            trains=False, reference="liu2023real3d",
            # paper: the released voxel (0.5 mm, for Real3D-AD's dense scans), 10000-entry banks, scores
            # min-max scaled over the test batch; quick: voxel from the point spacing, scales learned at fit
            presets={"quick": dict(voxel_size="auto", memory_size=10000, normalise="fit"),
                     "paper": dict(voxel_size=0.5, memory_size=10000, normalise="batch")},
        ),
        MethodEntry(
            # Real3D-AD's registration-free "PatchCore + FPFH" baseline on unorganised clouds
            "fpfh_bank", "uiad_lite.methods.point_cloud.reg3dad:Reg3DAD", "", **_POINT_CLOUD, needs="points",
            trains=False, reference="liu2023real3d",
            presets={"quick": dict(voxel_size="auto", memory_size=10000, register=False, features=("fpfh",)),
                     "paper": dict(voxel_size=0.5, memory_size=10000, register=False, features=("fpfh",))},
        ),
]

# Families added later keep their entries beside their code: ``uiad_lite/methods/<family>/entries.py``
# defines ``ENTRIES`` (a list of MethodEntry). They are collected here, in this order.
FAMILY_ENTRY_MODULES = (
    "uiad_lite.methods.teacher_student.entries",
    "uiad_lite.methods.one_class.entries",
    "uiad_lite.methods.flows.entries",
    "uiad_lite.methods.multimodal.entries",
    "uiad_lite.methods.point_cloud.entries",  # chapter 09's later additions (the first three are above)
)


def _collect() -> dict[str, MethodEntry]:
    entries = list(_CORE_ENTRIES)
    for module in FAMILY_ENTRY_MODULES:
        entries += importlib.import_module(module).ENTRIES
    names = [entry.name for entry in entries]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise RuntimeError(f"methods registered twice: {duplicated}")
    return {entry.name: entry for entry in entries}


REGISTRY: dict[str, MethodEntry] = _collect()

CATALOGUE_COLUMNS = [
    "name",
    "survey_method",
    "family",
    "subfamily",
    "setting",
    "chapter",
    "needs",
    "trains",
    "reference",
]


def _entry(name: str) -> MethodEntry:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def preset_settings(name: str, preset: str = "quick") -> dict[str, Any]:
    """A copy of the keyword arguments ``preset`` gives method ``name``."""
    entry = _entry(name)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} for {name!r}; choose one of {list(PRESETS)}")
    return dict(entry.presets[preset])


def detector_class(name: str) -> type:
    """The class behind method ``name`` (e.g. to read its signature without building a backbone)."""
    return _entry(name).load()


def create(name: str, preset: str = "quick", **overrides: Any) -> Any:
    """A ready (unfitted) detector: ``name``'s class built with ``preset``'s settings, then ``overrides``.

    >>> detector = create("patchcore", preset="quick", device="cpu", seed=0)
    """
    settings = {**preset_settings(name, preset), **overrides}
    cls = detector_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"{name} does not take {unknown}; its options are {accepted}")
    return cls(**settings)


def catalogue() -> pd.DataFrame:
    """Every registered detector with its metadata, one row each (columns :data:`CATALOGUE_COLUMNS`)."""
    rows = [{column: getattr(entry, column) for column in CATALOGUE_COLUMNS} for entry in REGISTRY.values()]
    return pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)
