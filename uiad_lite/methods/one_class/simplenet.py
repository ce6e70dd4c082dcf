"""SimpleNet (Liu et al. 2023, "SimpleNet: A Simple Network for Image Anomaly Detection and Localization").

A one-class classifier in feature space. Normal patch features ``f`` of a frozen ImageNet backbone
(layers 2+3, PatchCore's 3x3 aggregation and adaptive pooling) go through a linear *feature adaptor*
``q = G(f)`` (Sec. 3.2); anomalous features are made by adding Gaussian noise in that space,
``q~ = q + eps``, ``eps ~ N(0, sigma^2 I)`` with sigma = 0.015 (Sec. 3.3; :func:`gaussian_feature_noise`
of :mod:`uiad_lite.simulation`); a two-layer *discriminator* ``D`` scores normality and is trained with
the truncated L1 loss (Eq. 5-6)

    l = max(0, th - D(q)) + max(0, th + D(q~)),     th = 0.5,

averaged over the normal and over the noisy features separately and summed, exactly as the released
code (github.com/DonaldRR/SimpleNet, ``simplenet.py``: ``clip(-true + th, 0).mean() + clip(fake + th,
0).mean()``, ``--dsc_margin 0.5``). Adaptor and discriminator train together on that one loss. Test
time: the anomaly score of a patch is ``-D(G(f))``, the map is that grid upsampled and smoothed
(sigma 4 px), the image score the largest patch score (released ``PatchMaker.score``).

Settings, paper / released: WideResNet-50 layers 2+3, 288 px (images resized to 329 and centre-cropped
in the released MVTec loader), ``pretrain_dim`` = ``target_dim`` = 1536, 1024 hidden units, 8 images
per batch, 40 x 4 = 160 epochs, discriminator Adam lr 2e-4 with weight decay 1e-5. The adaptor: the
paper states Adam at 1e-4, which is what ``adaptor_lr`` gives; the released code uses AdamW at a tenth
of its ``--lr``. Where we depart: the released training loop evaluates on the *test set* after every
four epochs and keeps the best checkpoint; we keep the last one (a detector must not see test labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.one_class.discriminator import FeatureDiscriminatorDetector
from uiad_lite.simulation import gaussian_feature_noise


def truncated_l1_loss(
    true_scores: torch.Tensor, fake_scores: torch.Tensor, margin: float = 0.5
) -> torch.Tensor:
    """SimpleNet's loss: mean(max(0, margin - D(q))) + mean(max(0, margin + D(q~))).

    ``true_scores`` are the discriminator's outputs on adapted normal features, ``fake_scores`` on the
    noisy ones (higher = more normal). A normal feature scored above ``margin`` and a noisy one below
    ``-margin`` cost nothing: the loss stops pushing once a feature is on the right side of the margin.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be non-negative, got {margin!r}")
    return torch.clamp(margin - true_scores, min=0).mean() + torch.clamp(fake_scores + margin, min=0).mean()


class SimpleNet(FeatureDiscriminatorDetector):
    """SimpleNet: adaptor + discriminator on frozen patch features, Gaussian noise as anomalies.

    Args:
        backbone, layers, image_size, pretrained, device: the frozen feature extractor (layers 2+3).
        pretrain_dim, target_dim: PatchCore's adaptive-pooling embedding sizes (1536 and 1536 released).
        hidden: units of the discriminator's hidden layer (1024).
        noise_std: sigma of the Gaussian noise added to adapted features (0.015).
        margin: ``th`` of the truncated L1 loss (0.5).
        epochs, batch_size: passes over the training images, images per minibatch (160, 8).
        adaptor_lr: Adam learning rate of the adaptor (1e-4).
        discriminator_lr, discriminator_weight_decay: Adam for the discriminator (2e-4, 1e-5).
        sigma: Gaussian smoothing of the maps in pixels at the network input (4).
        seed: seeds the initialisation, the minibatch order and the noise.
    """

    name = "SimpleNet"

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 288,
        pretrain_dim: int = 1536,
        target_dim: int = 1536,
        hidden: int = 1024,
        noise_std: float = 0.015,
        margin: float = 0.5,
        epochs: int = 160,
        batch_size: int = 8,
        adaptor_lr: float = 1e-4,
        discriminator_lr: float = 2e-4,
        discriminator_weight_decay: float = 1e-5,
        sigma: float = 4.0,
        device: str = "auto",
        max_train_images: int | None = None,
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        if not noise_std > 0:
            raise ValueError(f"noise_std must be positive, got {noise_std!r}")
        if not margin >= 0:
            raise ValueError(f"margin must be non-negative, got {margin!r}")
        if not discriminator_weight_decay >= 0:
            raise ValueError(
                f"discriminator_weight_decay must be non-negative, got {discriminator_weight_decay!r}"
            )
        super().__init__(
            backbone, layers, image_size, pretrain_dim, target_dim, hidden, epochs, batch_size, adaptor_lr,
            discriminator_lr, sigma, device, seed, pretrained, progress, max_train_images,
        )  # fmt: skip
        self.noise_std = float(noise_std)
        self.margin = float(margin)
        self.discriminator_weight_decay = float(discriminator_weight_decay)

    def _build(self, channels: int) -> None:
        super()._build(channels)
        self._adaptor_opt = torch.optim.Adam(self.adaptor_.parameters(), lr=self.adaptor_lr)
        self._discriminator_opt = torch.optim.Adam(
            self.discriminator_.parameters(),
            lr=self.discriminator_lr,
            weight_decay=self.discriminator_weight_decay,
        )

    def _train_step(
        self, batch: np.ndarray, normal: torch.Tensor, epoch: int, rng: np.random.Generator
    ) -> float:
        true = self.adaptor_(self.rows(normal[torch.from_numpy(batch).to(normal.device)]))
        noisy, _ = gaussian_feature_noise(true.detach(), rng, sigma=self.noise_std)
        fake = true + (noisy - true.detach())  # q~ = G(f) + eps; the adaptor gets the gradient of both terms
        scores = self.discriminator_(torch.cat([true, fake]))
        loss = truncated_l1_loss(scores[: len(true)], scores[len(true) :], self.margin)
        self._adaptor_opt.zero_grad()
        self._discriminator_opt.zero_grad()
        loss.backward()
        self._adaptor_opt.step()
        self._discriminator_opt.step()
        return float(loss.detach())

    def _patch_scores(self, adapted: torch.Tensor) -> torch.Tensor:
        return -self.discriminator_(adapted)  # D scores normality; the anomaly score is its negative
