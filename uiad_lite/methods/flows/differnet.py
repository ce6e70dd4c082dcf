"""DifferNet (Rudolph et al. 2021): an image-level flow on multi-scale pooled features.

Each image gives one vector y: the frozen backbone's chosen stages, each averaged over its grid, at
three input scales (s, s/2, s/4), concatenated. A flow maps y to z; the anomaly score is the negative
log-likelihood averaged over T transformations of the test image (paper Eq. 6); localisation is the
gradient of that likelihood with respect to the input pixels (paper Sec. 3.4). Reference code:
marco-rudolph/differnet (``model.py``, ``train.py``, ``freia_funcs.py``, ``config.py``), matched:

* features: AlexNet's last convolutional features averaged (``torch.mean(feat, dim=(2, 3))``) at
  3 scales of a 448 px input. Here: the frozen backbone of this package (AlexNet is not among its
  offline weights), same pooling and scales; the paper preset uses WideResNet-50's layer3;
* flow: 8 GLOW couplings (both halves transformed, ``clamp_alpha`` = 3 with the atan soft clamp, a
  fully connected subnet with ``fc_internal`` = 2048 hidden units, no 0.1 output scaling), each
  followed by a fixed random permutation; one GLOW coupling here = two half couplings separated by a
  fixed permutation. One departure: each subnet's last layer starts at zero, so the flow starts as the
  identity; with PyTorch's default initialisation (the released one) the first losses here reached 1e19
  on pooled features of the small backbone before coming down;
* loss = mean(0.5 · sum z² − log|det|) / D; Adam lr 2e-4, betas (0.8, 0.8), eps 1e-4, weight decay 1e-5;
  24 × 8 epochs; 4 transforms per training image, 64 at test (random rotations);
* score: the released code scores by mean(z²) over transforms and dimensions (``score="released"``,
  the default); the paper's Eq. 6, the mean of −log p(y) over transforms including log|det|, is
  ``score="paper"``.

The cache lever: the features of a fixed draw of ``train_transforms`` transformations per training
image are computed once and every epoch reads them (the released code redraws them each epoch).
Gradient maps: |G * dL/dx_c| summed over colour channels (G a Gaussian of ``sigma`` px), averaged over
``map_transforms`` transformations (paper Sec. 3.4; the blur width is not given there).
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
from uiad_lite.features.backbones import Backbone, images_to_tensor
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.flows.coupling import AffineCoupling, FixedPermutation, FlowSequence
from uiad_lite.methods.flows.flow_detector import FlowDetector


def rotate(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate (B, 3, S, S) images by ``angle`` degrees about the centre (exact for multiples of 90,
    bilinear with zero fill otherwise, as torchvision's ``RandomRotation``); differentiable."""
    if angle % 90 == 0:
        return torch.rot90(images, k=int(angle // 90) % 4, dims=(2, 3))
    radians = math.radians(angle)
    cos, sin = math.cos(radians), math.sin(radians)
    theta = images.new_tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(len(images), 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _subnet(hidden: int, dropout: float):
    def build(c_in: int, c_out: int) -> nn.Module:
        last = nn.Linear(hidden, c_out)
        nn.init.zeros_(last.weight)  # the flow starts as the identity (see the module's docstring)
        nn.init.zeros_(last.bias)
        return nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Dropout(dropout), last)

    return build


class DifferNet(FlowDetector):
    """DifferNet: one likelihood per image from multi-scale pooled features; gradient maps."""

    default_layers = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 448,
        scales: Sequence[float] = (1.0, 0.5, 0.25),
        coupling_blocks: int = 8,
        hidden: int = 2048,
        clamp: float = 3.0,
        dropout: float = 0.0,
        rotations: str = "random",
        train_transforms: int = 4,
        test_transforms: int = 64,
        map_transforms: int = 1,
        score: str = "released",
        epochs: int = 192,
        learning_rate: float = 2e-4,
        images_per_step: int = 24,
        sigma: float = 4.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if rotations not in ("right", "random"):
            raise ValueError(f"rotations must be 'right' (0/90/180/270) or 'random', got {rotations!r}")
        if score not in ("released", "paper"):
            raise ValueError(f"score must be 'released' (mean z²) or 'paper' (mean −log p), got {score!r}")
        if min(train_transforms, test_transforms, coupling_blocks, images_per_step) < 1 or map_transforms < 0:
            raise ValueError("transform counts, coupling_blocks and images_per_step must be >= 1")
        super().__init__(backbone, layers, image_size, device, seed, pretrained, batch_size, progress)
        self.scales, self.coupling_blocks, self.hidden = tuple(scales), coupling_blocks, hidden
        self.clamp, self.dropout, self.rotations = clamp, dropout, rotations
        self.train_transforms, self.test_transforms = train_transforms, test_transforms
        self.map_transforms, self.score = map_transforms, score
        self.epochs, self.learning_rate, self.images_per_step = epochs, learning_rate, images_per_step
        self.sigma, self.batch_size = sigma, int(batch_size)
        self.flow_: FlowSequence | None = None

    def _angles(self, count: int, rng: np.random.Generator) -> list[float]:
        if self.rotations == "right":
            return [90.0 * (k % 4) for k in range(count)]
        return [0.0] + [float(a) for a in rng.uniform(0, 360, count - 1)]

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] -> (B, D) multi-scale pooled features (differentiable)."""
        pooled = []
        for scale in self.scales:
            size = max(32, round(self.image_size * scale))
            scaled = images if size == images.shape[-1] else F.interpolate(images, size=size, mode="bilinear")
            pooled += [stage.mean(dim=(2, 3)) for stage in self.backbone(scaled)]
        return torch.cat(pooled, dim=1)

    def _images(self, samples: Sequence[Sample]) -> torch.Tensor:
        for sample in samples:
            sample.require("image")
        return images_to_tensor([np.asarray(s.image) for s in samples], self.image_size).to(self.device)

    @torch.no_grad()
    def _embeddings(self, samples: Sequence[Sample], angles: Sequence[float], desc: str) -> torch.Tensor:
        """(N, T, D): features of every sample under every rotation."""
        chunks = []
        for start in tqdm(
            range(0, len(samples), self.batch_size), desc=desc, disable=not self.progress, leave=False
        ):
            images = self._images(samples[start : start + self.batch_size])
            chunks.append(torch.stack([self.embed(rotate(images, a)) for a in angles], dim=1))
        features = torch.cat(chunks)
        return self._check_finite(features, "DifferNet backbone features")

    def _negative_log_likelihood(self, z: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
        return 0.5 * (z**2).sum(1) - log_det  # up to the constant D/2 log 2π

    def fit(self, samples: Sequence[Sample]) -> DifferNet:
        if len(samples) == 0:
            raise ValueError("DifferNet needs at least one sample")
        rng = self._generator()
        angles = self._angles(self.train_transforms, rng)
        features = self._embeddings(samples, angles, "DifferNet features").flatten(0, 1)  # (N·T, D)
        dim = features.shape[1]
        layers = []
        for block in range(2 * self.coupling_blocks):
            layers += [
                AffineCoupling(
                    dim,
                    _subnet(self.hidden, self.dropout),
                    clamp=self.clamp,
                    clamp_mode="atan",
                    scale_outputs=False,
                ),
                FixedPermutation(dim, seed=self.seed + block),
            ]
        flow = FlowSequence(layers, name="DifferNet flow").to(self.device)
        optimiser = torch.optim.Adam(
            flow.parameters(), lr=self.learning_rate, betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5
        )
        self.loss_history_ = []
        flow.train()
        for _ in tqdm(range(self.epochs), desc="DifferNet training", disable=not self.progress, leave=False):
            order = torch.from_numpy(rng.permutation(len(features))).to(self.device)
            total = 0.0
            for start in range(0, len(features), self.images_per_step):
                batch = features[order[start : start + self.images_per_step]]
                loss = self._negative_log_likelihood(*flow(batch)).mean() / dim
                self._check_finite(loss.detach(), "DifferNet training loss")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            self.loss_history_.append(total / len(features))
        self.flow_ = flow.eval()
        return self

    def _image_scores(self, features: torch.Tensor) -> torch.Tensor:
        count, transforms, dim = features.shape
        with torch.no_grad():
            z, log_det = self.flow_(features.flatten(0, 1))
        if self.score == "released":
            return (z**2).reshape(count, transforms, dim).mean(dim=(1, 2))
        nll = self._negative_log_likelihood(z, log_det) + 0.5 * dim * math.log(2 * math.pi)
        return nll.reshape(count, transforms).mean(1)

    def gradient_maps(self, samples: Sequence[Sample]) -> torch.Tensor:
        """(N, S, S): sum_c |G * d(−log p)/dx_c| averaged over ``map_transforms`` rotations (paper 3.4)."""
        self._check_fitted(self.flow_)
        angles = self._angles(max(1, self.map_transforms), np.random.default_rng(self.seed + 1))
        maps = []
        for start in range(0, len(samples), self.batch_size):
            images = self._images(samples[start : start + self.batch_size]).requires_grad_(True)
            total = torch.zeros(len(images), *images.shape[-2:], device=self.device)
            for angle in angles:
                loss = self._negative_log_likelihood(*self.flow_(self.embed(rotate(images, angle)))).sum()
                (gradient,) = torch.autograd.grad(loss, images)
                blurred = gradient.detach().cpu().numpy()
                if self.sigma > 0:
                    blurred = gaussian_filter(blurred, sigma=(0, 0, self.sigma, self.sigma), mode="reflect")
                total += torch.from_numpy(np.abs(blurred).sum(axis=1)).to(self.device)
            maps.append(total / len(angles))
        return self._check_finite(torch.cat(maps), "DifferNet gradient map")

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        self._check_fitted(self.flow_)
        angles = self._angles(self.test_transforms, np.random.default_rng(self.seed + 2))
        scores = self._image_scores(self._embeddings(samples, angles, "DifferNet predict"))
        scores = self._check_finite(scores, "DifferNet image score").cpu().numpy()
        if self.map_transforms == 0:
            return Prediction(scores=scores)
        sigma, self.sigma = self.sigma, 0.0  # the gradients are blurred already
        try:
            maps = self._maps(self.gradient_maps(samples), samples)
        finally:
            self.sigma = sigma
        return Prediction(scores=scores, maps=maps)
