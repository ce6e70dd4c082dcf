"""GLASS (Chen et al. 2024, "A Unified Anomaly Synthesis Strategy with Gradient Ascent for Industrial
Anomaly Detection and Localization").

GLASS keeps SimpleNet's frozen patch features, linear adaptor ``G`` and two-layer discriminator ``D``
(here ``D`` outputs the probability of *anomalous*, sigmoid of a logit) and trains ``D`` on two kinds of
synthetic anomalies at once:

* **global anomaly synthesis (GAS)**, in feature space: start from SimpleNet's ``g = q + eps``
  (``q = G(f)``, ``eps ~ N(0, 0.015^2 I)``), then climb ``D``'s loss for calling ``g`` anomalous for
  ``gas_steps`` steps of fixed length along the normalised gradient, which moves ``g`` towards what
  ``D`` still accepts as normal; after every fifth step the offset ``g - q`` is projected onto the shell
  ``r <= ||g - q|| <= 2r`` (the released "manifold" branch, r = 0.5): near-miss anomalies close to
  the normal features, never on them. That is :func:`uiad_lite.simulation.gradient_guided_noise`;
  its forward passes see the normal rows too, so batch normalisation normalises the same batch as in
  the released loop. Normal and GAS features enter a binary cross-entropy, ``BCE(D(q), 0) +
  BCE(D(g), 1)``.
* **local anomaly synthesis (LAS)**, in image space: a Perlin-shaped texture blend (DRÆM's recipe,
  ``local_simulation="draem"`` of :data:`uiad_lite.simulation.SIMULATIONS`) is painted on the normal
  image; its patch features are labelled by the mask (a cell is anomalous when the mask covers at
  least half of it) and enter a focal loss (gamma 2) on the hardest half of the cells (``hard_fraction``
  = 0.5: the cells whose ``(D - label)^2`` is at or above its median), as released.

The loss is the sum. Test time: the patch score is ``D``'s probability, the map that grid upsampled and
smoothed (sigma 4 px), the image score the largest patch score.

Released code (github.com/cqylunlun/GLASS, ``glass.py``, ``shell/run-mvtec.sh``): WideResNet-50 layers
2+3, 288 px, 1536-d features, 1024 hidden units, 8 images per batch, 640 epochs, adaptor Adam lr 1e-4
with weight decay 1e-5, discriminator AdamW lr 2e-4, noise 0.015, 20 ascent steps of 0.001,
``p = 0.5``. Where we depart: (1) the released loop picks the checkpoint with the best *test* AUROC;
we keep the last. (2) The "hypersphere" branch (chosen per category from an image spectrum analysis,
projecting around the features' mean) is not implemented; the manifold branch is used everywhere.
(3) ``local_copies`` = k draws k simulated copies per image once and cycles through them (the
released loader draws a new one every epoch: ``local_copies=None``). (4) ``radius`` and
``step_size`` are absolute values tuned for 1536-d features and the 0.015 noise; with ``"auto"`` both
are multiplied by ``noise_std * sqrt(C) / (0.015 * sqrt(1536))``, the ratio of the expected noise
norms, so the released values come back exactly at the released setting and scale with other features.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.one_class.discriminator import FeatureDiscriminatorDetector
from uiad_lite.methods.one_class.simulation_trained import patch_targets
from uiad_lite.simulation import check_simulation, gradient_guided_noise, simulate_images

RELEASED_NOISE_NORM = 0.015 * 1536**0.5  # expected ||eps|| of the released setting


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017), mean of ``-(1 - p_t)^gamma log p_t`` over the rows."""
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    log_pt = labels * log_p + (1 - labels) * log_not_p
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


class GLASS(FeatureDiscriminatorDetector):
    """GLASS: SimpleNet's adaptor + discriminator trained on global (feature) and local (image)
    synthetic anomalies (module docstring). Arguments as :class:`~.simplenet.SimpleNet`, plus:

    Args:
        local_simulation: image-level generator for LAS, a name of :data:`uiad_lite.simulation.SIMULATIONS`.
        local_copies: simulated copies per training image drawn once (None: a new one every epoch).
        gas_steps, step_size, radius: the gradient ascent (20, 0.001, (0.5, 1.0); "auto" scales the last
            two with the noise norm). The shell projection follows every fifth step, or the last one when
            ``gas_steps`` < 5, so that it always applies.
        hard_fraction: LAS cells kept for the focal loss (the hardest ``1 - hard_fraction`` quantile).
        focal_gamma: focusing parameter of the focal loss.
    """

    name = "GLASS"

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 288,
        pretrain_dim: int = 1536,
        target_dim: int = 1536,
        hidden: int = 1024,
        noise_std: float = 0.015,
        local_simulation: str = "draem",
        local_copies: int | None = None,
        gas_steps: int = 20,
        step_size: float | str = "auto",
        radius: tuple[float, float] | str = "auto",
        hard_fraction: float = 0.5,
        focal_gamma: float = 2.0,
        epochs: int = 640,
        batch_size: int = 8,
        adaptor_lr: float = 1e-4,
        discriminator_lr: float = 2e-4,
        sigma: float = 4.0,
        device: str = "auto",
        max_train_images: int | None = None,
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        self.local_simulation = check_simulation(local_simulation)
        if not noise_std > 0:
            raise ValueError(f"noise_std must be positive, got {noise_std!r}")
        if local_copies is not None and (int(local_copies) != local_copies or local_copies < 1):
            raise ValueError(f"local_copies must be a positive integer or None, got {local_copies!r}")
        if int(gas_steps) != gas_steps or gas_steps < 0:
            raise ValueError(f"gas_steps must be a non-negative integer, got {gas_steps!r}")
        if not (step_size == "auto" or (isinstance(step_size, int | float) and step_size >= 0)):
            raise ValueError(f"step_size must be 'auto' or a non-negative number, got {step_size!r}")
        if not (radius == "auto" or (len(radius) == 2 and 0 <= radius[0] <= radius[1])):
            raise ValueError(
                f"radius must be 'auto' or (r_min, r_max) with 0 <= r_min <= r_max, got {radius!r}"
            )
        if not 0 <= hard_fraction < 1:
            raise ValueError(f"hard_fraction must be in [0, 1), got {hard_fraction!r}")
        super().__init__(
            backbone, layers, image_size, pretrain_dim, target_dim, hidden, epochs, batch_size, adaptor_lr,
            discriminator_lr, sigma, device, seed, pretrained, progress, max_train_images,
        )  # fmt: skip
        self.noise_std, self.local_copies, self.gas_steps = float(noise_std), local_copies, int(gas_steps)
        self.step_size, self.radius = step_size, radius
        self.hard_fraction, self.focal_gamma = float(hard_fraction), float(focal_gamma)
        self._local: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._samples: list[Sample] = []

    def ascent_settings(self, channels: int) -> tuple[float, tuple[float, float]]:
        """(step size, (r_min, r_max)) of the gradient ascent for ``channels``-dimensional features."""
        scale = self.noise_std * channels**0.5 / RELEASED_NOISE_NORM
        step = 0.001 * scale if self.step_size == "auto" else float(self.step_size)
        radius = (0.5 * scale, 1.0 * scale) if self.radius == "auto" else tuple(map(float, self.radius))
        return step, radius

    def _build(self, channels: int) -> None:
        super()._build(channels)
        self._adaptor_opt = torch.optim.Adam(
            self.adaptor_.parameters(), lr=self.adaptor_lr, weight_decay=1e-5
        )
        self._discriminator_opt = torch.optim.AdamW(
            self.discriminator_.parameters(), lr=self.discriminator_lr
        )

    def _simulate(
        self, indices: Sequence[int], rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (n, C, h, w) and cell labels (n, h, w) of freshly simulated copies of some samples."""
        side = (
            self.image_size
        )  # simulate at the network input: same look (Perlin scales with the image), cheaper
        images = [
            cv2.resize(self._samples[i].image, (side, side), interpolation=cv2.INTER_AREA)
            if self._samples[i].image.shape[:2] != (side, side)
            else self._samples[i].image
            for i in indices
        ]
        fakes, masks, _ = simulate_images(images, self.local_simulation, rng)
        features = self.extractor.extract_images(fakes, desc="GLASS local anomalies")
        labels = patch_targets(masks, self.image_size, tuple(features.shape[-2:]), 0.5)
        return features, torch.nan_to_num(labels, nan=0.0).to(features.device)

    def _prepare(self, samples: Sequence[Sample], normal: torch.Tensor, rng: np.random.Generator) -> None:
        self._samples = list(samples)
        if len(self._samples) < 2 and self.local_simulation in ("nsa", "mix"):
            raise ValueError(f"local_simulation {self.local_simulation!r} needs at least two training images")
        everyone = range(len(self._samples))
        self._local = [self._simulate(everyone, rng) for _ in range(self.local_copies or 0)]

    def _train_step(
        self, batch: np.ndarray, normal: torch.Tensor, epoch: int, rng: np.random.Generator
    ) -> float:
        index = torch.from_numpy(batch).to(normal.device)
        if self.local_copies is None:
            local, labels = self._simulate(batch.tolist(), rng)
        else:
            local, labels = (tensor[index] for tensor in self._local[epoch % self.local_copies])
        true = self.adaptor_(self.rows(normal[index]))
        fake = self.adaptor_(self.rows(local))
        labels = labels.reshape(-1)
        step, radius = self.ascent_settings(true.shape[1])
        anchor = true.detach()

        def beside_normal(rows: torch.Tensor) -> torch.Tensor:  # D's forward as in the released loop
            return self.discriminator_(torch.cat([anchor, rows]))[len(anchor) :]

        every = min(5, max(self.gas_steps, 1))  # released: every fifth step; fewer steps: after the last
        gas, _ = gradient_guided_noise(anchor, beside_normal, rng, sigma=self.noise_std, steps=self.gas_steps,
                                       step_size=step, radius=radius, project_every=every)  # fmt: skip
        gas = true + (gas - anchor)  # the offset is fixed; the adaptor receives the gradient through q
        logits = self.discriminator_(torch.cat([true, gas]))
        bce = F.binary_cross_entropy_with_logits(logits[: len(true)], torch.zeros_like(logits[: len(true)]))
        bce = bce + F.binary_cross_entropy_with_logits(
            logits[len(true) :], torch.ones_like(logits[len(true) :])
        )
        fake_logits = self.discriminator_(fake)
        if self.hard_fraction > 0:
            distance = (torch.sigmoid(fake_logits.detach()) - labels) ** 2
            hard = distance >= torch.quantile(distance, self.hard_fraction)
            fake_logits, labels = fake_logits[hard], labels[hard]
        loss = bce + focal_loss(fake_logits, labels, self.focal_gamma)
        self._adaptor_opt.zero_grad()
        self._discriminator_opt.zero_grad()
        loss.backward()
        self._adaptor_opt.step()
        self._discriminator_opt.step()
        return float(loss.detach())

    def _patch_scores(self, adapted: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.discriminator_(adapted))

    def fit(self, samples: Sequence[Sample]) -> GLASS:
        super().fit(samples)
        self._local, self._samples = [], []  # the simulated features are not needed at test time
        return self
