"""RD4AD (Deng & Li 2022): anomaly detection via reverse distillation from a one-class embedding.

In STFPM teacher and student read the *same image* (forward distillation): on an anomaly the student
may well generalise and copy the teacher. RD4AD makes the student read something else: the teacher's
multi-scale features are squeezed by a trainable **one-class bottleneck embedding** (OCBE) into one
low-resolution code, and a **student decoder** rebuilds the teacher's stages from that code, deepest
first (reverse distillation). An anomalous pattern does not survive the bottleneck, which was fitted to
normal features only, so the decoder rebuilds what normal would look like and disagrees with the
teacher exactly there.

As released (hq-deng/RD4AD; anomalib's ``ReverseDistillation`` follows it):

* teacher: WideResNet-50-2 "layer1..3" (strides 4, 8, 16), frozen, in eval mode;
* OCBE (``BN_layer``, Eq. 1 "MFF + OCE"): the shallower stages are brought to the deepest stage's grid
  by stride-2 3×3 convolutions (two for layer1, one for layer2; BN + ReLU), concatenated with the
  deepest stage, then residual blocks with stride 2 give the embedding (2048 channels at stride 32 for
  WRN50; the released code uses 3 blocks, the paper's figure 1: ``ocbe_blocks``);
* decoder: the teacher's stages mirrored, each stage upsampling ×2 (transposed convolution) and
  refining with residual blocks, outputs with the teacher's channel counts and grids, deepest first;
* loss (Eq. 2-3, released ``loss_fucntion``): per stage 1 − cos between the *flattened* teacher and
  student feature maps of each image (one cosine over C·h·w values), averaged over the batch, summed
  over stages;
* map (released ``cal_anomaly_map``, mode "a"): per stage 1 − cos along the channels at each position,
  upsampled (bilinear) to the input size, **summed** over stages, Gaussian smoothing sigma = 4; image
  score: the maximum of the smoothed map (the released evaluation);
* Adam, lr 0.005, betas (0.5, 0.999), batch 16, 200 epochs at 256 px.

The residual blocks here are basic blocks (two 3×3 convolutions); the released ones are bottlenecks
(with attention hooks left unused), which only matters for the parameter count. With a teacher whose
stages take negative values (EfficientNet: a linear projection ends each stage), each decoder stage ends
without its ReLU (``MirrorDecoder(signed=True)``, chosen in ``fit`` from the teacher's features).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.teacher_student.distillation import DistillationDetector, check_finite


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 strided) shortcut; a final ReLU
    unless ``activate`` is False (an output that has to take negative values)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, activate: bool = True) -> None:
        super().__init__()
        self.activate = activate
        self.body = nn.Sequential(
            conv_bn_relu(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.shortcut(x)
        return F.relu(out) if self.activate else out


class OCBE(nn.Module):
    """One-class bottleneck embedding: multi-scale feature fusion, then ``blocks`` residual blocks
    (the first with stride 2) down to ``embedding_channels`` at half the deepest stage's grid."""

    def __init__(
        self, channels: Sequence[int], strides: Sequence[int], embedding_channels: int, blocks: int = 1
    ) -> None:
        super().__init__()
        deepest, deepest_stride = channels[-1], strides[-1]
        self.fuse = nn.ModuleList()
        for cin, stride in zip(channels[:-1], strides[:-1], strict=True):
            steps, layers, width = max(1, (deepest_stride // stride).bit_length() - 1), [], cin
            for step in range(steps):
                out = deepest if step == steps - 1 else min(2 * width, deepest)
                layers.append(conv_bn_relu(width, out, stride=2))
                width = out
            self.fuse.append(nn.Sequential(*layers))
        fused = deepest * len(channels)
        self.embed = nn.Sequential(
            ResidualBlock(fused, embedding_channels, stride=2),
            *[ResidualBlock(embedding_channels, embedding_channels) for _ in range(blocks - 1)],
        )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        fused = [block(feature) for block, feature in zip(self.fuse, features[:-1], strict=True)]
        return self.embed(torch.cat([*fused, features[-1]], dim=1))


class MirrorDecoder(nn.Module):
    """The teacher's stages in reverse: each upsamples ×2 (transposed 2×2 convolution, BN, ReLU), then
    ``blocks`` residual blocks; returns the outputs shallowest first, like the teacher's list.

    ``signed``: the teacher's stage outputs take negative values, so each stage ends without a ReLU. A
    ResNet stage ends in a ReLU and so does the released decoder; an EfficientNet stage ends in a linear
    projection, and a decoder whose outputs cannot be negative cannot reach it (on the synthetic washer
    its loss stalled at 1 − cos ≈ 0.35 per stage)."""

    def __init__(
        self, embedding_channels: int, channels: Sequence[int], blocks: int = 1, signed: bool = False
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        width = embedding_channels
        for cout in reversed(list(channels)):
            up = [nn.ConvTranspose2d(width, cout, 2, 2, bias=False), nn.BatchNorm2d(cout)]
            if blocks or not signed:
                up.append(nn.ReLU(inplace=True))
            refine = [ResidualBlock(cout, cout, activate=not signed or b < blocks - 1) for b in range(blocks)]
            self.stages.append(nn.Sequential(*up, *refine))
            width = cout

    def forward(self, embedding: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        outputs, x = [], embedding
        for stage, size in zip(self.stages, reversed(list(sizes)), strict=True):
            x = stage(x)
            if tuple(x.shape[-2:]) != tuple(size):  # odd grids (image size not a multiple of 32)
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            outputs.append(x)
        return outputs[::-1]


def reverse_distillation_loss(
    teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Σ_stages mean_batch (1 − cos(flatten(F_t), flatten(F_s))), as in the released ``loss_fucntion``."""
    return sum(
        (1 - F.cosine_similarity(t.flatten(1), s.flatten(1), dim=1)).mean()
        for t, s in zip(teacher, student, strict=True)
    )


class RD4AD(DistillationDetector):
    """Reverse distillation: frozen teacher -> trainable OCBE -> trainable mirrored decoder.

    Args:
        embedding_channels: OCBE output channels (None: twice the deepest stage's, 2048 for WRN50).
        ocbe_blocks, decoder_blocks: residual blocks in the OCBE and per decoder stage (released: 3 and
            the ResNet's [3, 4, 6]; the paper's figure shows one in the OCBE).
    """

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (1, 2, 3),
        image_size: int = 256,
        epochs: int = 200,
        batch_size: int = 16,
        learning_rate: float = 0.005,
        betas: tuple[float, float] = (0.5, 0.999),
        embedding_channels: int | None = None,
        ocbe_blocks: int = 3,
        decoder_blocks: int = 2,
        sigma: float = 4.0,
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        if len(layers) < 2 or ocbe_blocks < 1 or decoder_blocks < 0:
            raise ValueError(
                f"RD4AD needs >= 2 teacher stages, ocbe_blocks >= 1, decoder_blocks >= 0; "
                f"got layers={layers}, ocbe_blocks={ocbe_blocks}, decoder_blocks={decoder_blocks}"
            )
        super().__init__(backbone, layers, image_size, epochs, batch_size, device, seed, pretrained, progress)
        self.learning_rate, self.betas = learning_rate, tuple(betas)
        channels = self.teacher.info.channels
        self.embedding_channels = embedding_channels or 2 * channels[-1]
        self.ocbe_blocks, self.decoder_blocks, self.sigma = ocbe_blocks, decoder_blocks, float(sigma)
        self.ocbe_: OCBE | None = None
        self.decoder_: MirrorDecoder | None = None

    def build(self, signed: bool = False) -> tuple[OCBE, MirrorDecoder]:
        """A fresh (seeded) OCBE and decoder sized to the teacher's stages (``signed``: see MirrorDecoder)."""
        info = self.teacher.info
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            ocbe = OCBE(info.channels, info.strides, self.embedding_channels, self.ocbe_blocks)
            decoder = MirrorDecoder(self.embedding_channels, info.channels, self.decoder_blocks, signed)
        return ocbe.to(self.device), decoder.to(self.device)

    def _student(self, teacher: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.decoder_(self.ocbe_(teacher), [tuple(t.shape[-2:]) for t in teacher])

    def fit(self, samples: Sequence[Sample]) -> RD4AD:
        targets = self._teacher_features(self._images(samples))
        self.ocbe_, self.decoder_ = self.build(signed=any(bool((t < 0).any()) for t in targets))
        parameters = [*self.ocbe_.parameters(), *self.decoder_.parameters()]
        optimiser = torch.optim.Adam(parameters, lr=self.learning_rate, betas=self.betas)
        self.ocbe_.train(), self.decoder_.train()
        for epoch, batches in self._epochs(len(targets[0]), "RD4AD training"):
            epoch_loss = 0.0
            for batch in batches:
                teacher = [t[torch.from_numpy(batch)] for t in targets]
                loss = reverse_distillation_loss(teacher, self._student(teacher))
                check_finite(loss, epoch, "RD4AD")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(batch)
            self.loss_history_.append(epoch_loss / len(targets[0]))
        self.ocbe_.eval(), self.decoder_.eval()
        return self

    @torch.no_grad()
    def stage_maps(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """Per teacher stage, the (N, h_l, w_l) map 1 − cos(F_t, F_s) along the channels."""
        self._check_fitted(self.decoder_)
        images = self._images(samples)
        parts = []
        for start in range(0, len(images), 16):
            teacher = self.teacher(images[start : start + 16])
            parts.append(
                [
                    1 - F.cosine_similarity(t, s, dim=1)
                    for t, s in zip(teacher, self._student(teacher), strict=True)
                ]
            )
        return [torch.cat([part[s] for part in parts]) for s in range(len(parts[0]))]

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        size = (self.image_size, self.image_size)
        stages = self.stage_maps(samples)
        summed = sum(
            F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0] for m in stages
        )
        maps = self._maps(summed, samples)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
