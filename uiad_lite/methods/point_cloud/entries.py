"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`)."""

from __future__ import annotations

from uiad_lite.methods.registry_entry import QUICK_BACKBONE, MethodEntry

_POINT_CLOUD = dict(
    family="feature embedding", subfamily="memory bank", setting="3d", chapter="09_point_clouds"
)

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        "cpmf",
        "uiad_lite.methods.point_cloud.cpmf:CPMF",
        "CPMF",
        # the survey's Table 7 files CPMF as multimodal (its rendered views are a "pseudo" 2D modality), and
        # the catalogue keeps the survey's setting, although CPMF needs nothing but the points
        **{**_POINT_CLOUD, "setting": "multimodal"},
        needs="points",
        trains=False,
        reference="cao2024complementary",
        # paper: the released renderer's 27 views (±15° about x, y, z) at 224 px, resnet18 stages 1-3,
        # every point read in every view, Eq. 7 object score, a 10 % coreset. quick: 6 views spread over
        # the sphere at 128 px on the offline efficientnet_lite0, clouds downsampled at the FPFH voxel.
        # Both read every point in every view (released); visibility="zbuffer" skips hidden points
        presets={
            "quick": dict(
                backbone_name=QUICK_BACKBONE,
                layers=(1, 2, 3),
                n_views=6,
                layout="sphere",
                image_size=128,
                visibility="all",
                downsample="auto",
                coreset_ratio=0.1,
                object_score="reweighted",
            ),
            "paper": dict(
                backbone_name="resnet18",
                layers=(1, 2, 3),
                n_views=27,
                layout="grid",
                image_size=224,
                visibility="all",
                downsample=None,
                coreset_ratio=0.1,
                object_score="reweighted",
            ),
        },
    ),
]
