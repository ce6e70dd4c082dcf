"""What SimpleNet and GLASS share: frozen patch features, a feature adaptor, a patch discriminator.

Both methods (Liu et al. 2023; Chen et al. 2024, whose released code starts from SimpleNet's) read a
frozen ImageNet backbone the PatchCore way (layers 2+3, zero-padded 3x3 patches, per-stage adaptive
average pooling to ``pretrain_dim`` values, then to ``target_dim``: :class:`PatchCoreFeatures`), pass
every patch feature through a trainable *feature adaptor* ``G`` (one linear layer, Xavier-normal
initialisation, as the released ``Projection`` with ``pre_proj=1``) and train a *discriminator* ``D``
(``Linear -> BatchNorm1d -> LeakyReLU(0.2) -> Linear(1, no bias)``, the released ``Discriminator``
with ``dsc_layers=2``) to tell adapted normal features from synthetic anomalous ones. They differ in
how the anomalous features are made and in the loss; that lives in ``simplenet.py`` and ``glass.py``.

:class:`FeatureDiscriminatorDetector` holds the plumbing: the frozen features of the training images
are extracted once (the backbone never trains, so every epoch sees the same normal features),
minibatches are whole images as in the released data loaders, and ``predict`` upsamples the patch
scores to the network input, smooths them (sigma 4 px, the released ``RescaleSegmentor``) and resizes
them to the masks' resolution. Every image is resized to ``image_size`` first, at fit and predict time
alike, so test images of another size get the same grid. Subclasses implement ``_train_step`` and
``_patch_scores``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector, output_size
from uiad_lite.methods.memory_bank.patchcore import PatchCoreFeatures
from uiad_lite.methods.one_class.simulation_trained import _one_thread


def _xavier(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)


class FeatureAdaptor(nn.Module):
    """SimpleNet's feature adaptor: one fully connected layer ``G(f) = W f + b`` (Sec. 3.2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layer = nn.Linear(channels, channels)
        self.apply(_xavier)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.layer(rows)


class Discriminator(nn.Module):
    """SimpleNet's two-layer patch discriminator: (M, C) features -> (M,) raw scores."""

    def __init__(self, channels: int, hidden: int = 1024) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2))
        self.tail = nn.Linear(hidden, 1, bias=False)
        self.apply(_xavier)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(rows))[:, 0]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class FeatureDiscriminatorDetector(PatchFeatureDetector):
    """Base class (not a method): features, adaptor + discriminator, the epoch loop, maps.

    Subclasses set ``name`` and implement ``_train_step(rows, batch_index, epoch, rng)`` (one optimiser
    step on the (B*h*w, C) frozen features of a minibatch of images; returns the loss) and
    ``_patch_scores(rows)`` (anomaly scores of adapted rows, higher = more anomalous).
    """

    name = "feature discriminator"
    default_layers = (2, 3)

    def __init__(
        self, backbone: str | Backbone, layers: Sequence[int | str] | None, image_size: int,
        pretrain_dim: int, target_dim: int, hidden: int, epochs: int, batch_size: int,
        adaptor_lr: float, discriminator_lr: float, sigma: float, device: str, seed: int,
        pretrained: bool, progress: bool, max_train_images: int | None = None,
    ) -> None:  # fmt: skip
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.hidden = _positive_int("hidden", hidden)
        for label, value in (("adaptor_lr", adaptor_lr), ("discriminator_lr", discriminator_lr)):
            if not value > 0:
                raise ValueError(f"{label} must be positive, got {value!r}")
        if sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {sigma!r}")
        if max_train_images is not None:
            _positive_int("max_train_images", max_train_images)
        self.max_train_images = max_train_images
        super().__init__(
            backbone, layers, image_size, device, seed, pretrained, 16, progress, neighbourhood=3,
            upsample_mode="bilinear", embedding="adaptive_pool", pretrain_dim=pretrain_dim,
            target_dim=target_dim,
        )  # fmt: skip
        self.pretrain_dim, self.target_dim = int(pretrain_dim), int(target_dim)
        self.adaptor_lr, self.discriminator_lr = float(adaptor_lr), float(discriminator_lr)
        self.sigma = float(sigma)
        self.adaptor_: FeatureAdaptor | None = None
        self.discriminator_: Discriminator | None = None
        self.loss_history_: list[float] = []

    def _make_extractor(self, **options: Any) -> PatchCoreFeatures:
        return PatchCoreFeatures(self.backbone, **options)

    @staticmethod
    def rows(features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N*h*w, C), image by image, row-major over the grid."""
        return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])

    def _build(self, channels: int) -> None:
        torch.manual_seed(self.seed)
        self.adaptor_ = FeatureAdaptor(channels).to(self.device)
        self.discriminator_ = Discriminator(channels, self.hidden).to(self.device)

    def _prepare(self, samples: Sequence[Sample], normal: torch.Tensor, rng: np.random.Generator) -> None:
        """Hook run once before the epochs (GLASS simulates its local anomalies here)."""

    def _train_step(self, batch: np.ndarray, normal: torch.Tensor, epoch: int,
                    rng: np.random.Generator) -> float:  # fmt: skip
        raise NotImplementedError

    def _patch_scores(self, adapted: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fit(self, samples: Sequence[Sample]) -> FeatureDiscriminatorDetector:
        """Extract the frozen features of the normal ``samples`` once (at most ``max_train_images`` of them,
        evenly spaced), then train adaptor and discriminator for ``epochs`` passes over the images in
        shuffled minibatches of ``batch_size`` images."""
        samples = list(samples)
        if not samples:
            raise ValueError(f"{type(self).__name__}.fit needs at least one normal sample")
        if self.max_train_images is not None and len(samples) > self.max_train_images:
            keep = np.linspace(0, len(samples) - 1, self.max_train_images).round().astype(int)
            samples = [samples[i] for i in keep]
        normal = self._features(samples, f"{self.name} features")  # (N, C, h, w), frozen
        rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]), _one_thread():
            self._build(normal.shape[1])
            self._prepare(samples, normal, rng)
            self.adaptor_.train()
            self.discriminator_.train()
            self.loss_history_ = []
            for epoch in tqdm(range(self.epochs), desc=self.name, disable=not self.progress, leave=False):
                order = rng.permutation(len(samples))
                losses = [self._train_step(order[start : start + self.batch_size], normal, epoch, rng)
                          for start in range(0, len(order), self.batch_size)]  # fmt: skip
                self.loss_history_.append(float(np.mean(losses)))
        self.adaptor_.eval()
        self.discriminator_.eval()
        return self

    @torch.no_grad()
    def patch_scores(self, samples: Sequence[Sample]) -> torch.Tensor:
        """(N, h, w) anomaly scores on the feature grid, before upsampling and smoothing."""
        if self.discriminator_ is None:
            raise NotFittedError(f"{type(self).__name__}.predict() called before fit()")
        features = self._features(list(samples), f"{self.name} predict")
        with _one_thread():
            scores = self._patch_scores(self.adaptor_(self.rows(features)))
        return scores.reshape(len(features), *features.shape[-2:])

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        """Maps = patch scores upsampled, smoothed and resized; image score = the largest patch score
        (before smoothing, as the released ``PatchMaker.score``)."""
        if self.discriminator_ is None:
            raise NotFittedError(f"{type(self).__name__}.predict() called before fit()")
        samples = list(samples)
        output_size(samples)  # one mask size for all, checked before the forward passes
        grid = self.patch_scores(samples)
        return Prediction(
            scores=grid.flatten(1).max(dim=1).values.cpu().numpy(), maps=self._maps(grid, samples)
        )
