"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`).

Quick presets (two CPU cores, chapter 05 in about 90 s): the offline EfficientNet-Lite0, small images,
a few epochs, learning rates ten times the released ones so that the few steps still move the weights,
and for SimpleNet / GLASS a noise scale sized to this backbone's features (its 256-d patch features have
a per-channel standard deviation of about 5, against which the released 0.015 is invisible: the
discriminator then learns nothing). Paper presets: the released settings (see each method's docstring).
"""

from __future__ import annotations

from uiad_lite.methods.registry_entry import PAPER_BACKBONE, QUICK_BACKBONE, MethodEntry

_ONE_CLASS = dict(
    family="feature embedding",
    subfamily="one-class classification",
    setting="rgb",
    chapter="05_one_class",
    needs="image",
    trains=True,
)

_QUICK_FEATURES = dict(
    backbone=QUICK_BACKBONE, layers=(2, 3), image_size=160, pretrain_dim=256, target_dim=256
)
_PAPER_FEATURES = dict(
    backbone=PAPER_BACKBONE, layers=("layer2", "layer3"), image_size=288, pretrain_dim=1536, target_dim=1536
)
_QUICK_TRAINING = dict(
    hidden=256, noise_std=1.5, epochs=4, batch_size=8, adaptor_lr=1e-3, discriminator_lr=2e-3
)

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        "cutpaste",
        "uiad_lite.methods.one_class.cutpaste:CutPaste",
        "CutPaste",
        **_ONE_CLASS,
        reference="li2021cutpaste",
        presets={
            # quick: 48 images at 128 px, only the last two stages and a one-layer head fine-tuned
            "quick": dict(
                backbone=QUICK_BACKBONE,
                map_layer=3,
                last_layer=4,
                image_size=128,
                head_dims=(128,),
                train_from=3,
                epochs=2,
                batch_size=16,
                max_train_images=48,
            ),  # fmt: skip
            # the paper's ResNet-18 (torchvision ImageNet weights), 256 px, whole network, 256 epochs
            "paper": dict(
                backbone="resnet18.tv_in1k",
                map_layer="layer3",
                last_layer="layer4",
                image_size=256,
                head_dims=(512,) * 8 + (128,),
                train_from=0,
                epochs=256,
                batch_size=32,
                learning_rate=0.03,
                momentum=0.9,
                weight_decay=3e-5,
            ),  # fmt: skip
        },
    ),
    MethodEntry(
        "simplenet",
        "uiad_lite.methods.one_class.simplenet:SimpleNet",
        "SimpleNet",
        **_ONE_CLASS,
        reference="liu2023simplenet",
        presets={
            "quick": dict(**_QUICK_FEATURES, **_QUICK_TRAINING),
            "paper": dict(
                **_PAPER_FEATURES,
                hidden=1024,
                noise_std=0.015,
                margin=0.5,
                epochs=160,
                batch_size=8,
                adaptor_lr=1e-4,
                discriminator_lr=2e-4,
                discriminator_weight_decay=1e-5,
            ),  # fmt: skip
        },
    ),
    MethodEntry(
        "glass",
        "uiad_lite.methods.one_class.glass:GLASS",
        "GLASS",
        **_ONE_CLASS,
        reference="chen2024unified",
        presets={
            # quick: one simulated copy per image drawn once, 3 ascent steps then the shell projection, 50
            # images in batches of 4 (twice the optimiser steps of batches of 8 for the same compute)
            "quick": {
                **_QUICK_FEATURES,
                **_QUICK_TRAINING,
                "batch_size": 4,
                "local_copies": 1,
                "gas_steps": 3,
                "max_train_images": 50,
            },
            "paper": dict(
                **_PAPER_FEATURES,
                hidden=1024,
                noise_std=0.015,
                local_copies=None,
                gas_steps=20,
                step_size="auto",
                radius="auto",
                hard_fraction=0.5,
                epochs=640,
                batch_size=8,
                adaptor_lr=1e-4,
                discriminator_lr=2e-4,
            ),  # fmt: skip
        },
    ),
]
