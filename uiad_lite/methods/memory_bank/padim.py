"""PaDiM (Defard et al. 2021): one multivariate Gaussian per grid position, Mahalanobis distance at test time.

Parametric and position-bound: cheap to query, but it assumes the objects are aligned. Reference code:
the authors did not release theirs; anomalib's ``Padim`` and xiahaifeng1995/PaDiM-Anomaly-Detection-
Localization-master follow the paper (random channel subset, covariance + 0.01·I, Gaussian smoothing 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector


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


class PaDiM(PatchFeatureDetector):
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
        self.reduced_dim = reduced_dim
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
            # Σ + εI is symmetric positive definite: invert through its Cholesky factor (LAPACK potrf/potri),
            # which is what the maths allows and avoids the LU pivoting path of a general inverse
            factor = torch.linalg.cholesky(covariance.double())
            inverse[start : start + step] = torch.cholesky_inverse(factor).float()
        self.inverse_covariance_ = inverse
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.mean_ is None or self.inverse_covariance_ is None:
            raise NotFittedError("PaDiM.predict() called before fit()")
        embeddings, grid = self._embeddings(samples, "PaDiM predict")
        distances = mahalanobis_distances(embeddings, self.mean_, self.inverse_covariance_)
        maps = self._maps(distances.reshape(-1, *grid), samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
