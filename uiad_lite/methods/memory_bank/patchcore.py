"""PatchCore (Roth et al. 2022, "Towards Total Recall in Industrial Anomaly Detection").

Every normal patch feature goes into one memory bank, thinned by a greedy coreset (:mod:`.coreset`);
a test patch scores by its distance to the nearest bank feature, wherever in the image that came from.

Defaults follow the authors' released code (amazon-science/patchcore-inspection, the configuration
its README gives for WideResNet-50, layers 2+3, 224 px, 10 %), and each place where the paper, the
released code and anomalib differ is an option:

``embedding``  "adaptive_pool" (released): every stage is cut into zero-padded 3×3 patches
               (``torch.nn.Unfold``), deeper stages are resized to the first grid (bilinear), each
               flattened C·3·3 patch is averaged down to ``pretrain_dim`` values by
               ``adaptive_avg_pool1d``, the stages are stacked and averaged down again to
               ``target_dim`` (1024 and 1024 in the paper's run). "concat" (anomalib): 3×3 average
               pooling, bilinear resize, plain concatenation of the channels.
``count_padding`` for "concat": whether the zeros outside the border count in the 3×3 mean (True, as
               ``avg_pool2d``'s default in anomalib; the released unfold counts them too).
``sampler``    "approximate" (released ``ApproximateGreedyCoresetSampler``) or "greedy" (exact, anomalib).
``distance``   "squared" (released: FAISS ``IndexFlatL2`` returns squared L2 distances and the code uses
               them as they are for maps and scores) or "euclidean" (the paper's Eq. 6 notation).
``image_score`` "max" (released: the largest patch score) or "reweighted" (the paper's Eq. 7, computed
               with Euclidean distances and ``num_neighbors`` = b).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor, aggregate_neighbourhood, combine_stages
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.coreset import SAMPLERS, coreset_indices
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector, anomaly_maps, output_size

EMBEDDINGS = ("adaptive_pool", "concat")
DISTANCES = ("squared", "euclidean")
IMAGE_SCORES = ("max", "reweighted")


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")
    return value


def adaptive_pool_embedding(
    stages: Sequence[torch.Tensor], patchsize: int, pretrain_dim: int, target_dim: int
) -> torch.Tensor:
    """The released PatchCore embedding: stage outputs (B, C_l, h_l, w_l) -> (B, target_dim, h, w)."""
    grid = tuple(stages[0].shape[-2:])
    batch = stages[0].shape[0]
    pooled = []
    for stage in stages:
        channels = stage.shape[1] * patchsize * patchsize
        patches = F.unfold(stage, kernel_size=patchsize, padding=patchsize // 2)  # zeros outside count
        patches = patches.reshape(batch, channels, *stage.shape[-2:])
        if tuple(stage.shape[-2:]) != grid:
            patches = F.interpolate(patches, size=grid, mode="bilinear", align_corners=False)
        vectors = patches.flatten(2).transpose(1, 2).reshape(-1, 1, channels)  # (B·h·w, 1, C·p·p)
        pooled.append(F.adaptive_avg_pool1d(vectors, pretrain_dim)[:, 0])
    stacked = torch.stack(pooled, dim=1).reshape(-1, 1, len(stages) * pretrain_dim)
    embedded = F.adaptive_avg_pool1d(stacked, target_dim)[:, 0]
    return embedded.reshape(batch, grid[0] * grid[1], target_dim).transpose(1, 2).reshape(batch, -1, *grid)


class PatchCoreFeatures(PatchFeatureExtractor):
    """Patch features the PatchCore way (``embedding`` and ``count_padding`` as in the module docstring);
    reading images and the shared feature cache are those of :class:`PatchFeatureExtractor`."""

    def __init__(
        self, backbone: Backbone, *, embedding: str = "adaptive_pool", count_padding: bool = True,
        pretrain_dim: int = 1024, target_dim: int = 1024, **options: Any,
    ) -> None:  # fmt: skip
        super().__init__(backbone, **options)
        self.embedding = _choice("embedding", embedding, EMBEDDINGS)
        if pretrain_dim < 1 or target_dim < 1:
            raise ValueError(
                f"pretrain_dim and target_dim must be positive, got {pretrain_dim}, {target_dim}"
            )
        self.count_padding = bool(count_padding)
        self.pretrain_dim, self.target_dim = int(pretrain_dim), int(target_dim)
        if embedding == "adaptive_pool":
            self.out_channels = self.target_dim

    @torch.no_grad()
    def from_stages(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.embedding == "adaptive_pool":
            return adaptive_pool_embedding(stages, self.neighbourhood, self.pretrain_dim, self.target_dim)
        pooled = [
            aggregate_neighbourhood(s, self.neighbourhood, count_padding=self.count_padding) for s in stages
        ]
        return combine_stages(pooled, self.upsample_mode)


def reweighted_image_scores(
    patch_features: torch.Tensor,
    patch_distances: torch.Tensor,
    patch_neighbours: torch.Tensor,
    bank: torch.Tensor,
    num_neighbors: int = 9,
) -> torch.Tensor:
    """PatchCore image scores, Eq. 6-7 of the paper (not in the released code).

    For each image (rows of the (N, P) inputs): m_test* is the patch farthest from the bank, m* its
    nearest bank feature and s* = ||m_test* - m*|| (Eq. 6). With N_b(m*) the ``num_neighbors`` = b
    bank features nearest to m* (m* itself included),

        s = (1 - exp(||m_test* - m*||) / sum_{m in N_b(m*)} exp(||m_test* - m||)) · s*      (Eq. 7)

    patch_features (N, P, d), patch_distances (N, P) Euclidean, patch_neighbours (N, P) bank indices.
    """
    rows = torch.arange(patch_distances.shape[0], device=patch_distances.device)
    worst = patch_distances.argmax(dim=1)
    star_score = patch_distances[rows, worst]  # s*
    if num_neighbors <= 1:
        return star_score
    test_star = patch_features[rows, worst]  # m_test*
    bank_star = bank[patch_neighbours[rows, worst]]  # m*
    b = min(num_neighbors, bank.shape[0])
    _, support = nearest_neighbours(bank_star, bank, k=b)  # N_b(m*)
    support_distances = torch.linalg.vector_norm(test_star[:, None, :] - bank[support], dim=-1)  # (N, b)
    weight = 1.0 - torch.exp(star_score - torch.logsumexp(support_distances, dim=1))
    return weight * star_score


def score_against_bank(
    features: torch.Tensor, bank: torch.Tensor, image_size: int, output_size: tuple[int, int], *,
    distance: str = "squared", image_score: str = "max", num_neighbors: int = 9, sigma: float = 4.0,
    max_block: int = 2**24,
) -> Prediction:  # fmt: skip
    """PatchCore's test time after feature extraction: (N, d, h, w) features against a (B, d) bank ->
    image scores and maps (nearest-neighbour distance per patch, upsampled, smoothed, resized)."""
    _choice("distance", distance, DISTANCES)
    _choice("image_score", image_score, IMAGE_SCORES)
    if features.ndim != 4:
        raise ValueError(f"features must be (N, d, h, w), got shape {tuple(features.shape)}")
    count, dim, height, width = features.shape
    if bank.ndim != 2 or bank.shape[1] != dim:
        raise ValueError(f"bank must be (B, {dim}) to match the test features, got shape {tuple(bank.shape)}")
    patches = features.permute(0, 2, 3, 1).reshape(count, height * width, dim)
    found, neighbours = nearest_neighbours(patches.reshape(-1, dim), bank, 1, max_block)
    euclidean = found[:, 0].reshape(count, height * width)
    patch_scores = euclidean.square() if distance == "squared" else euclidean
    if image_score == "max":
        scores = patch_scores.max(dim=1).values
    else:
        neighbours = neighbours[:, 0].reshape(count, height * width)
        scores = reweighted_image_scores(patches, euclidean, neighbours, bank, num_neighbors)
    maps = anomaly_maps(patch_scores.reshape(count, height, width), image_size, output_size, sigma)
    return Prediction(scores=scores.cpu().numpy(), maps=maps)


class PatchCore(PatchFeatureDetector):
    """PatchCore: coreset memory bank of patch features, nearest-neighbour scores (options: module docstring).

    Paper / released setting: ``wide_resnet50_2`` layers 2+3, 224 px, 3×3 patches, ``pretrain_dim`` =
    ``target_dim`` = 1024, 10 % approximate-greedy coreset on a 128-d projection, squared distances,
    image score = maximum patch score, Gaussian smoothing sigma = 4. The offline default backbone here
    is ``efficientnet_lite0``; ``uiad_lite.methods.create("patchcore", preset=...)`` picks settings.
    """

    default_layers = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 224,
        coreset_ratio: float = 0.1,
        embedding: str = "adaptive_pool",
        pretrain_dim: int = 1024,
        target_dim: int = 1024,
        count_padding: bool = True,
        sampler: str = "approximate",
        projection_dim: int | None = None,
        starting_points: int = 10,
        distance: str = "squared",
        image_score: str = "max",
        num_neighbors: int = 9,
        neighbourhood: int = 3,
        sigma: float = 4.0,
        max_block: int = 2**24,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if num_neighbors < 1:
            raise ValueError(f"num_neighbors must be at least 1, got {num_neighbors}")
        self.sampler = _choice("sampler", sampler, SAMPLERS)
        self.distance = _choice("distance", distance, DISTANCES)
        self.image_score = _choice("image_score", image_score, IMAGE_SCORES)
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, batch_size, progress,
            neighbourhood=neighbourhood, upsample_mode="bilinear", embedding=embedding,
            count_padding=count_padding, pretrain_dim=pretrain_dim, target_dim=target_dim,
        )  # fmt: skip
        self.coreset_ratio = coreset_ratio
        self.embedding, self.count_padding = embedding, count_padding
        self.pretrain_dim, self.target_dim = pretrain_dim, target_dim
        self.projection_dim = projection_dim
        self.starting_points = starting_points
        self.num_neighbors = num_neighbors
        self.sigma = sigma
        self.max_block = max_block
        self.memory_bank_: torch.Tensor | None = None

    def _make_extractor(self, **options: Any) -> PatchCoreFeatures:
        return PatchCoreFeatures(self.backbone, **options)

    def select_coreset(self, patches: torch.Tensor, ratio: float | None = None) -> torch.Tensor:
        """Indices of the coreset of ``patches`` (M, d); ``ratio`` defaults to coreset_ratio."""
        keep = coreset_indices(
            patches, self.coreset_ratio if ratio is None else ratio, self.seed, self.projection_dim,
            self.progress, sampler=self.sampler, starting_points=self.starting_points,
        )  # fmt: skip
        return torch.from_numpy(keep)

    def fit(self, samples: Sequence[Sample]) -> PatchCore:
        features = self._features(samples, "PatchCore fit")  # (N, d, h, w)
        patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])  # Eq. 4: all patches
        self.memory_bank_ = patches[self.select_coreset(patches).to(patches.device)].contiguous()
        return self

    def score_features(self, features: torch.Tensor, size: tuple[int, int]) -> Prediction:
        """Scores and (N, *size) maps of already extracted (N, d, h, w) test features."""
        if self.memory_bank_ is None:
            raise NotFittedError("PatchCore.predict() called before fit()")
        return score_against_bank(
            features, self.memory_bank_, self.image_size, size, distance=self.distance,
            image_score=self.image_score, num_neighbors=self.num_neighbors, sigma=self.sigma,
            max_block=self.max_block,
        )  # fmt: skip

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.memory_bank_ is None:
            raise NotFittedError("PatchCore.predict() called before fit()")
        return self.score_features(self._features(samples, "PatchCore predict"), output_size(samples))

    def patch_scores(self, samples: Sequence[Sample]) -> torch.Tensor:
        """(N, h, w) patch scores on the feature grid, before upsampling and smoothing."""
        if self.memory_bank_ is None:
            raise NotFittedError("PatchCore.patch_scores() called before fit()")
        features = self._features(samples, "PatchCore patch scores")
        count, dim, height, width = features.shape
        found, _ = nearest_neighbours(features.permute(0, 2, 3, 1).reshape(-1, dim), self.memory_bank_, 1,
                                      self.max_block)  # fmt: skip
        scores = found[:, 0].square() if self.distance == "squared" else found[:, 0]
        return scores.reshape(count, height, width)

    def with_scoring(self, **options: Any) -> PatchCore:
        """A copy sharing this detector's backbone and fitted bank that scores with other test-time
        options (``distance``, ``image_score``, ``num_neighbors``, ``sigma``): no refit needed."""
        allowed = {"distance": DISTANCES, "image_score": IMAGE_SCORES, "num_neighbors": None, "sigma": None}
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"with_scoring() takes only test-time options {sorted(allowed)}, got {unknown}")
        variant = copy.copy(self)
        for name, value in options.items():
            setattr(variant, name, _choice(name, value, allowed[name]) if allowed[name] else value)
        return variant
