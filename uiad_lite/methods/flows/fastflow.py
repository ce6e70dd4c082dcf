"""FastFlow (Yu et al. 2021): a 2D normalizing flow on each stage's whole feature map.

Unlike CFlow, which treats every position as an independent vector, FastFlow's couplings use
convolutional subnets, so each position's density sees its neighbourhood. The authors did not release
code; the reference implementation is anomalib's ``Fastflow`` (``models/image/fastflow/torch_model.py``),
matched here:

* per stage a trainable ``LayerNorm`` over (C, h, w) (the CNN-backbone case), then ``flow_steps`` = 8
  AllInOneBlock-like steps (:func:`~uiad_lite.methods.flows.coupling.all_in_one_block`, clamp 2, hard
  permutations) whose subnets are Conv-ReLU-Conv with kernels alternating 3×3 (even steps) and 1×1
  (odd steps), hidden channels = ``hidden_ratio`` · C (``conv3x3_only`` uses 3×3 everywhere);
* loss = sum over stages of mean over images of (0.5 · sum z² − log|det|) (anomalib's ``FastflowLoss``);
  Adam, lr 1e-3, weight decay 1e-5;
* map = mean over stages of −exp(−0.5 · mean_c z²) upsampled bilinearly to the input size; image score
  = the map's maximum (anomalib's post-processing). No smoothing (``sigma`` = 0) as in anomalib.

``inputs="pixels"`` is an ablation for chapter 06 (:func:`pixel_stages`): the same flow on pixel blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, images_to_tensor
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.flows.coupling import FlowSequence, all_in_one_block, conv_subnet
from uiad_lite.methods.flows.flow_detector import FlowDetector


def pixel_stages(
    samples: Sequence[Sample], image_size: int, strides: Sequence[int], device: torch.device
) -> list[torch.Tensor]:
    """The ablation ``inputs="pixels"``: instead of a backbone stage of stride s, the image itself on the
    same grid, each cell holding its 2×2 block of (s/2 × s/2)-averaged RGB values (12 channels, ImageNet-
    standardised). Same flow, same grid, no pretrained features."""
    for sample in samples:
        sample.require("image")
    images = images_to_tensor([np.asarray(s.image) for s in samples], image_size).to(device)
    images = (images - images.new_tensor(IMAGENET_MEAN)[:, None, None]) / images.new_tensor(IMAGENET_STD)[
        :, None, None
    ]
    return [F.pixel_unshuffle(F.avg_pool2d(images, max(1, s // 2)), 2) for s in strides]


class FastFlowModel(nn.Module):
    """LayerNorm + a 2D flow per stage: stage outputs -> [(z_l, log_det_l)]."""

    def __init__(
        self,
        shapes: Sequence[tuple[int, int, int]],
        flow_steps: int = 8,
        hidden_ratio: float = 1.0,
        conv3x3_only: bool = False,
        clamp: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(list(shape), elementwise_affine=True) for shape in shapes)
        flows = []
        for stage, (channels, _, _) in enumerate(shapes):
            layers = []
            for step in range(flow_steps):
                kernel = 1 if step % 2 == 1 and not conv3x3_only else 3
                layers += all_in_one_block(
                    channels, conv_subnet(kernel, hidden_ratio), clamp=clamp, seed=seed + 1000 * stage + step
                )
            flows.append(FlowSequence(layers, name=f"FastFlow stage {stage} flow"))
        self.flows = nn.ModuleList(flows)

    def forward(self, stages: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [flow(norm(stage)) for norm, flow, stage in zip(self.norms, self.flows, stages, strict=True)]


class FastFlow(FlowDetector):
    """FastFlow on the frozen backbone's stages (paper: ResNet18 / WRN50 stages 1-3, CaiT, DeiT)."""

    default_layers = (2, 3)

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] | None = None,
        image_size: int = 256,
        flow_steps: int = 8,
        hidden_ratio: float = 1.0,
        conv3x3_only: bool = False,
        clamp: float = 2.0,
        epochs: int = 500,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        images_per_step: int = 32,
        sigma: float = 0.0,
        inputs: str = "features",
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        if flow_steps < 1 or epochs < 0 or images_per_step < 1:
            raise ValueError(
                f"need flow_steps >= 1, epochs >= 0, images_per_step >= 1; "
                f"got {flow_steps}, {epochs}, {images_per_step}"
            )
        if inputs not in ("features", "pixels"):
            raise ValueError(f"inputs must be 'features' (the backbone's) or 'pixels', got {inputs!r}")
        super().__init__(backbone, layers, image_size, device, seed, pretrained, batch_size, progress)
        self.inputs = inputs
        self.flow_steps, self.hidden_ratio, self.conv3x3_only = flow_steps, hidden_ratio, conv3x3_only
        self.clamp, self.epochs = clamp, epochs
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.images_per_step, self.sigma = images_per_step, sigma
        self.model_: FastFlowModel | None = None

    def _stages(self, samples: Sequence[Sample], desc: str) -> list[torch.Tensor]:
        if self.inputs == "features":
            return super()._stages(samples, desc)
        return pixel_stages(samples, self.image_size, self.backbone.info.strides, self.device)

    def fit(self, samples: Sequence[Sample]) -> FastFlow:
        stages = self._stages(samples, "FastFlow features")
        rng = self._generator()
        model = FastFlowModel(
            [tuple(stage.shape[1:]) for stage in stages],
            self.flow_steps,
            self.hidden_ratio,
            self.conv3x3_only,
            self.clamp,
            self.seed,
        ).to(self.device)
        optimiser = torch.optim.Adam(
            model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        count = len(stages[0])
        self.loss_history_ = []
        model.train()
        for _ in tqdm(range(self.epochs), desc="FastFlow training", disable=not self.progress, leave=False):
            order = torch.from_numpy(rng.permutation(count)).to(self.device)
            total = 0.0
            for start in range(0, count, self.images_per_step):
                index = order[start : start + self.images_per_step]
                outputs = model([stage[index] for stage in stages])
                loss = sum(torch.mean(0.5 * (z**2).flatten(1).sum(1) - log_det) for z, log_det in outputs)
                self._check_finite(loss.detach(), "FastFlow training loss")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(index)
            self.loss_history_.append(total / count)
        self.model_ = model.eval()
        return self

    @torch.no_grad()
    def stage_maps(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """Per stage (N, h_l, w_l): −exp(−0.5 · mean_c z²), the released per-position likelihood."""
        self._check_fitted(self.model_)
        stages = self._stages(samples, "FastFlow predict")
        maps: list[list[torch.Tensor]] = [[] for _ in stages]
        for start in range(0, len(stages[0]), self.images_per_step):
            outputs = self.model_([stage[start : start + self.images_per_step] for stage in stages])
            for bucket, (z, _) in zip(maps, outputs, strict=True):
                bucket.append(-torch.exp(-0.5 * (z**2).mean(dim=1)))
        return [torch.cat(bucket) for bucket in maps]

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        per_stage = self.stage_maps(samples)
        size = (self.image_size, self.image_size)
        upsampled = [
            F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False) for m in per_stage
        ]
        combined = self._check_finite(torch.stack(upsampled).mean(0)[:, 0], "FastFlow anomaly map")
        maps = self._maps(combined, samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
