"""STFPM (Wang et al. 2021): student-teacher feature pyramid matching.

A teacher CNN pre-trained on ImageNet stays frozen; a student with the *same architecture*, randomly
initialised, is trained on the normal images only to reproduce the teacher's feature maps at several
stages. Where the input looks like the training data the student has learned to agree; elsewhere
(a scratch, a hole) nothing taught it what the teacher says, and the two disagree.

Loss (paper Eq. 1-2; the authors' code and anomalib's ``STFPMLoss``): with F^l_t, F^l_s the teacher's
and student's stage-l features, L2-normalised along the channels at every position (i, j),

    L = sum_l  1 / (2 h_l w_l) * sum_{b,i,j} || F^l_t(b,i,j) - F^l_s(b,i,j) ||²

(summed over the batch, as ``MSELoss(reduction="sum")`` does). For unit vectors
0.5 ||a - b||² = 1 - cos(a, b): the per-position discrepancy is a cosine distance.

Map (paper Eq. 3-4, released code and anomalib's ``AnomalyMapGenerator``): per stage the map
0.5 ||F_t - F_s||² is upsampled (bilinear) to the input size and the stages are **multiplied**
(``combine="product"``); anomalib does the same. ``combine="sum"`` adds them instead (an option, not
what produced the published numbers). No Gaussian smoothing (``sigma=0``), as in both codes. Image
score: the maximum of the map (anomalib's default post-processing).

Released training: SGD, lr 0.4, momentum 0.9, weight decay 1e-4, batch 32, 100 epochs, ResNet-18
stages "layer1..3" at 256 px. Here: the offline EfficientNet-Lite0 in ``quick`` (three stages, strides
4, 8 and 16, like the paper's pyramid), the teacher's features computed once per fit (there is no
augmentation). The student skips the backbone's blocks after the last stage used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.backbones import backbone as build_backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.teacher_student.distillation import DistillationDetector, check_finite

COMBINE = ("product", "sum")


def stfpm_loss(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over stages of 0.5/(h w) · Σ ||normalised teacher − normalised student||² (batch summed)."""
    total = teacher[0].new_zeros(())
    for t, s in zip(teacher, student, strict=True):
        height, width = t.shape[-2:]
        total = total + 0.5 / (height * width) * (F.normalize(t, dim=1) - F.normalize(s, dim=1)).pow(2).sum()
    return total


def stage_distances(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per stage, the (B, h_l, w_l) map 0.5 ||F_t/|F_t| − F_s/|F_s|||² = 1 − cos(F_t, F_s)."""
    return [
        0.5 * (F.normalize(t, dim=1) - F.normalize(s, dim=1)).pow(2).sum(1)
        for t, s in zip(teacher, student, strict=True)
    ]


class STFPM(DistillationDetector):
    """STFPM: a frozen pretrained teacher, a student of the same architecture trained from scratch.

    Args:
        backbone, layers: the teacher (a timm name with its offline weights, or a built
            :class:`~uiad_lite.features.backbones.Backbone`) and its stages; the student is the same
            timm architecture with random weights (seeded).
        combine: "product" (released code, anomalib) or "sum" of the upsampled per-stage maps.
        learning_rate, momentum, weight_decay: SGD as released (0.4, 0.9, 1e-4).
    """

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 256,
        epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float = 0.4,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        combine: str = "product",
        sigma: float = 0.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
        super().__init__(backbone, layers, image_size, epochs, batch_size, device, seed, pretrained, progress)
        self.learning_rate, self.momentum, self.weight_decay = learning_rate, momentum, weight_decay
        self.combine, self.sigma = combine, float(sigma)
        self.student_: nn.Module | None = None

    def _make_student(self) -> nn.Module:
        """Same architecture as the teacher, random (seeded) weights, trainable."""
        student = build_backbone(
            self.backbone_name, self.teacher.info.layers, device=self.device, pretrained=False, seed=self.seed
        ).model
        names = student.feature_info.module_name()
        if hasattr(student, "blocks") and names[-1].startswith("blocks."):  # timm EfficientNetFeatures
            student.blocks = student.blocks[: int(names[-1].split(".")[1]) + 1]  # runs every block otherwise
        for parameter in student.parameters():
            parameter.requires_grad_(True)
        return student

    def fit(self, samples: Sequence[Sample]) -> STFPM:
        images = self._images(samples)
        targets = self._teacher_features(images)
        student = self._make_student().train()
        optimiser = torch.optim.SGD(
            student.parameters(),
            lr=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        for epoch, batches in self._epochs(len(images), "STFPM training"):
            epoch_loss = 0.0
            for batch in batches:
                index = torch.from_numpy(batch)
                loss = stfpm_loss([t[index] for t in targets], student(self._normalise(images[index])))
                check_finite(loss, epoch, "STFPM")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss += float(loss.detach())
            self.loss_history_.append(epoch_loss / len(images))  # per image (the loss sums the batch)
        self.student_ = student.eval()
        return self

    @torch.no_grad()
    def stage_maps(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """Per stage, the (N, h_l, w_l) cosine distances between teacher and student (before upsampling)."""
        self._check_fitted(self.student_)
        images = self._images(samples)
        maps: list[list[torch.Tensor]] = []
        for start in range(0, len(images), 16):
            chunk = images[start : start + 16]
            maps.append(stage_distances(self.teacher(chunk), self.student_(self._normalise(chunk))))
        return [torch.cat([part[s] for part in maps]) for s in range(len(maps[0]))]

    def combined_map(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """Upsample every stage to the input size and combine them (product or sum): (N, S, S)."""
        size = (self.image_size, self.image_size)
        upsampled = [
            F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0] for m in stages
        ]
        combined = upsampled[0]
        for layer_map in upsampled[1:]:
            combined = combined * layer_map if self.combine == "product" else combined + layer_map
        return combined

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        self._check_fitted(self.student_)
        maps = self._maps(self.combined_map(self.stage_maps(samples)), samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=np.asarray(maps))
