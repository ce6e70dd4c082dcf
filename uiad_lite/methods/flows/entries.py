"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`).

Quick presets: the offline EfficientNet-Lite0, stages 2 + 3 (strides 8 and 16), 224 px, a few epochs
on cached features (two CPU cores). Paper presets: the released settings with WideResNet-50-2.
"""

from __future__ import annotations

from uiad_lite.methods.registry_entry import PAPER_BACKBONE, QUICK_BACKBONE, MethodEntry

_FLOWS = dict(
    family="feature embedding",
    subfamily="distribution map",
    setting="rgb",
    chapter="06_normalizing_flows",
    needs="image",
    trains=True,
)

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        "differnet",
        "uiad_lite.methods.flows.differnet:DifferNet",
        "DifferNet",
        **_FLOWS,
        reference="rudolph2021same",
        presets={
            # quick: the 4 right-angle rotations (exact, no interpolation) at train and test, one gradient map
            "quick": dict(
                backbone=QUICK_BACKBONE,
                layers=(2, 3),
                image_size=224,
                hidden=512,
                rotations="right",
                train_transforms=4,
                test_transforms=4,
                map_transforms=1,
                epochs=40,
            ),
            # released: 448 px at 3 scales, fc_internal 2048, clamp 3, 4 / 64 random rotations, 24 x 8 epochs;
            # AlexNet's last conv replaced by WideResNet-50's layer3 (AlexNet is not among the offline weights
            "paper": dict(
                backbone=PAPER_BACKBONE,
                layers=("layer3",),
                image_size=448,
                hidden=2048,
                rotations="random",
                train_transforms=4,
                test_transforms=64,
                map_transforms=8,
                epochs=192,
            ),
        },
    ),
    MethodEntry(
        "cflow",
        "uiad_lite.methods.flows.cflow:CFlow",
        "CFLOW-AD",
        **_FLOWS,
        reference="gudovskiy2022cflow",
        presets={
            "quick": dict(backbone=QUICK_BACKBONE, layers=(2, 3), image_size=224, epochs=3),
            # released: WRN50 layer2-4, 256 px, 8 blocks, clamp 1.9, 128-d encoding, 25 x 8 epochs, N = 256
            "paper": dict(
                backbone=PAPER_BACKBONE, layers=("layer2", "layer3", "layer4"), image_size=256, epochs=200
            ),
        },
    ),
    MethodEntry(
        "fastflow",
        "uiad_lite.methods.flows.fastflow:FastFlow",
        "FastFlow",
        **_FLOWS,
        reference="yu2021fastflow",
        presets={
            "quick": dict(
                backbone=QUICK_BACKBONE, layers=(2, 3), image_size=224, epochs=20, images_per_step=16
            ),
            # paper / anomalib: WRN50 layer1-3, 256 px, 8 steps, hidden ratio 1, 500 epochs, batch 32
            "paper": dict(
                backbone=PAPER_BACKBONE, layers=("layer1", "layer2", "layer3"), image_size=256, epochs=500
            ),
        },
    ),
]
