"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`).

Quick presets: the quick backbone's stages 2+3 at 160 px (a 20×20 grid) and FPFH on an 80 px cloud — the
grid and cloud size of ``btf_fpfh``'s quick preset; paper presets: WideResNet-50 layer2+layer3 at 224 px
(28×28) and FPFH on the released 224 px cloud (BTF's setting; M3DM and CFM use ViT/Point-MAE features,
whose weights are not available here).
"""

from __future__ import annotations

from uiad_lite.methods.registry_entry import PAPER_BACKBONE, QUICK_BACKBONE, MethodEntry

_QUICK = dict(backbone=QUICK_BACKBONE, layers=(2, 3), image_size=160, cloud_size=80, voxel_size=0.05)
_PAPER = dict(backbone=PAPER_BACKBONE, layers=("layer2", "layer3"), image_size=224, cloud_size=224,
              voxel_size=0.05)  # fmt: skip
_COMMON = dict(family="multimodal", setting="multimodal", chapter="10_multimodal", needs="image,xyz")
_HERE = "uiad_lite.methods.multimodal"
# survey_method stays "" : the registry test requires a survey-named row to carry the survey's family and
# sub-family (feature embedding / memory bank for "PatchCore+FPFH" and "M3DM", reconstruction for "CFM"),
# while this family is filed by fusion strategy. The survey names are in each class's docstring.

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        "fusion_early", f"{_HERE}.early:FusionEarly", "", subfamily="early fusion", **_COMMON,
        trains=False, reference="horwitz2023back",
        # released BTF: raw concatenation (normalise="none"), 10 % coreset, re-weighted image score
        presets={"quick": dict(_QUICK, normalise="none"), "paper": dict(_PAPER, normalise="none")},
    ),
    MethodEntry(
        "fusion_middle", f"{_HERE}.middle:FusionMiddle", "", subfamily="middle fusion", **_COMMON,
        trains=True, reference="wang2023multimodal",
        # M3DM's contrastive fusion: MLP ratio 4, 256-d heads; quick trains 5 epochs, paper 3 (released)
        presets={"quick": dict(_QUICK, epochs=5), "paper": dict(_PAPER, epochs=3)},
    ),
    MethodEntry(
        "fusion_late", f"{_HERE}.late:FusionLate", "", subfamily="late fusion", **_COMMON,
        trains=False, reference="",
        presets={"quick": dict(_QUICK, normalise="zscore", combine="max", holdout=0.2),
                 "paper": dict(_PAPER, normalise="zscore", combine="max", holdout=0.2)},
    ),
    MethodEntry(
        "fusion_hybrid", f"{_HERE}.hybrid:FusionHybrid", "", subfamily="hybrid fusion", **_COMMON,
        trains=True, reference="wang2023multimodal",
        # paper = released: decision layer on the training samples themselves, RGB scores x 0.1;
        # quick = held-back samples, each score divided by its normal mean (features other than M3DM's)
        presets={"quick": dict(_QUICK, decision_data="holdout", score_scaling="normal_mean", nu=0.5),
                 "paper": dict(_PAPER, decision_data="train", score_scaling="released", nu=0.5)},
    ),
    MethodEntry(
        "cfm", f"{_HERE}.cfm:CFM", "", subfamily="middle fusion", **_COMMON,
        trains=True, reference="costanzino2023multimodal",
        # released: 50 epochs, 4 images per batch, Adam 1e-3
        presets={"quick": dict(_QUICK, epochs=30, batch_size=4),
                 "paper": dict(_PAPER, epochs=50, batch_size=4)},
    ),
]  # fmt: skip
