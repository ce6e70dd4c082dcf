"""CFlow-AD (Gudovskiy et al. 2022): a conditional flow per stage on feature vectors ("fibres").

Every position of a stage's feature map is one sample x of dimension C; its density is conditioned on
where it sits through a 2D sinusoidal positional encoding c (128 channels), concatenated to the input
of every coupling subnet. Reference code: gudovskiy/cflow-ad (``model.py``, ``train.py``, ``utils.py``),
behaviour matched:

* ``positionalencoding2d``: the first half of the channels encode the column (sin, cos interleaved with
  frequencies 10000^(-2i/half)), the second half the row;
* ``freia_cflow_head``: 8 AllInOneBlock steps, ``subnet_fc`` = Linear(c_in, 2 c_in)-ReLU-Linear,
  clamp 1.9, SOFTPLUS global affine, ``permute_soft=True`` (anomalib's default is False: option
  ``soft_permutation``);
* training on *fibre batches*: all positions of a batch of images shuffled and cut into batches of
  N = 256 fibres; loss = −logsigmoid(log p(x | c) / C) with log p = −C/2 log 2π − ½‖z‖² + log|det|;
  Adam lr 2e-4 (the released warm-up and cosine schedule are not reproduced);
* test: per stage the per-dimension log-likelihood log p / C of every position, minus its maximum over
  all test positions, exponentiated (``test_norm -= max; test_prob = exp(test_norm)``), upsampled
  bilinearly (``align_corners=True``) to the input size and *summed* over stages; the anomaly map is
  max(score) − score, the max taken over the whole predict call, and the image score is the map's
  maximum. anomalib's ``AnomalyMapGenerator`` does the same over one batch. Both normalisers depend on
  the other test images; ``normalise="fit"`` instead takes the maxima over the training set
  (a score that does not change with the test batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.flows.coupling import (
    FlowSequence,
    all_in_one_block,
    fc_subnet,
    gaussian_log_likelihood,
)
from uiad_lite.methods.flows.flow_detector import FlowDetector


def positional_encoding_2d(channels: int, height: int, width: int) -> torch.Tensor:
    """(channels, height, width) sinusoidal encoding of (row, column), as CFlow's ``positionalencoding2d``."""
    if channels % 4:
        raise ValueError(f"positional encoding needs a multiple of 4 channels, got {channels}")
    half = channels // 2
    frequencies = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))  # (half / 2,)
    columns = torch.arange(0.0, width)[:, None] * frequencies  # (W, half / 2)
    rows = torch.arange(0.0, height)[:, None] * frequencies  # (H, half / 2)
    encoding = torch.zeros(channels, height, width)
    encoding[0:half:2] = torch.sin(columns).T[:, None, :].expand(-1, height, -1)
    encoding[1:half:2] = torch.cos(columns).T[:, None, :].expand(-1, height, -1)
    encoding[half::2] = torch.sin(rows).T[:, :, None].expand(-1, -1, width)
    encoding[half + 1 :: 2] = torch.cos(rows).T[:, :, None].expand(-1, -1, width)
    return encoding


def _fibres(stage: torch.Tensor, encoding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, h, w) features and (P, h, w) encoding -> (B·h·w, C) fibres and (B·h·w, P) conditions."""
    batch, channels = stage.shape[:2]
    fibres = stage.permute(0, 2, 3, 1).reshape(-1, channels)
    conditions = encoding.permute(1, 2, 0).reshape(1, -1, encoding.shape[0]).expand(batch, -1, -1)
    return fibres, conditions.reshape(-1, encoding.shape[0])


class CFlow(FlowDetector):
    """CFlow-AD: one conditional flow per backbone stage, per-position likelihood maps."""

    default_layers = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 256,
        condition_dim: int = 128,
        coupling_blocks: int = 8,
        clamp: float = 1.9,
        soft_permutation: bool = True,
        epochs: int = 200,
        learning_rate: float = 2e-4,
        fibre_batch: int = 256,
        images_per_step: int = 32,
        normalise: str = "batch",
        sigma: float = 0.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if normalise not in ("batch", "fit"):
            raise ValueError(f"normalise must be 'batch' (released) or 'fit', got {normalise!r}")
        if min(coupling_blocks, fibre_batch, images_per_step) < 1 or epochs < 0:
            raise ValueError("coupling_blocks, fibre_batch, images_per_step must be >= 1 and epochs >= 0")
        super().__init__(backbone, layers, image_size, device, seed, pretrained, batch_size, progress)
        self.condition_dim, self.coupling_blocks, self.clamp = condition_dim, coupling_blocks, clamp
        self.soft_permutation, self.epochs, self.learning_rate = soft_permutation, epochs, learning_rate
        self.fibre_batch, self.images_per_step = fibre_batch, images_per_step
        self.normalise, self.sigma = normalise, sigma
        self.flows_: nn.ModuleList | None = None
        self.encodings_: list[torch.Tensor] | None = None
        self.fit_max_: list[float] | None = None

    def _log_likelihood(
        self, stage_index: int, fibres: torch.Tensor, conditions: torch.Tensor
    ) -> torch.Tensor:
        """Per-dimension log p(x | c) / C of each fibre (the released ``log_prob``)."""
        z, log_det = self.flows_[stage_index](fibres, conditions)
        return gaussian_log_likelihood(z, log_det) / fibres.shape[1]

    def fit(self, samples: Sequence[Sample]) -> CFlow:
        stages = self._stages(samples, "CFlow features")
        rng = self._generator()
        self.encodings_ = [
            positional_encoding_2d(self.condition_dim, *stage.shape[-2:]).to(self.device) for stage in stages
        ]
        self.flows_ = nn.ModuleList(
            FlowSequence(
                [
                    layer
                    for block in range(self.coupling_blocks)
                    for layer in all_in_one_block(
                        stage.shape[1],
                        fc_subnet(2.0),
                        self.condition_dim,
                        self.clamp,
                        seed=self.seed + 1000 * index + block,
                        soft_permutation=self.soft_permutation,
                    )
                ],
                name=f"CFlow stage {index} flow",
            )
            for index, stage in enumerate(stages)
        ).to(self.device)
        optimisers = [torch.optim.Adam(flow.parameters(), lr=self.learning_rate) for flow in self.flows_]
        count, self.loss_history_ = len(stages[0]), []
        self.flows_.train()
        for _ in tqdm(range(self.epochs), desc="CFlow training", disable=not self.progress, leave=False):
            total, steps = 0.0, 0
            order = torch.from_numpy(rng.permutation(count)).to(self.device)
            for start in range(0, count, self.images_per_step):
                index = order[start : start + self.images_per_step]
                for stage_index, stage in enumerate(stages):  # the released loop: stage by stage
                    fibres, conditions = _fibres(stage[index], self.encodings_[stage_index])
                    permutation = torch.from_numpy(rng.permutation(len(fibres))).to(self.device)
                    for fibre_start in range(0, len(fibres), self.fibre_batch):
                        chosen = permutation[fibre_start : fibre_start + self.fibre_batch]
                        log_p = self._log_likelihood(stage_index, fibres[chosen], conditions[chosen])
                        loss = -F.logsigmoid(log_p).mean()
                        self._check_finite(loss.detach(), f"CFlow stage {stage_index} training loss")
                        optimisers[stage_index].zero_grad()
                        loss.backward()
                        optimisers[stage_index].step()
                        total, steps = total + float(loss.detach()), steps + 1
            self.loss_history_.append(total / max(steps, 1))
        self.flows_.eval()
        self.fit_max_ = [float(m.max()) for m in self._stage_log_likelihoods(stages)]
        return self

    @torch.no_grad()
    def _stage_log_likelihoods(self, stages: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        result = []
        for stage_index, stage in enumerate(stages):
            chunks = []
            for start in range(0, len(stage), self.images_per_step):
                part = stage[start : start + self.images_per_step]
                fibres, conditions = _fibres(part, self.encodings_[stage_index])
                log_p = self._log_likelihood(stage_index, fibres, conditions)
                chunks.append(log_p.reshape(len(part), *stage.shape[-2:]))
            result.append(self._check_finite(torch.cat(chunks), f"CFlow stage {stage_index} log-likelihood"))
        return result

    def stage_log_likelihoods(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """Per stage (N, h_l, w_l): log p(x | position) / C of each position (higher = more normal)."""
        self._check_fitted(self.flows_, self.encodings_)
        return self._stage_log_likelihoods(self._stages(samples, "CFlow predict"))

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        log_likelihoods = self.stage_log_likelihoods(samples)
        size = (self.image_size, self.image_size)
        score = torch.zeros(len(samples), *size, dtype=torch.float64, device=self.device)
        for stage_index, log_p in enumerate(log_likelihoods):
            top = log_p.max() if self.normalise == "batch" else self.fit_max_[stage_index]
            probability = torch.exp(log_p.double() - top)
            score += F.interpolate(probability[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
        top = score.max() if self.normalise == "batch" else float(len(log_likelihoods))
        maps = self._maps((top - score).float(), samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
