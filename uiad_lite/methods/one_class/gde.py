"""Gaussian density estimator (GDE) on embeddings, as CutPaste scores images and patches.

CutPaste (Li et al. 2021, Sec. 3.3, following Rippel et al. 2020 and Sohn et al. 2021) fits one
multivariate Gaussian to the embeddings of the normal training images and scores a test embedding by
how unlikely it is under it:

    log p(x) = -1/2 [ d log(2 pi) + log det S + (x - mu)^T S^{-1} (x - mu) ].

Embeddings are L2-normalised first and the covariance is shrunk towards a scaled identity with the
Ledoit-Wolf estimate (``sklearn.covariance.LedoitWolf``), as the released and the widely used PyTorch
re-implementations do: with a few hundred normal images and a few hundred dimensions the sample
covariance alone is singular. The anomaly score is the squared Mahalanobis distance
``(x - mu)^T S^{-1} (x - mu)``, which orders samples exactly as ``-log p(x)`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import LedoitWolf


def _as_matrix(embeddings: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().cpu().numpy()
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, d) array, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return matrix


class GaussianDensity:
    """Mean and (Ledoit-Wolf shrunk) covariance of (N, d) embeddings; scores by Mahalanobis distance.

    Args:
        normalise: L2-normalise every embedding before fitting and scoring (CutPaste: True).
        shrinkage: "ledoit_wolf" (released), or a float in [0, 1] blending the sample covariance with
            ``trace(S)/d * I`` (0 = the plain sample covariance, which needs N > d).
    """

    def __init__(self, normalise: bool = True, shrinkage: str | float = "ledoit_wolf") -> None:
        if not (shrinkage == "ledoit_wolf" or (isinstance(shrinkage, int | float) and 0 <= shrinkage <= 1)):
            raise ValueError(f"shrinkage must be 'ledoit_wolf' or a number in [0, 1], got {shrinkage!r}")
        self.normalise = bool(normalise)
        self.shrinkage = shrinkage
        self.mean_: np.ndarray | None = None
        self.covariance_: np.ndarray | None = None
        self.precision_: np.ndarray | None = None
        self.log_det_: float | None = None

    def _prepare(self, embeddings: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
        matrix = _as_matrix(embeddings, name)
        if self.normalise:
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix

    def fit(self, embeddings: np.ndarray | torch.Tensor) -> GaussianDensity:
        matrix = self._prepare(embeddings, "embeddings")
        if len(matrix) < 2:
            raise ValueError(f"a Gaussian needs at least two embeddings, got {len(matrix)}")
        self.mean_ = matrix.mean(axis=0)
        if self.shrinkage == "ledoit_wolf":
            covariance = LedoitWolf(assume_centered=False).fit(matrix).covariance_
        else:
            sample = np.cov(matrix, rowvar=False, bias=True).reshape(matrix.shape[1], matrix.shape[1])
            target = np.trace(sample) / len(sample) * np.eye(len(sample))
            covariance = (1 - self.shrinkage) * sample + self.shrinkage * target
        sign, log_det = np.linalg.slogdet(covariance)
        if sign <= 0 or np.linalg.cond(covariance) > 1e12:
            raise ValueError(
                f"the covariance of {len(matrix)} embeddings in {matrix.shape[1]} dimensions is "
                "singular; use shrinkage='ledoit_wolf' or more training images"
            )
        self.covariance_, self.log_det_ = covariance, float(log_det)
        self.precision_ = np.linalg.inv(covariance)
        return self

    def mahalanobis(self, embeddings: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N,) squared Mahalanobis distances to the fitted Gaussian (the anomaly scores)."""
        if self.mean_ is None:
            raise RuntimeError("GaussianDensity used before fit()")
        centred = self._prepare(embeddings, "embeddings") - self.mean_
        if centred.shape[1] != len(self.mean_):
            raise ValueError(f"embeddings have {centred.shape[1]} dimensions, the Gaussian {len(self.mean_)}")
        return np.einsum("nd,de,ne->n", centred, self.precision_, centred)

    def log_density(self, embeddings: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N,) log p(x) of the (normalised) embeddings under the fitted Gaussian."""
        distances = self.mahalanobis(embeddings)
        return -0.5 * (len(self.mean_) * np.log(2 * np.pi) + self.log_det_ + distances)
