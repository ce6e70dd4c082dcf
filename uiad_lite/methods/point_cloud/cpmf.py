"""CPMF (Cao, Xu and Shen 2024, "Complementary Pseudo Multimodal Feature for Point Cloud Anomaly
Detection", Pattern Recognition 156; released code github.com/caoyunkang/CPMF,
``feature_extractors/cpmf_features.py``, ``feature_extractors/features.py``, ``utils/render_utils.py``).

A hand-crafted 3D descriptor sees local geometry; a CNN pre-trained on ImageNet sees shapes at a larger
scale but needs images. CPMF gives it images of the cloud itself:

1. render the cloud into ``n_views`` grey, shaded 2D views (:mod:`uiad_lite.features.multiview`;
   released: 27 rotations of ±15° about x, y, z, 224 px, open3d's renderer);
2. run the frozen backbone on the views (released: ``resnet18``, stages 1-3), resize each stage to the
   render size and read it at every point's pixel; average over views: the "pseudo 2D modality" feature;
3. L2-normalise it and the point's FPFH (33 bins) and concatenate them: the *complementary* feature;
4. PatchCore on those features: a bank of all training features thinned by greedy k-center to
   ``coreset_ratio`` (released ``f_coreset`` = 0.1, after a sparse random projection, our
   ``sampler="greedy"``); a point's score is the Euclidean distance to its nearest bank feature.
   ``object_score="reweighted"`` (released ``compute_s_s_map``) re-weights the largest point score by
   PatchCore's Eq. 7 with 3 neighbours; ``"max"`` takes the largest point score.

Where we depart: the released code organises the features of MVTec 3D-AD's organised clouds onto the
224×224 pixel grid and pools them (3×3 mean, then 28×28) before the bank, and blurs the score map; our
clouds are unorganised (``Sample.points``), so the bank holds one feature per point (or per point of a
voxel-downsampled cloud, ``downsample``; "auto" = the FPFH voxel, with scores carried back) and scores
stay per point. The camera is orthographic (see the rendering module); ``layout="sphere"`` spreads the
views over the whole sphere for objects scanned all round (released ``"grid"``). ``visibility="zbuffer"``
reads a point's feature only from the views where it is not hidden; the released ``"all"`` also reads it
where the surface in front covers it, and scored higher on the synthetic clouds (both presets use it).

Pose: the views rotate the *object's own frame* by fixed angles, so a cloud that arrives turned by a
large angle is rendered from other sides than the training clouds were; there is no registration, so
its 2D features no longer match the bank and normal points score high. Only the FPFH half is
(nearly) pose-invariant. Real3D-AD-like data in arbitrary poses therefore hurt CPMF much more than
small jitters do (chapter 09, "Rigidly moved clouds").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import backbone, images_to_tensor, resolve_device
from uiad_lite.features.multiview import (
    SHADINGS,
    VIEW_LAYOUTS,
    VISIBILITIES,
    RenderedViews,
    point_view_features,
    render_views,
    view_rotations,
)
from uiad_lite.features.point_features import check_points, point_fpfh
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.coreset import coreset_indices
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.memory_bank.patchcore import reweighted_image_scores
from uiad_lite.methods.point_cloud.reg3dad import auto_voxel_size

OBJECT_SCORES = ("reweighted", "max")


def _name(sample: Sample) -> str:
    return sample.path or f"{sample.category}/{sample.split}/{sample.defect}"


class CPMF:
    """Multi-view 2D features + FPFH per point, PatchCore bank (module docstring). Needs ``Sample.points``."""

    def __init__(
        self,
        backbone_name: str = "efficientnet_lite0",
        layers: Sequence[int | str] = (1, 2, 3),
        n_views: int = 6,
        layout: str = "sphere",
        image_size: int = 128,
        point_size: int | str = "auto",
        shading: str = "normal",
        visibility: str = "zbuffer",
        use_fpfh: bool = True,
        voxel_size: float | str = "auto",
        downsample: float | str | None = None,
        coreset_ratio: float = 0.1,
        object_score: str = "reweighted",
        num_neighbors: int = 3,
        weights: str | None = None,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        for option, value, choices in (
            ("layout", layout, VIEW_LAYOUTS),
            ("shading", shading, SHADINGS),
            ("visibility", visibility, VISIBILITIES),
            ("object_score", object_score, OBJECT_SCORES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {option} {value!r}; choose one of {list(choices)}")
        if voxel_size != "auto" and not (isinstance(voxel_size, (int, float)) and voxel_size > 0):
            raise ValueError(f"voxel_size must be a positive length or 'auto', got {voxel_size!r}")
        if downsample not in (None, "auto") and not (isinstance(downsample, (int, float)) and downsample > 0):
            raise ValueError(f"downsample must be None, 'auto' or a positive voxel size, got {downsample!r}")
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.backbone_name, self.layers, self.weights = backbone_name, tuple(layers), weights
        self.n_views, self.layout, self.image_size = int(n_views), layout, int(image_size)
        self.rotations = view_rotations(self.n_views, layout)  # checks n_views against the layout
        self.point_size, self.shading, self.visibility = point_size, shading, visibility
        self.use_fpfh, self.voxel_size, self.downsample = bool(use_fpfh), voxel_size, downsample
        self.coreset_ratio, self.object_score, self.num_neighbors = (
            float(coreset_ratio),
            object_score,
            num_neighbors,
        )
        self.seed, self.progress, self.device = int(seed), progress, resolve_device(device)
        self.extractor_ = None
        self.voxel_size_: float | None = None
        self.downsample_: float | None = None
        self.bank_: torch.Tensor | None = None

    # ------------------------------------------------------------------------------ steps 1 to 3
    def _points(self, sample: Sample) -> np.ndarray:
        sample.require("points")
        return check_points(sample.points, _name(sample))

    def _extractor(self):
        if self.extractor_ is None:  # FileNotFoundError naming how to get weights when they are absent
            self.extractor_ = backbone(self.backbone_name, self.layers, self.device, weights=self.weights)
        return self.extractor_

    def render(self, points: np.ndarray) -> RenderedViews:
        """The cloud's views (rotations of its own frame; see :mod:`uiad_lite.features.multiview`)."""
        return render_views(points, self.rotations, self.image_size, self.point_size, self.shading)

    def describe(self, points: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """(M, d) complementary features of the described points and the owner of every input point."""
        desc = point_fpfh(points, self.voxel_size_, self.downsample_)
        views = self.render(desc.points)
        with torch.no_grad():
            maps = self._extractor()(images_to_tensor(list(views.images), self.image_size))
        features = [F.normalize(point_view_features(maps, views, self.visibility), dim=1)]
        if self.use_fpfh:
            features.append(F.normalize(torch.from_numpy(desc.features), dim=1))
        return torch.cat(features, dim=1), desc.owner

    # ------------------------------------------------------------------------------ step 4
    def fit(self, samples: Sequence[Sample]) -> CPMF:
        if len(samples) == 0:
            raise ValueError("CPMF needs at least one training cloud")
        clouds = [self._points(s) for s in samples]
        self.voxel_size_ = auto_voxel_size(clouds[0]) if self.voxel_size == "auto" else float(self.voxel_size)
        auto = self.downsample == "auto"
        self.downsample_ = self.voxel_size_ if auto else (float(self.downsample) if self.downsample else None)
        described = [
            self.describe(cloud)[0]
            for cloud in tqdm(clouds, desc="CPMF fit", disable=not self.progress, leave=False)
        ]
        stacked = torch.cat(described)
        keep = coreset_indices(stacked, self.coreset_ratio, self.seed, sampler="greedy")
        self.bank_ = stacked[torch.from_numpy(keep)].contiguous().to(self.device)
        return self

    def score_points(self, features: torch.Tensor) -> tuple[np.ndarray, float]:
        """Per-point nearest-bank distances of one cloud's features and its object score."""
        distances, neighbours = nearest_neighbours(features.to(self.device), self.bank_, 1)
        distances, neighbours = distances[:, 0], neighbours[:, 0]
        if self.object_score == "max":
            score = distances.max()
        else:
            score = reweighted_image_scores(
                features.to(self.device)[None],
                distances[None],
                neighbours[None],
                self.bank_,
                self.num_neighbors,
            )[0]
        return distances.cpu().numpy(), float(score)

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.bank_ is None:
            raise NotFittedError("CPMF.predict() called before fit()")
        point_scores, scores = [], []
        for sample in tqdm(samples, desc="CPMF predict", disable=not self.progress, leave=False):
            features, owner = self.describe(self._points(sample))
            distances, score = self.score_points(features)
            point_scores.append(distances[owner])
            scores.append(score)
        return Prediction(scores=np.asarray(scores), point_scores=point_scores)
