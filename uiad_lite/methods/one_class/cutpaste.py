"""CutPaste (Li et al. 2021, "CutPaste: Self-Supervised Learning for Anomaly Detection and Localization").

Two stages (Sec. 3):

1. *Self-supervised fine-tuning.* An ImageNet CNN plus an MLP projection head learns to tell a normal
   image from the same image after a CutPaste augmentation (a rectangle cut, colour-jittered and pasted
   elsewhere) and after a CutPaste-Scar (a thin rotated strip). "3-way" (the paper's best variant,
   default here) = cross-entropy over {normal, CutPaste, Scar}; ``simulations=("cutpaste",)`` gives the
   binary variant. The augmentations are :func:`uiad_lite.simulation.simulate_images` with
   "cutpaste" / "cutpaste_scar" (the paper's sizes; chapter 14 compares them with other simulations).
2. *Density estimation.* The fine-tuned network embeds the normal training images (global average of
   its last stage, the representation before the head, as the released and re-implemented code use)
   and a :class:`~uiad_lite.methods.one_class.gde.GaussianDensity` (L2-normalised, Ledoit-Wolf
   covariance) is fitted to them. A test image scores by its Mahalanobis distance to it.

Localisation. The paper trains a *second* network on 64x64 crops and scores every 64x64 crop of a test
image at stride 4 with a patch-level GDE (about 2 400 forward passes per 256 px image), then spreads
the crop scores back with Gaussian smoothing. We use the dense variant instead: the same fine-tuned
network's stage-3 feature map (stride 16; 3x3 neighbourhood average as PatchCore) gives one embedding
per cell, i.e. per receptive field, and one position-independent patch GDE over all normal cells scores
every cell. One forward pass per image instead of thousands and no second training, which is what
makes maps affordable on a CPU; the cells play the role of the crops (same GDE, same smoothing), but
they are read from a network fine-tuned on whole images, so the maps are coarser than the paper's.

Settings. Paper: ResNet-18 (ImageNet), 256 px, MLP head of eight 512-unit layers and a 128-unit
layer, the whole network fine-tuned with SGD (learning rate 0.03, momentum 0.9, weight decay 3e-5,
one cosine cycle), batch 32 normal images (96 with both augmentations), 256 epochs. ``train_from``
freezes the stages before it (quick preset: only the last stages train, on a CPU).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.features.backbones import images_to_tensor
from uiad_lite.features.patch_features import aggregate_neighbourhood
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.patch_detector import anomaly_maps, output_size
from uiad_lite.methods.one_class.gde import GaussianDensity
from uiad_lite.methods.one_class.simulation_trained import _one_thread
from uiad_lite.simulation import check_simulation, simulate_images

IMAGE_SCORES = ("image_gde", "map_max")


class CutPasteNet(nn.Module):
    """A timm feature pyramid (two stages: map stage, last stage) + MLP projection head + classifier."""

    def __init__(self, body: nn.Module, mean: torch.Tensor, std: torch.Tensor, channels: int,
                 head_dims: Sequence[int], classes: int) -> None:  # fmt: skip
        super().__init__()
        self.body = body
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        layers, width = [], channels
        for dim in head_dims:
            layers += [nn.Linear(width, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
            width = dim
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(width, classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) in [0, 1] -> (embedding (B, C), logits (B, classes), map features (B, C_m, h, w))."""
        map_stage, last_stage = self.body((images - self.mean) / self.std)
        embedding = last_stage.mean(dim=(2, 3))
        return embedding, self.out(self.head(embedding)), map_stage


def _freeze_before(body: nn.Module, stage_modules: Sequence[str], train_from: int) -> None:
    """requires_grad=False for every parameter up to the end of stage ``train_from - 1``'s module."""
    for parameter in body.parameters():
        parameter.requires_grad_(True)
    if train_from <= 0:
        return
    boundary, seen, frozen = stage_modules[train_from - 1] + ".", False, True
    for name, parameter in body.named_parameters():
        inside = name.startswith(boundary)
        if seen and not inside:
            frozen = False
        seen = seen or inside
        parameter.requires_grad_(not frozen)


class CutPaste:
    """CutPaste: fine-tune on normal vs CutPaste vs Scar, then Gaussian densities (module docstring).

    Args:
        backbone: timm name (paper: ResNet-18); pretrained ImageNet weights as :func:`backbone` loads them.
        map_layer, last_layer: feature stages for the maps (stride 16) and for the image embedding.
        image_size: side the images are resized to before simulation and network (paper: 256).
        simulations: the pseudo-anomaly classes, names from :data:`uiad_lite.simulation.SIMULATION_NAMES`.
        head_dims: hidden sizes of the MLP projection head.
        train_from: first feature stage that is fine-tuned (0 = the whole network, as the paper).
        epochs, batch_size: passes over the normal images, normal images per step.
        learning_rate, momentum, weight_decay: SGD with one cosine cycle over all steps.
        max_train_images: use at most this many normal images (evenly spaced); None = all.
        image_score: "image_gde" (released: GDE on the image embedding) or "map_max" (largest cell score).
        sigma: Gaussian smoothing of the maps (pixels at the network input).
    """

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        map_layer: int | str = 3,
        last_layer: int | str = 4,
        image_size: int = 256,
        simulations: Sequence[str] = ("cutpaste", "cutpaste_scar"),
        head_dims: Sequence[int] = (512,) * 8 + (128,),
        train_from: int = 0,
        epochs: int = 256,
        batch_size: int = 32,
        learning_rate: float = 0.03,
        momentum: float = 0.9,
        weight_decay: float = 3e-5,
        max_train_images: int | None = None,
        image_score: str = "image_gde",
        sigma: float = 4.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        self.simulations = tuple(check_simulation(name) for name in simulations)
        if (
            not self.simulations
            or "mix" in self.simulations
            or len(set(self.simulations)) != len(self.simulations)
        ):
            raise ValueError(
                f"simulations must be distinct simulation names (not 'mix'), got {simulations!r}"
            )
        if image_score not in IMAGE_SCORES:
            raise ValueError(f"unknown image_score {image_score!r}; choose one of {list(IMAGE_SCORES)}")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size!r}")
        if max_train_images is not None and max_train_images < 2:
            raise ValueError(f"max_train_images must be at least 2 or None, got {max_train_images!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        frozen = build_backbone(
            backbone, (map_layer, last_layer), device=device, pretrained=pretrained, seed=seed
        )
        self._stage_modules = [stage["module"] for stage in frozen.model.feature_info.info]
        if not 0 <= train_from < len(self._stage_modules):
            raise ValueError(
                f"train_from must be a stage index of {backbone!r} "
                f"(0..{len(self._stage_modules) - 1}), got {train_from!r}"
            )
        self.info = frozen.info
        self._template = frozen
        self.backbone, self.image_size, self.train_from = backbone, int(image_size), int(train_from)
        self.head_dims = tuple(int(d) for d in head_dims)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.momentum, self.weight_decay = float(learning_rate), momentum, weight_decay
        self.max_train_images, self.image_score, self.sigma = max_train_images, image_score, float(sigma)
        self.seed, self.progress = int(seed), progress
        self.net_: CutPasteNet | None = None
        self.image_gde_: GaussianDensity | None = None
        self.patch_gde_: GaussianDensity | None = None
        self.loss_history_: list[float] = []
        self.accuracy_history_: list[float] = []

    @property
    def device(self) -> torch.device:
        return self._template.device

    def _resized(self, samples: Sequence[Sample]) -> list[np.ndarray]:
        images = []
        for sample in samples:
            sample.require("image")
            image = np.asarray(sample.image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"sample {sample.path or sample.category!r}: image must be H×W×3 uint8 RGB, "
                    f"got shape {image.shape} dtype {image.dtype}"
                )
            side = self.image_size
            images.append(image if image.shape[:2] == (side, side)
                          else cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))  # fmt: skip
        return images

    def _build_net(self) -> CutPasteNet:
        body = copy.deepcopy(self._template.model)
        _freeze_before(body, self._stage_modules, self.train_from)
        net = CutPasteNet(body, self._template.mean, self._template.std, self.info.channels[-1],
                          self.head_dims, 1 + len(self.simulations))  # fmt: skip
        return net.to(self.device)

    def _train(self, net: CutPasteNet, images: list[np.ndarray], rng: np.random.Generator) -> None:
        parameters = [p for p in net.parameters() if p.requires_grad]
        optimiser = torch.optim.SGD(parameters, lr=self.learning_rate, momentum=self.momentum,
                                    weight_decay=self.weight_decay)  # fmt: skip
        steps_per_epoch = math.ceil(len(images) / self.batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, self.epochs * steps_per_epoch)
        net.train()
        for module in net.body.modules():  # batch norm of frozen stages keeps its ImageNet statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()
            ):
                module.eval()
        self.loss_history_, self.accuracy_history_ = [], []
        for _ in tqdm(
            range(self.epochs), desc="CutPaste fine-tuning", disable=not self.progress, leave=False
        ):
            order, losses, correct = rng.permutation(len(images)), [], 0
            for start in range(0, len(order), self.batch_size):
                normal = [images[i] for i in order[start : start + self.batch_size]]
                batch = list(normal)
                for simulation in self.simulations:
                    batch += simulate_images(normal, simulation, rng)[0]
                labels = (
                    torch.arange(1 + len(self.simulations)).repeat_interleave(len(normal)).to(self.device)
                )
                _, logits, _ = net(images_to_tensor(batch, self.image_size).to(self.device))
                loss = F.cross_entropy(logits, labels)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(float(loss.detach()))
                correct += int((logits.argmax(dim=1) == labels).sum())
            self.loss_history_.append(float(np.mean(losses)))
            self.accuracy_history_.append(correct / (len(images) * (1 + len(self.simulations))))
        net.eval()

    @torch.no_grad()
    def embed(self, samples: Sequence[Sample], batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Image embeddings (N, C) and 3x3-averaged map features (N, C_m, h, w) of the fitted network."""
        if self.net_ is None:
            raise NotFittedError("CutPaste.predict() called before fit()")
        images = self._resized(samples)
        if not images:
            raise ValueError("CutPaste needs at least one sample")
        embeddings, maps = [], []
        for start in range(0, len(images), batch_size):
            batch = images_to_tensor(images[start : start + batch_size], self.image_size).to(self.device)
            embedding, _, map_stage = self.net_(batch)
            embeddings.append(embedding)
            maps.append(aggregate_neighbourhood(map_stage, 3))
        return torch.cat(embeddings), torch.cat(maps)

    def fit(self, samples: Sequence[Sample]) -> CutPaste:
        """Fine-tune on the normal ``samples`` and their simulations, then fit the image and patch GDEs."""
        samples = list(samples)
        if len(samples) < 2:
            raise ValueError(f"CutPaste.fit needs at least two normal samples, got {len(samples)}")
        if self.max_train_images is not None and len(samples) > self.max_train_images:
            keep = np.linspace(0, len(samples) - 1, self.max_train_images).round().astype(int)
            samples = [samples[i] for i in keep]
        rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]), _one_thread():
            torch.manual_seed(self.seed)
            net = self._build_net()
            self._train(net, self._resized(samples), rng)
        self.net_ = net
        embeddings, maps = self.embed(samples)
        self.image_gde_ = GaussianDensity().fit(embeddings)
        self.patch_gde_ = GaussianDensity().fit(maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1]))
        return self

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        """Image scores (image GDE, or the largest cell score) and maps from the patch GDE."""
        if self.net_ is None:
            raise NotFittedError("CutPaste.predict() called before fit()")
        samples = list(samples)
        size = output_size(samples)
        embeddings, maps = self.embed(samples)
        count, channels, height, width = maps.shape
        cells = self.patch_gde_.mahalanobis(maps.permute(0, 2, 3, 1).reshape(-1, channels))
        grid = torch.from_numpy(cells.reshape(count, height, width)).float()
        scores = (self.image_gde_.mahalanobis(embeddings) if self.image_score == "image_gde"
                  else grid.flatten(1).max(dim=1).values.numpy())  # fmt: skip
        return Prediction(scores=scores, maps=anomaly_maps(grid, self.image_size, size, self.sigma))
