"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`).

Quick presets (chapter 04 on two CPU cores): the offline EfficientNet-Lite0 teacher at 128 px and a few
epochs; the trainable parts are sized to it (EfficientAD's PDN at an eighth of its released width).
Paper presets: the released settings (image size, epochs, optimisers, backbones).
"""

from __future__ import annotations

from uiad_lite.methods.registry_entry import PAPER_BACKBONE, QUICK_BACKBONE, MethodEntry

_TEACHER_STUDENT = dict(
    family="feature embedding",
    subfamily="teacher-student",
    setting="rgb",
    chapter="04_teacher_student",
    needs="image",
    trains=True,
)

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        "stfpm",
        "uiad_lite.methods.teacher_student.stfpm:STFPM",
        "",  # not among the survey's Table 4 rows
        **_TEACHER_STUDENT,
        reference="wang2021student",
        presets={
            # three stages (strides 4, 8, 16) as in the paper's pyramid: on the synthetic grass, adding the
            # stride-4 stage raised AU-PRO from 0.60 to 0.74 at the same cost (the stage is computed anyway);
            # SGD as released; a few epochs at 128 px
            "quick": dict(backbone=QUICK_BACKBONE, layers=(1, 2, 3), image_size=128, epochs=6, batch_size=32),
            # released code: ResNet-18 layer1..3, 256 px, 100 epochs, batch 32, SGD lr 0.4
            "paper": dict(
                backbone="resnet18.tv_in1k",
                layers=("layer1", "layer2", "layer3"),
                image_size=256,
                epochs=100,
                batch_size=32,
            ),
        },
    ),
    MethodEntry(
        "rd4ad",
        "uiad_lite.methods.teacher_student.rd4ad:RD4AD",
        "RD4AD",
        **_TEACHER_STUDENT,
        reference="deng2022anomaly",
        presets={
            # batch 8 (released 16): twice the steps for the same compute. Synthetic RGB, mean I-AUROC
            # over the 4 categories: 0.928 at 15 epochs, 0.944 at 20 (batch 16, 30 epochs: 0.920); at 20
            # epochs on a second machine 0.927, 0.935, 0.936 for seeds 0, 1, 2 (AU-PRO 0.83)
            "quick": dict(
                backbone=QUICK_BACKBONE,
                layers=(1, 2, 3),
                image_size=128,
                epochs=20,
                batch_size=8,
                ocbe_blocks=1,
                decoder_blocks=1,
            ),
            # released: WRN50 layer1..3, 256 px, 200 epochs, batch 16, Adam 0.005 (0.5, 0.999), 3 OCBE blocks
            "paper": dict(
                backbone=PAPER_BACKBONE,
                layers=("layer1", "layer2", "layer3"),
                image_size=256,
                epochs=200,
                batch_size=16,
                ocbe_blocks=3,
                decoder_blocks=3,
            ),
        },
    ),
    MethodEntry(
        "efficientad",
        "uiad_lite.methods.teacher_student.efficientad:EfficientAD",
        "EfficientAD",
        **_TEACHER_STUDENT,
        reference="batzner2024efficientad",
        presets={
            # an eighth of the PDN width; ~100 steps instead of 70 000, so: a larger learning rate, the hard
            # loss over the top 10 % of errors (released: 0.1 %, which at this budget barely trains the
            # student), 64 teacher channels (PatchCore's channel pooling, as the paper's 384) and the
            # backbone at the PDN's size. Synthetic RGB, 4 categories, 2 threads, mean I-AUROC at 8 epochs
            # (benchmarks/teacher_student_bench.py --methods efficientad): 0.884 on one machine (0.843 at 5
            # epochs); 0.856, 0.825, 0.845 for seeds 0, 1, 2 on another, whose float kernels differ: the
            # washer category moves most (0.70-0.76). AU-PRO 0.55-0.66, fit 14-18 s per category
            "quick": dict(
                backbone=QUICK_BACKBONE,
                layers=(2, 3),
                image_size=128,
                out_channels=64,
                epochs=8,
                teacher_epochs=5,
                batch_size=8,
                teacher_batch_size=8,
                learning_rate=3e-3,
                teacher_learning_rate=1e-3,
                hard_quantile=0.9,
                backbone_scale=1,
                pdn_width=16,
                ae_width=32,
            ),
            # released EfficientAD-S: 256 px, 384 teacher channels, batch 1, ~70 000 steps (300 passes over
            # ~230 images), Adam 1e-4; the teacher is distilled on the training images, not ImageNet
            # (batch 16, the backbone at 512 px, as released)
            "paper": dict(
                backbone=PAPER_BACKBONE,
                layers=("layer2", "layer3"),
                image_size=256,
                out_channels=384,
                epochs=300,
                teacher_epochs=100,
                batch_size=1,
                learning_rate=1e-4,
                teacher_learning_rate=1e-4,
                pdn_width=128,
                ae_width=64,
            ),
        },
    ),
]
