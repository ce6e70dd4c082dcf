"""A discriminative detector trained on simulated anomalies, and the experiment that compares simulations.

The anomaly-simulation family (survey Sec. 3.4, Table 9) turns one-class learning into a supervised
problem: paint fake defects onto normal images, then train a network to find them. DRÆM (Zavrtanik et
al. 2021) trains a segmentation network on Perlin-shaped texture blends; SimpleNet (Liu et al. 2023)
trains a small MLP that separates normal patch features from perturbed ones. :class:`SimulationTrainedHead`
keeps what the two share and nothing more, so that *only the simulation* changes between runs:

1. for each normal training image ``x`` draw ``k`` pseudo-anomalous copies ``(x~, M) = g(x; rng)``
   with one image-level generator ``g`` of :mod:`uiad_lite.simulation` (CutPaste, CutPaste-Scar,
   DRÆM, NSA, or a random mix of them);
2. read frozen ImageNet patch features ``phi(x)`` of normal and simulated images on an ``h x w`` grid
   (:class:`~uiad_lite.features.PatchFeatureExtractor`), standardised channel-wise with the normal
   patches' mean and standard deviation;
3. label a patch of a simulated image anomalous (1) when the simulated mask covers at least
   ``min_coverage`` of its cell, normal (0) when it covers none of it (cells in between are ignored),
   every patch of a normal image normal;
4. fit a per-patch head ``D`` (a linear layer, or SimpleNet's two-layer MLP) with the class-balanced
   binary cross-entropy
   ``L = -(1/|P|) sum_{p in P} [w_+ y_p log s(D(phi_p)) + (1 - y_p) log(1 - s(D(phi_p)))]``,
   ``w_+ = #negatives / #positives``, ``s`` the logistic function;
5. predict: the head's logits form the patch map, upsampled to the network input, smoothed by a
   Gaussian (``sigma`` px, as DRÆM and the memory-bank methods do) and resized to the mask
   resolution; the image score is the map's maximum.

The experiment that compares simulations (per defect type, across categories) lives beside this file in
:mod:`uiad_lite.methods.one_class.transfer`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.features.patch_features import PatchFeatureExtractor
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import output_size
from uiad_lite.simulation.on_samples import SIMULATION_NAMES, SIMULATIONS, check_simulation, simulate_images

__all__ = [
    "SIMULATIONS",
    "SIMULATION_NAMES",
    "CachedPatchFeatures",
    "SimulationTrainedHead",
    "cached_features",
    "check_simulation",
    "patch_targets",
    "simulate_images",
]

# ----------------------------------------------------------------------------------------------
# patch features, computed once per image content


class CachedPatchFeatures:
    """Patch features of images already seen, keyed by their pixels (so a category's normal and test
    images are read by the backbone once, however many heads are trained on them).

    ``cache(images)`` returns (N, C, h, w) on the extractor's device; ``remember=False`` computes
    without storing (for the simulated images, which are never seen twice).
    """

    def __init__(self, extractor: PatchFeatureExtractor) -> None:
        self.extractor = extractor
        self._store: dict[bytes, torch.Tensor] = {}

    @staticmethod
    def key(image: np.ndarray) -> bytes:
        array = np.ascontiguousarray(image)
        digest = hashlib.blake2b(array.tobytes(), digest_size=16)
        digest.update(repr((array.shape, array.dtype.str)).encode())
        return digest.digest()

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def __call__(
        self, images: Sequence[np.ndarray], remember: bool = True, desc: str = "features"
    ) -> torch.Tensor:
        if len(images) == 0:
            raise ValueError("no images to extract features from")
        keys = [self.key(image) for image in images]
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        fresh: dict[bytes, torch.Tensor] = {}
        if missing:
            side = self.extractor.image_size
            # area-average to the network input here (fast in OpenCV; the extractor then skips its resize)
            resized = [
                cv2.resize(images[i], (side, side), interpolation=cv2.INTER_AREA)
                if images[i].shape[:2] != (side, side)
                else images[i]
                for i in missing
            ]
            computed = self.extractor.extract_images(resized, desc=desc)
            fresh = {keys[i]: computed[j] for j, i in enumerate(missing)}
            if remember:
                self._store.update(fresh)
        return torch.stack([self._store[key] if key in self._store else fresh[key] for key in keys])


def cached_features(
    backbone: str | Backbone = "efficientnet_lite0",
    layers: Sequence[int | str] = (2, 3),
    image_size: int = 256,
    device: str = "auto",
    pretrained: bool = True,
    batch_size: int = 32,
    progress: bool = False,
) -> CachedPatchFeatures:
    """A :class:`CachedPatchFeatures` around a frozen backbone (PatchCore-style 3x3 aggregation)."""
    if not isinstance(backbone, Backbone):
        backbone = build_backbone(backbone, layers, device=device, pretrained=pretrained)
    extractor = PatchFeatureExtractor(
        backbone, image_size=image_size, batch_size=batch_size, progress=progress
    )
    return CachedPatchFeatures(extractor)


# ----------------------------------------------------------------------------------------------
# the detector


def patch_targets(
    masks: Sequence[np.ndarray], image_size: int, grid: tuple[int, int], min_coverage: float
) -> torch.Tensor:
    """(M, h, w) float targets: 1 where a mask covers >= ``min_coverage`` of a grid cell, 0 where it
    covers nothing, NaN (ignored) in between. Masks are first resized to the network input like the
    images (nearest), then averaged over each cell."""
    stacked = torch.stack([torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)) for mask in masks])
    square = F.interpolate(stacked[:, None], size=(image_size, image_size), mode="nearest")
    coverage = F.adaptive_avg_pool2d(square, grid)[:, 0]
    targets = torch.full_like(coverage, float("nan"))
    targets[coverage >= min_coverage] = 1.0
    targets[coverage == 0] = 0.0
    return targets


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread: the head's operations are tiny, and splitting each of them across
    threads costs more in synchronisation than it saves (ten times more on a busy two-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SimulationTrainedHead:
    """Per-patch discriminator on frozen features, trained on one simulation (see module docstring).

    Args:
        simulation: one of :data:`SIMULATION_NAMES` ("cutpaste", "cutpaste_scar", "draem", "nsa", "mix").
        features: a shared :class:`CachedPatchFeatures`; None builds one from ``backbone``/``layers``/
            ``image_size``/``device``/``pretrained``.
        simulated_per_image: pseudo-anomalous copies per normal image.
        max_train_images: use at most this many normal images (evenly spaced); None uses all.
        hidden: hidden width of the MLP head (SimpleNet's discriminator: 1024); 0 = a linear head.
        epochs, batch_size, learning_rate, weight_decay: Adam training of the head on all patches.
        min_coverage: fraction of a cell a simulated mask must cover for the patch to count anomalous.
        sigma: Gaussian smoothing of the map in pixels at the network input resolution.
        seed: seeds the simulation, the head's initialisation and the minibatch order.
        simulation_kwargs: passed to the generator (e.g. ``{"foreground_only": True}``).
    """

    def __init__(
        self,
        simulation: str = "draem",
        *,
        features: CachedPatchFeatures | None = None,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 256,
        device: str = "auto",
        pretrained: bool = True,
        simulated_per_image: int = 1,
        max_train_images: int | None = None,
        hidden: int = 1024,
        epochs: int = 40,
        batch_size: int = 4096,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        min_coverage: float = 0.1,
        sigma: float = 4.0,
        seed: int = 0,
        simulation_kwargs: Mapping[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        self.simulation = check_simulation(simulation)
        if simulation == "mix" and simulation_kwargs:
            raise ValueError(
                "simulation 'mix' draws among generators with different options; "
                "simulation_kwargs must be empty"
            )
        for name, value in {
            "simulated_per_image": simulated_per_image,
            "epochs": epochs,
            "batch_size": batch_size,
        }.items():
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if max_train_images is not None and max_train_images < 1:
            raise ValueError(f"max_train_images must be positive or None, got {max_train_images!r}")
        if int(hidden) != hidden or hidden < 0:
            raise ValueError(f"hidden must be a non-negative integer (0 = linear head), got {hidden!r}")
        if not 0.0 < min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        if sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {sigma!r}")
        self.features = (
            features
            if features is not None
            else cached_features(
                backbone, layers, image_size, device=device, pretrained=pretrained, progress=progress
            )
        )
        self.simulated_per_image = int(simulated_per_image)
        self.max_train_images = max_train_images
        self.hidden = int(hidden)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.min_coverage = float(min_coverage)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.simulation_kwargs = dict(simulation_kwargs or {})
        self.progress = progress
        self.head: nn.Module | None = None
        self.mean_: torch.Tensor | None = None
        self.std_: torch.Tensor | None = None
        self.loss_history: list[float] = []
        self.training_examples: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    @property
    def image_size(self) -> int:
        return self.features.extractor.image_size

    @property
    def device(self) -> torch.device:
        return self.features.extractor.backbone.device

    def _make_head(self, channels: int) -> nn.Module:
        if self.hidden == 0:
            return nn.Linear(channels, 1)
        return nn.Sequential(nn.Linear(channels, self.hidden), nn.LeakyReLU(0.2), nn.Linear(self.hidden, 1))

    def _rows(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> standardised (N*h*w, C) rows."""
        rows = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        return (rows - self.mean_) / self.std_

    def fit(self, samples: Sequence[Sample]) -> SimulationTrainedHead:
        """Simulate anomalies on the normal ``samples``, then train the head (see module docstring)."""
        samples = list(samples)
        if not samples:
            raise ValueError("SimulationTrainedHead.fit needs at least one normal sample")
        for sample in samples:
            sample.require("image")
        if self.max_train_images is not None and len(samples) > self.max_train_images:
            keep = np.linspace(0, len(samples) - 1, self.max_train_images).round().astype(int)
            samples = [samples[i] for i in keep]
        self.head = None
        rng = np.random.default_rng(self.seed)
        normal_images = [sample.image for sample in samples]
        fakes, masks, _ = simulate_images(
            normal_images, self.simulation, rng, self.simulated_per_image, **self.simulation_kwargs
        )
        self.training_examples = (fakes[:8], masks[:8])
        normal = self.features(normal_images, desc="normal features")
        simulated = self.features(fakes, remember=False, desc="simulated features")
        grid = tuple(normal.shape[-2:])
        targets = torch.cat(
            [torch.zeros(len(normal), *grid), patch_targets(masks, self.image_size, grid, self.min_coverage)]
        ).reshape(-1)
        normal_rows = normal.permute(0, 2, 3, 1).reshape(-1, normal.shape[1])
        self.mean_ = normal_rows.mean(dim=0)
        self.std_ = normal_rows.std(dim=0).clamp_min(1e-6)
        rows = self._rows(torch.cat([normal, simulated]))
        keep = ~torch.isnan(targets)
        rows, targets = rows[keep.to(rows.device)], targets[keep].to(rows.device)
        positives = int(targets.sum())
        if positives == 0:
            raise ValueError(
                f"simulation {self.simulation!r} produced no patch with at least "
                f"{self.min_coverage:.0%} anomalous pixels; lower min_coverage or raise the "
                "defect size"
            )
        pos_weight = torch.tensor((len(targets) - positives) / positives, device=rows.device)
        with torch.random.fork_rng(devices=[]), _one_thread():
            torch.manual_seed(self.seed)
            head = self._make_head(rows.shape[1]).to(rows.device)
            optimiser = torch.optim.Adam(
                head.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            self.loss_history = []
            for _ in tqdm(
                range(self.epochs), desc=f"head ({self.simulation})", disable=not self.progress, leave=False
            ):
                order = torch.randperm(len(rows)).to(rows.device)
                total = 0.0
                for start in range(0, len(rows), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    logits = head(rows[batch])[:, 0]
                    loss = F.binary_cross_entropy_with_logits(logits, targets[batch], pos_weight=pos_weight)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(batch)
                self.loss_history.append(total / len(rows))
        self.head = head.eval()
        return self

    def feature_logits(self, rows: torch.Tensor) -> torch.Tensor:
        """The head as a discriminator on raw (M, C) patch features: M logits (differentiable, e.g. for
        :func:`uiad_lite.simulation.gradient_guided_noise`)."""
        if self.head is None:
            raise NotFittedError("SimulationTrainedHead.feature_logits() called before fit()")
        rows = rows.to(self.mean_.device, self.mean_.dtype)
        return self.head((rows - self.mean_) / self.std_)[:, 0]

    @torch.no_grad()
    def patch_logits(self, samples: Sequence[Sample]) -> torch.Tensor:
        """(N, h, w) head logits on the feature grid (higher = more anomalous)."""
        if self.head is None:
            raise NotFittedError("SimulationTrainedHead.predict() called before fit()")
        samples = list(samples)
        if not samples:
            raise ValueError("SimulationTrainedHead.predict needs at least one sample")
        for sample in samples:
            sample.require("image")
        features = self.features([sample.image for sample in samples], desc="test features")
        with _one_thread():
            logits = self.head(self._rows(features))[:, 0]
        return logits.reshape(len(samples), *features.shape[-2:])

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        """Anomaly maps at the masks' resolution and image scores = map maxima."""
        logits = self.patch_logits(samples)
        target_size = output_size(samples)
        maps = F.interpolate(
            logits[:, None].float().cpu(), size=(self.image_size,) * 2, mode="bilinear", align_corners=False
        )[:, 0].numpy()
        if self.sigma > 0:
            maps = np.stack([gaussian_filter(m, sigma=self.sigma, mode="reflect") for m in maps])
        maps = (
            F.interpolate(
                torch.from_numpy(np.ascontiguousarray(maps))[:, None],
                size=target_size,
                mode="bilinear",
                align_corners=False,
            )[:, 0]
            .numpy()
            .astype(np.float32)
        )
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
