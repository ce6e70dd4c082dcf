"""CFA (Lee et al. 2022): coupled-hypersphere feature adaptation with a compact centroid memory.

PaDiM and PatchCore keep the ImageNet features as they are and only change how the normal ones are
summarised. CFA *adapts the features to the target data*: a small trainable patch descriptor (a 1×1
CoordConv) is fitted so that normal patches fall inside small hyperspheres around a compact memory of
centroids (one per grid position), which corrects the ImageNet bias and keeps the bank as small as
the grid. It is the memory-bank method with a training loop.

Reference code: sungwool/CFA_for_anomaly_localization (``utils/cfa.py``, ``trainer_cfa.py``). As
released, the radius r is a trainable parameter (``nn.Parameter``, initial value 1e-5) optimised
with the descriptor by AdamW (AMSGrad, lr 1e-3, weight decay 5e-4), and the loss is scaled by
1/nu with nu = 1e-3; the default here does the same (``learn_radius=True``). With r fixed at 1e-5
(``learn_radius=False``, anomalib's choice) the repulsion term can never be positive (see
:func:`coupled_hypersphere_loss`); with r learned it switches on once r² exceeds alpha.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector


class CoordConvDescriptor(nn.Module):
    """CFA's patch descriptor: a 1×1 convolution over the features plus two coordinate channels
    (CoordConv, Liu et al. 2018), so the adapted feature knows where on the grid it sits."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels + 2, out_channels, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = features.shape
        ys = torch.linspace(-1, 1, height, device=features.device).view(1, 1, height, 1)
        xs = torch.linspace(-1, 1, width, device=features.device).view(1, 1, 1, width)
        coordinates = [ys.expand(batch, 1, height, width), xs.expand(batch, 1, height, width)]
        return self.projection(torch.cat([features, *coordinates], dim=1))


def coupled_hypersphere_loss(
    squared_distances: torch.Tensor,
    num_nearest: int,
    num_hard_negatives: int,
    radius: float | torch.Tensor,
    margin: float,
    nu: float = 1.0,
) -> torch.Tensor:
    """CFA's soft-boundary loss L_CFA = (L_att + L_rep) / nu (Lee et al. 2022; nu = 1e-3 in the code).

    squared_distances: (P, M) squared distances of P adapted patch features to M memory centroids.
    L_att pulls each feature inside the hypersphere of radius r around its K nearest centroids,
    L_rep pushes the next J centroids (hard negatives) beyond r² + alpha:

        L_att = mean_{t, k<=K} max(0, D(p_t, c^k) - r²)
        L_rep = mean_{t, K<j<=K+J} max(0, r² - D(p_t, c^j) - alpha)

    ``radius`` may be a tensor that requires grad (the released code learns it).
    """
    nearest = squared_distances.topk(num_nearest + num_hard_negatives, dim=1, largest=False).values
    attraction = F.relu(nearest[:, :num_nearest] - radius**2).mean()
    repulsion = F.relu(radius**2 - nearest[:, num_nearest:] - margin).mean() if num_hard_negatives else 0.0
    return (attraction + repulsion) / nu


def squared_distances(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(P, d) x (M, d) -> (P, M) squared Euclidean distances (differentiable, clamped at 0)."""
    return (
        features.pow(2).sum(1, keepdim=True) - 2 * features @ centroids.T + centroids.pow(2).sum(1)[None]
    ).clamp_min(0)


class CFA(PatchFeatureDetector):
    """CFA: adapted patch features scored against one centroid per grid position.

    1. Patch features: stages 1-3 (ResNet "layer1..3"), 3×3 average pooling (padding counted, as in
       the authors' ``F.avg_pool2d(o, 3, 1, 1)``), bilinear resize, concatenation.
    2. A CoordConv 1×1 descriptor maps them to d/``gamma_d`` channels (randomly initialised, seeded).
    3. Memory: the descriptor's output averaged over the training images at each grid position;
       ``gamma_c`` > 1 compresses it to (h·w)/gamma_c centroids by k-means.
    4. Training (centroids fixed, backbone frozen so its features are computed once): AdamW with
       AMSGrad on :func:`coupled_hypersphere_loss`, K = ``num_nearest`` = 3, J = ``num_hard_negatives``
       = 3, alpha = ``margin`` = 0.1, nu = 1e-3, r starting at ``radius`` = 1e-5 and trained with the
       descriptor when ``learn_radius`` (the authors' code), fixed otherwise (anomalib).
    5. Score of a patch: softmin(d_1..d_K)_1 · d_1 over the K nearest centroid distances; map
       upsampled, smoothed (sigma 4); image score = map maximum (the authors' ``cal_img_roc``).
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
        learn_radius: bool = True,
        margin: float = 0.1,
        nu: float = 1e-3,
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
        if nu <= 0:
            raise ValueError(f"nu must be positive, got {nu}")
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, batch_size, progress,
            neighbourhood=3, upsample_mode="bilinear",
        )  # fmt: skip
        self.gamma_c, self.gamma_d = gamma_c, gamma_d
        self.num_nearest, self.num_hard_negatives = num_nearest, num_hard_negatives
        self.radius, self.learn_radius, self.margin, self.nu = radius, learn_radius, margin, nu
        self.epochs, self.learning_rate, self.weight_decay = epochs, learning_rate, weight_decay
        self.images_per_step = images_per_step
        self.sigma = sigma
        self.descriptor_: CoordConvDescriptor | None = None
        self.centroids_: torch.Tensor | None = None
        self.radius_: float | None = None
        self.loss_history_: list[float] = []
        self.radius_history_: list[float] = []

    def _adapted(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) backbone patch features -> (N·h·w, d') adapted features."""
        assert self.descriptor_ is not None
        adapted = self.descriptor_(features)
        return adapted.permute(0, 2, 3, 1).reshape(-1, adapted.shape[1])

    def _init_memory(self, features: torch.Tensor) -> torch.Tensor:
        _, _, height, width = features.shape
        with torch.no_grad():  # mean adapted feature per position
            memory = self.descriptor_(features).mean(dim=0).permute(1, 2, 0).reshape(height * width, -1)
        if self.gamma_c > 1:
            from sklearn.cluster import KMeans

            kmeans = KMeans(n_clusters=(height * width) // self.gamma_c, n_init=1, random_state=self.seed)
            centres = kmeans.fit(memory.cpu().numpy()).cluster_centers_
            memory = torch.from_numpy(centres.astype(np.float32)).to(features.device)
        return memory.contiguous()

    def fit(self, samples: Sequence[Sample]) -> CFA:
        features = self._features(samples, "CFA features")  # (N, C, h, w), frozen
        count, channels, height, width = features.shape
        needed = self.num_nearest + self.num_hard_negatives
        if (height * width) // self.gamma_c < needed:
            raise ValueError(
                f"CFA memory has {(height * width) // self.gamma_c} centroids, fewer than K + J = {needed}; "
                f"use a larger image_size or a smaller gamma_c"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            descriptor = CoordConvDescriptor(channels, channels // self.gamma_d).to(features.device)
        self.descriptor_ = descriptor
        self.centroids_ = self._init_memory(features)
        radius = nn.Parameter(torch.tensor(float(self.radius), device=features.device))
        parameters = [*descriptor.parameters(), *([radius] if self.learn_radius else [])]
        optimiser = torch.optim.AdamW(  # the authors' settings, AMSGrad included
            parameters, lr=self.learning_rate, weight_decay=self.weight_decay, amsgrad=True
        )
        rng = np.random.default_rng(self.seed)
        self.loss_history_, self.radius_history_ = [], []
        descriptor.train()
        for _ in tqdm(range(self.epochs), desc="CFA training", disable=not self.progress, leave=False):
            epoch_loss = 0.0
            order = rng.permutation(count)
            for start in range(0, count, self.images_per_step):
                batch = features[
                    torch.from_numpy(order[start : start + self.images_per_step]).to(features.device)
                ]
                loss = coupled_hypersphere_loss(
                    squared_distances(self._adapted(batch), self.centroids_), self.num_nearest,
                    self.num_hard_negatives, radius, self.margin, self.nu,
                )  # fmt: skip
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(batch)
            self.loss_history_.append(epoch_loss / count)
            self.radius_history_.append(abs(float(radius.detach())))
        self.radius_ = abs(float(radius.detach()))  # the loss only sees r², so its sign is arbitrary
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
            nearest = squared_distances(adapted, self.centroids_).topk(self.num_nearest, dim=1, largest=False)
            distances = nearest.values.sqrt()
            patch_scores.append(F.softmin(distances, dim=1)[:, 0] * distances[:, 0])
        scores = torch.cat(patch_scores).reshape(count, height, width)
        maps = self._maps(scores, samples)
        return Prediction(scores=maps.reshape(count, -1).max(axis=1), maps=maps)
