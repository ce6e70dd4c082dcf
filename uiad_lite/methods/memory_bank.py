"""Memory-bank detectors: keep what normal patches look like, score a test patch by how far it is.

All three read frozen ImageNet features (:mod:`uiad_lite.features`) on a grid of patches and differ
in what they remember and how they measure distance (survey Sec. 3.1.4, Table 4):

* :class:`PaDiM` (Defard et al. 2021) — one multivariate Gaussian per grid position; a test patch is
  scored by its Mahalanobis distance to the Gaussian of its own position. Parametric and
  position-bound: cheap to query, but it assumes the objects are aligned.
* :class:`PatchCore` (Roth et al. 2022) — every normal patch feature, thinned by a greedy k-center
  coreset; a test patch is scored by the distance to its nearest neighbour in the whole bank.
  Non-parametric and position-free.
* :class:`CFA` (Lee et al. 2022) — the variant we chose from Table 4. PaDiM and PatchCore keep the
  ImageNet features as they are and only change how the normal ones are summarised. CFA instead
  *adapts the features to the target data*: a small trainable patch descriptor (a 1×1 CoordConv) is
  fitted so that normal patches fall inside tiny hyperspheres around a compact memory of centroids
  (one per grid position), which both corrects the ImageNet bias and makes the bank far smaller than
  PatchCore's. It is the only memory-bank method here with a training loop, so it teaches something
  PaDiM/PatchCore do not. (PNI, Bae et al. 2023, the other candidate, mostly combines PaDiM's
  per-position view with PatchCore's bank and adds a refinement network trained on synthetic
  defects: more machinery, less new idea for a first reading.)

Shared conventions: every image is resized to ``image_size``×``image_size`` before the backbone, at
fit and at predict time alike, so test images of another size than the training images are handled
consistently (same grid, same features). Patch scores are upsampled (bilinear) to ``image_size``,
smoothed by a Gaussian of ``sigma`` = 4 px at that resolution (as in both papers) and finally resized
(bilinear) to each sample's mask resolution (its image resolution when it has no mask). All maps of
one ``predict`` call must share one resolution because ``Prediction.maps`` is an (N, H, W) array.
The image score is the map maximum (PaDiM, CFA) or PatchCore's re-weighted score (Eq. 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor, Reduction
from uiad_lite.methods.base import NotFittedError, Prediction

# ----------------------------------------------------------------------------------------------
# shared plumbing


def _output_size(samples: Sequence[Sample]) -> tuple[int, int]:
    """The common (H, W) of the samples' masks (or images when a sample has no mask)."""
    sizes = set()
    for sample in samples:
        sample.require("image")
        reference = sample.mask if sample.mask is not None else sample.image
        sizes.add(tuple(int(v) for v in reference.shape[:2]))
    if len(sizes) != 1:
        raise ValueError(
            f"predict() returns one (N, H, W) map array, so all samples must share one mask/image size; "
            f"got {sorted(sizes)}. Resize them first or call predict() once per size."
        )
    return sizes.pop()


def anomaly_maps(
    patch_scores: torch.Tensor, image_size: int, output_size: tuple[int, int], sigma: float = 4.0
) -> np.ndarray:
    """(N, h, w) patch scores -> (N, H, W) float32 maps: bilinear upsampling to the network input
    size, Gaussian smoothing (``sigma`` px, truncated at 4 sigma), bilinear resize to ``output_size``."""
    maps = F.interpolate(
        patch_scores[:, None].float(), size=(image_size, image_size), mode="bilinear", align_corners=False
    )[:, 0]
    smoothed = maps.cpu().numpy()
    if sigma > 0:
        smoothed = np.stack([gaussian_filter(m, sigma=sigma, mode="reflect") for m in smoothed])
    if tuple(output_size) != (image_size, image_size):
        resized = F.interpolate(
            torch.from_numpy(smoothed)[:, None], size=output_size, mode="bilinear", align_corners=False
        )
        smoothed = resized[:, 0].numpy()
    return smoothed.astype(np.float32)


class _PatchFeatureDetector:
    """Backbone + patch-feature plumbing shared by the three detectors (not a public class)."""

    default_layers: tuple[int | str, ...] = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone,
        layers: Sequence[int | str] | None,
        image_size: int,
        device: str,
        seed: int,
        pretrained: bool,
        batch_size: int,
        progress: bool,
        *,
        neighbourhood: int = 3,
        upsample_mode: str = "bilinear",
        reduction: Reduction = "none",
        reduced_dim: int | None = None,
    ) -> None:
        if isinstance(backbone, Backbone):
            if layers is not None and tuple(layers) not in (backbone.info.layers, backbone.info.module_names):
                raise ValueError(
                    f"layers={tuple(layers)} disagrees with the given backbone's layers "
                    f"{backbone.info.layers}"
                )
            self.backbone = backbone
        else:
            chosen = self.default_layers if layers is None else tuple(layers)
            self.backbone = build_backbone(backbone, chosen, device=device, pretrained=pretrained, seed=seed)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.progress = progress
        self.extractor = PatchFeatureExtractor(
            self.backbone,
            image_size=image_size,
            neighbourhood=neighbourhood,
            upsample_mode=upsample_mode,
            reduction=reduction,
            reduced_dim=reduced_dim,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def _features(self, samples: Sequence[Sample], desc: str) -> torch.Tensor:
        if len(samples) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one sample")
        return self.extractor(samples, desc=desc)

    def _maps(self, patch_scores: torch.Tensor, samples: Sequence[Sample]) -> np.ndarray:
        return anomaly_maps(patch_scores, self.image_size, _output_size(samples), self.sigma)


# ----------------------------------------------------------------------------------------------
# PaDiM


def fit_gaussians(embeddings: torch.Tensor, epsilon: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gaussian per position (PaDiM Eq. 1).

    embeddings: (N, P, d) — N training images, P positions, d channels.
    Returns mean (P, d) and covariance (P, d, d) = sample covariance (divisor N - 1) + epsilon·I.
    """
    count = embeddings.shape[0]
    if count < 2:
        raise ValueError(f"PaDiM needs at least 2 training images to estimate a covariance, got {count}")
    data = embeddings.double()
    mean = data.mean(dim=0)
    centred = data - mean
    covariance = torch.einsum("npi,npj->pij", centred, centred) / (count - 1)
    covariance += epsilon * torch.eye(data.shape[-1], dtype=data.dtype, device=data.device)
    return mean.float(), covariance.float()


def mahalanobis_distances(
    embeddings: torch.Tensor, mean: torch.Tensor, inverse_covariance: torch.Tensor
) -> torch.Tensor:
    """PaDiM Eq. 2: sqrt((x - mu_p)^T Sigma_p^-1 (x - mu_p)) for every image and position.

    embeddings (M, P, d), mean (P, d), inverse_covariance (P, d, d) -> (M, P).
    """
    delta = embeddings - mean
    squared = torch.einsum("mpi,pij,mpj->mp", delta, inverse_covariance, delta)
    return squared.clamp_min(0).sqrt()


class PaDiM(_PatchFeatureDetector):
    """PaDiM (Defard et al. 2021): a Gaussian per patch position, Mahalanobis distance at test time.

    Paper defaults: features of the first three stages (ResNet "layer1..3"; timm stages 1, 2, 3),
    deeper stages brought to the first grid by nearest-neighbour upsampling, a random subset of
    ``reduced_dim`` channels (100 for ResNet18, 550 for WideResNet-50), covariance regulariser
    ``epsilon`` = 0.01, Gaussian smoothing sigma = 4, image score = max of the map.
    """

    default_layers = (1, 2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 224,
        reduced_dim: int | None = 100,
        epsilon: float = 0.01,
        sigma: float = 4.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, batch_size, progress,
            neighbourhood=1, upsample_mode="nearest",
            reduction="none" if reduced_dim is None else "subset", reduced_dim=reduced_dim,
        )  # fmt: skip
        self.epsilon = epsilon
        self.sigma = sigma
        self.mean_: torch.Tensor | None = None
        self.inverse_covariance_: torch.Tensor | None = None

    def _embeddings(self, samples: Sequence[Sample], desc: str) -> tuple[torch.Tensor, tuple[int, int]]:
        features = self._features(samples, desc)  # (N, d, h, w)
        grid = tuple(features.shape[-2:])
        return features.flatten(2).transpose(1, 2).contiguous(), grid  # (N, P, d)

    def fit(self, samples: Sequence[Sample]) -> PaDiM:
        embeddings, self.grid_ = self._embeddings(samples, "PaDiM fit")
        positions, dim = embeddings.shape[1], embeddings.shape[2]
        self.mean_ = embeddings.mean(dim=0)
        # only the inverses are kept (P·d² floats); build them a block of positions at a time
        inverse = torch.empty(positions, dim, dim, device=embeddings.device)
        step = max(1, 2**24 // (dim * dim))
        for start in range(0, positions, step):
            _, covariance = fit_gaussians(embeddings[:, start : start + step], self.epsilon)
            inverse[start : start + step] = torch.linalg.inv(covariance.double()).float()
        self.inverse_covariance_ = inverse
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.mean_ is None or self.inverse_covariance_ is None:
            raise NotFittedError("PaDiM.predict() called before fit()")
        embeddings, grid = self._embeddings(samples, "PaDiM predict")
        distances = mahalanobis_distances(embeddings, self.mean_, self.inverse_covariance_)
        maps = self._maps(distances.reshape(-1, *grid), samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)


# ----------------------------------------------------------------------------------------------
# PatchCore


def johnson_lindenstrauss_dim(n_samples: int, eps: float = 0.9) -> int:
    """Dimensions a random projection needs to keep pairwise distances within 1 ± eps
    (Dasgupta & Gupta bound, the rule anomalib uses for PatchCore's coreset with eps = 0.9)."""
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    return int(math.ceil(4 * math.log(max(n_samples, 2)) / (eps**2 / 2 - eps**3 / 3)))


def greedy_coreset(
    features: torch.Tensor, count: int, start_index: int = 0, progress: bool = False
) -> np.ndarray:
    """Greedy k-center selection (PatchCore Alg. 1), an approximation of the minimax coreset of Eq. 5.

    Starting from ``start_index``, repeatedly add the point farthest (Euclidean) from everything
    selected so far. Returns ``count`` distinct indices in the order they were picked, so the coreset
    for a smaller count is always a prefix of the one for a larger count.
    """
    total = features.shape[0]
    if not 1 <= count <= total:
        raise ValueError(f"coreset size must be in [1, {total}], got {count}")
    if not 0 <= start_index < total:
        raise ValueError(f"start_index must be in [0, {total}), got {start_index}")
    points = features.float().contiguous()
    squared_norms = (points * points).sum(dim=1)
    nearest_selected = torch.full((total,), float("inf"), device=points.device)
    picks = [int(start_index)]
    current = int(start_index)
    for _ in tqdm(range(count - 1), desc="greedy coreset", disable=not progress, leave=False):
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, one matrix-vector product per pick
        squared = (
            torch.mv(points, points[current]).mul_(-2.0).add_(squared_norms).add_(squared_norms[current])
        )
        torch.minimum(nearest_selected, squared, out=nearest_selected)
        nearest_selected[current] = -float("inf")  # never pick a point twice
        current = int(torch.argmax(nearest_selected))
        picks.append(current)
    return np.asarray(picks, dtype=np.int64)


def coreset_indices(
    features: torch.Tensor,
    ratio: float,
    seed: int = 0,
    projection_dim: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """PatchCore's coreset subsampling: ``floor(ratio·N)`` (at least 1) indices of ``features`` (N, d).

    The greedy search runs on a seeded Gaussian random projection to ``projection_dim`` dimensions
    (default: the Johnson-Lindenstrauss size for eps = 0.9, as in anomalib; no projection when that
    is not smaller than d) and starts at a seeded random index. ``ratio`` = 1 keeps everything.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")
    total, dim = features.shape
    if ratio == 1:
        return np.arange(total, dtype=np.int64)
    count = max(1, int(total * ratio))
    target_dim = johnson_lindenstrauss_dim(total) if projection_dim is None else int(projection_dim)
    rng = np.random.default_rng(seed)
    reduced = features
    if target_dim < dim:
        matrix = rng.standard_normal((dim, target_dim)) / np.sqrt(target_dim)
        reduced = features.float() @ torch.from_numpy(matrix.astype(np.float32)).to(features.device)
    start = int(rng.integers(total))
    return greedy_coreset(reduced, count, start_index=start, progress=progress)


def nearest_neighbours(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1, max_block: int = 2**24
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest bank rows of each query (Euclidean), ascending: distances and indices (Q, k).

    Distances are computed with ``torch.cdist`` block by block, never more than ``max_block``
    query×bank pairs at once, keeping a running top-k — memory stays bounded for large banks.
    """
    if k < 1 or k > bank.shape[0]:
        raise ValueError(f"k must be in [1, {bank.shape[0]}] (bank size), got {k}")
    if max_block < 1:
        raise ValueError(f"max_block must be positive, got {max_block}")
    bank_step = min(bank.shape[0], max_block)
    query_step = max(1, max_block // bank_step)
    all_distances, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_step):
        query = queries[q_start : q_start + query_step].float()
        best_d = best_i = None
        for b_start in range(0, bank.shape[0], bank_step):
            block = torch.cdist(query, bank[b_start : b_start + bank_step].float())
            d, i = block.topk(min(k, block.shape[1]), dim=1, largest=False, sorted=True)
            i = i + b_start
            if best_d is not None:  # merge with the best of the previous blocks
                merged_d, merged_i = torch.cat([best_d, d], dim=1), torch.cat([best_i, i], dim=1)
                d, order = merged_d.topk(min(k, merged_d.shape[1]), dim=1, largest=False, sorted=True)
                i = merged_i.gather(1, order)
            best_d, best_i = d, i
        all_distances.append(best_d)
        all_indices.append(best_i)
    return torch.cat(all_distances), torch.cat(all_indices)


def reweighted_image_scores(
    patch_features: torch.Tensor,
    patch_distances: torch.Tensor,
    patch_neighbours: torch.Tensor,
    bank: torch.Tensor,
    num_neighbors: int = 9,
) -> torch.Tensor:
    """PatchCore image scores, Eq. 6-7 (Roth et al. 2022).

    For each image (rows of the (N, P) inputs): m_test* is the patch farthest from the bank, m* its
    nearest bank feature and s* = ||m_test* - m*|| (Eq. 6). With N_b(m*) the ``num_neighbors`` = b
    bank features nearest to m* (m* itself included),

        s = (1 - exp(||m_test* - m*||) / sum_{m in N_b(m*)} exp(||m_test* - m||)) · s*      (Eq. 7)

    so a test patch whose nearest normal feature lies in a sparse part of the bank scores higher.
    patch_features (N, P, d), patch_distances (N, P), patch_neighbours (N, P) bank indices.
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


class PatchCore(_PatchFeatureDetector):
    """PatchCore (Roth et al. 2022): coreset memory bank of patch features, nearest-neighbour scores.

    Defaults follow the paper and, where it is silent, anomalib's ``Patchcore``: stages 2+3 (ResNet
    "layer2", "layer3"), 3×3 neighbourhood aggregation, bilinear resizing of the deeper stage, 10 %
    coreset (``coreset_ratio``) by greedy k-center on a Johnson-Lindenstrauss random projection
    (eps = 0.9), b = ``num_neighbors`` = 9 for Eq. 7, Gaussian smoothing sigma = 4.
    The paper's backbone is ``wide_resnet50_2``; the offline default here is ``efficientnet_lite0``.

    Speed on CPU: with efficientnet_lite0 the JL rule asks for more dimensions than the 152 there
    are, so the greedy search runs unprojected and takes minutes for 100 images at 224 px (one
    matrix-vector product over all ~78k patches per pick). ``projection_dim=64`` keeps the projected
    patches in the CPU cache and is ~15x faster with the same detection quality on the synthetic
    benchmark (the reference implementation of the paper projects to 128); QUICK runs use it.
    """

    default_layers = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 224,
        coreset_ratio: float = 0.1,
        num_neighbors: int = 9,
        projection_dim: int | None = None,
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
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, batch_size, progress,
            neighbourhood=neighbourhood, upsample_mode="bilinear",
        )  # fmt: skip
        self.coreset_ratio = coreset_ratio
        self.num_neighbors = num_neighbors
        self.projection_dim = projection_dim
        self.sigma = sigma
        self.max_block = max_block
        self.memory_bank_: torch.Tensor | None = None

    def fit(self, samples: Sequence[Sample]) -> PatchCore:
        features = self._features(samples, "PatchCore fit")  # (N, d, h, w)
        patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])  # Eq. 4: all patches
        keep = coreset_indices(patches, self.coreset_ratio, self.seed, self.projection_dim, self.progress)
        self.memory_bank_ = patches[torch.from_numpy(keep).to(patches.device)].contiguous()
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.memory_bank_ is None:
            raise NotFittedError("PatchCore.predict() called before fit()")
        features = self._features(samples, "PatchCore predict")
        count, dim, height, width = features.shape
        patches = features.permute(0, 2, 3, 1).reshape(count, height * width, dim)
        distances, neighbours = nearest_neighbours(
            patches.reshape(-1, dim), self.memory_bank_, 1, self.max_block
        )
        distances = distances[:, 0].reshape(count, height * width)
        neighbours = neighbours[:, 0].reshape(count, height * width)
        scores = reweighted_image_scores(
            patches, distances, neighbours, self.memory_bank_, self.num_neighbors
        )
        maps = self._maps(distances.reshape(count, height, width), samples)
        return Prediction(scores=scores.cpu().numpy(), maps=maps)


# ----------------------------------------------------------------------------------------------
# CFA


class CoordConvDescriptor(nn.Module):
    """CFA's patch descriptor: a 1×1 convolution over the features plus two coordinate channels
    (CoordConv, Liu et al. 2018), so the adapted feature knows where on the grid it sits."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels + 2, out_channels, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = features.shape
        ys = (
            torch.linspace(-1, 1, height, device=features.device)
            .view(1, 1, height, 1)
            .expand(batch, 1, height, width)
        )
        xs = (
            torch.linspace(-1, 1, width, device=features.device)
            .view(1, 1, 1, width)
            .expand(batch, 1, height, width)
        )
        return self.projection(torch.cat([features, ys, xs], dim=1))


def coupled_hypersphere_loss(
    squared_distances: torch.Tensor, num_nearest: int, num_hard_negatives: int, radius: float, margin: float
) -> torch.Tensor:
    """CFA's soft-boundary loss L_CFA = L_att + L_rep (Lee et al. 2022).

    squared_distances: (P, M) squared distances of P adapted patch features to M memory centroids.
    L_att pulls each feature inside the hypersphere of radius r around its K nearest centroids,
    L_rep pushes the next J centroids (hard negatives) beyond r² + alpha:

        L_att = mean_{t, k<=K} max(0, D(p_t, c^k) - r²)
        L_rep = mean_{t, K<j<=K+J} max(0, r² - D(p_t, c^j) - alpha)
    """
    nearest = squared_distances.topk(num_nearest + num_hard_negatives, dim=1, largest=False).values
    attraction = F.relu(nearest[:, :num_nearest] - radius**2).mean()
    repulsion = F.relu(radius**2 - nearest[:, num_nearest:] - margin).mean() if num_hard_negatives else 0.0
    return attraction + repulsion


def _squared_distances(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(P, d) x (M, d) -> (P, M) squared Euclidean distances (differentiable, clamped at 0)."""
    return (
        features.pow(2).sum(1, keepdim=True) - 2 * features @ centroids.T + centroids.pow(2).sum(1)[None]
    ).clamp_min(0)


class CFA(_PatchFeatureDetector):
    """CFA (Lee et al. 2022): coupled-hypersphere feature adaptation with a compact centroid memory.

    1. Patch features as in PatchCore (stages 1-3, 3×3 aggregation, bilinear resize).
    2. A CoordConv 1×1 descriptor maps them to d/``gamma_d`` channels (randomly initialised, seeded).
    3. Memory: the descriptor's output averaged over the training images at each grid position,
       one centroid per position; ``gamma_c`` > 1 compresses it to (h·w)/gamma_c centroids by k-means.
    4. The descriptor is trained (AdamW with AMSGrad) on the normal images with
       :func:`coupled_hypersphere_loss`, K = ``num_nearest`` = 3, J = ``num_hard_negatives`` = 3,
       r = ``radius`` = 1e-5, alpha = ``margin`` = 0.1; the centroids stay fixed. The backbone is
       frozen, so its features are computed once and reused every epoch. r is a fixed
       hyper-parameter here (as in anomalib).
    5. Score of a patch: the softmin-weighted distance to its nearest centroid among the K nearest,
       softmin(d_1..d_K)_1 · d_1; map upsampled, smoothed (sigma 4); image score = map maximum.
    """

    default_layers = (1, 2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 224,
        gamma_c: int = 1,
        gamma_d: int = 1,
        num_nearest: int = 3,
        num_hard_negatives: int = 3,
        radius: float = 1e-5,
        margin: float = 0.1,
        epochs: int = 30,
        learning_rate: float = 1e-3,
        weight_decay: float = 5e-4,
        images_per_step: int = 4,
        sigma: float = 4.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if gamma_c < 1 or gamma_d < 1:
            raise ValueError(f"gamma_c and gamma_d must be >= 1, got {gamma_c}, {gamma_d}")
        if num_nearest < 1 or num_hard_negatives < 0:
            raise ValueError(
                f"need num_nearest >= 1 and num_hard_negatives >= 0, got {num_nearest}, {num_hard_negatives}"
            )
        if epochs < 0 or images_per_step < 1:
            raise ValueError(f"need epochs >= 0 and images_per_step >= 1, got {epochs}, {images_per_step}")
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, batch_size, progress,
            neighbourhood=3, upsample_mode="bilinear",
        )  # fmt: skip
        self.gamma_c, self.gamma_d = gamma_c, gamma_d
        self.num_nearest, self.num_hard_negatives = num_nearest, num_hard_negatives
        self.radius, self.margin = radius, margin
        self.epochs, self.learning_rate, self.weight_decay = epochs, learning_rate, weight_decay
        self.images_per_step = images_per_step
        self.sigma = sigma
        self.descriptor_: CoordConvDescriptor | None = None
        self.centroids_: torch.Tensor | None = None
        self.loss_history_: list[float] = []

    def _adapted(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) backbone patch features -> (N·h·w, d') adapted features."""
        assert self.descriptor_ is not None
        adapted = self.descriptor_(features)
        return adapted.permute(0, 2, 3, 1).reshape(-1, adapted.shape[1])

    def fit(self, samples: Sequence[Sample]) -> CFA:
        features = self._features(samples, "CFA features")  # (N, C, h, w), frozen
        count, channels, height, width = features.shape
        needed = self.num_nearest + self.num_hard_negatives
        centroid_count = (height * width) // self.gamma_c
        if centroid_count < needed:
            raise ValueError(
                f"CFA memory has {centroid_count} centroids, fewer than K + J = {needed}; "
                f"use a larger image_size or a smaller gamma_c"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            descriptor = CoordConvDescriptor(channels, channels // self.gamma_d).to(features.device)
        self.descriptor_ = descriptor
        with torch.no_grad():  # memory initialisation: mean adapted feature per position
            memory = descriptor(features).mean(dim=0)  # (d', h, w)
            memory = memory.permute(1, 2, 0).reshape(height * width, -1)
        if self.gamma_c > 1:
            from sklearn.cluster import KMeans

            kmeans = KMeans(n_clusters=centroid_count, n_init=1, random_state=self.seed).fit(
                memory.cpu().numpy()
            )
            memory = torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)).to(features.device)
        self.centroids_ = memory.contiguous()

        optimiser = torch.optim.AdamW(  # the authors' code uses AMSGrad
            descriptor.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay, amsgrad=True
        )
        rng = np.random.default_rng(self.seed)
        self.loss_history_ = []
        descriptor.train()
        for _ in tqdm(range(self.epochs), desc="CFA training", disable=not self.progress, leave=False):
            epoch_loss = 0.0
            order = rng.permutation(count)
            for start in range(0, count, self.images_per_step):
                batch = features[
                    torch.from_numpy(order[start : start + self.images_per_step]).to(features.device)
                ]
                distances = _squared_distances(self._adapted(batch), self.centroids_)
                loss = coupled_hypersphere_loss(
                    distances, self.num_nearest, self.num_hard_negatives, self.radius, self.margin
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(batch)
            self.loss_history_.append(epoch_loss / count)
        descriptor.eval()
        return self

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.descriptor_ is None or self.centroids_ is None:
            raise NotFittedError("CFA.predict() called before fit()")
        features = self._features(samples, "CFA predict")
        count, _, height, width = features.shape
        patch_scores = []
        for start in range(0, count, self.images_per_step):
            adapted = self._adapted(features[start : start + self.images_per_step])
            nearest = _squared_distances(adapted, self.centroids_).topk(
                self.num_nearest, dim=1, largest=False
            )
            distances = nearest.values.sqrt()
            patch_scores.append(F.softmin(distances, dim=1)[:, 0] * distances[:, 0])
        scores = torch.cat(patch_scores).reshape(count, height, width)
        maps = self._maps(scores, samples)
        return Prediction(scores=maps.reshape(count, -1).max(axis=1), maps=maps)
