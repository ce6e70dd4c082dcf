"""EfficientAD-S (Batzner et al. 2024): a tiny student-teacher pair plus an autoencoder, in milliseconds.

* **PDN** (patch description network, small variant): four convolutions (4×4, 4×4, 3×3, 4×4) and two
  2×2 average poolings, no padding in the released setting: every output vector sees exactly a
  33×33-pixel patch (:func:`receptive_field` checks it) and the network is cheap enough for ~2 ms per
  image on a GPU.
* **Teacher**: a PDN distilled from a pretrained backbone's features. The paper distils WideResNet-101
  (layer2 + layer3, PatchCore's aggregation) on ImageNet. ImageNet is not reachable offline, so here the
  teacher is distilled on **the normal training images at hand** (the images passed to ``fit``, all
  of them, validation ones included), with the package's frozen backbone (EfficientNet-Lite0 stages 2+3
  in ``quick``) as the target: its stages are 3×3 averaged, resized to the PDN's grid and concatenated
  (optionally pooled to ``out_channels``, as PatchCore reduces them). It learns what the backbone says
  about this product's patches; it has seen no defect, which is the same condition the student trains
  under. The geometry is the released pretraining's: the backbone reads the image at ``backbone_scale``
  times the PDN's size (512 px for 256), and the PDN being distilled has **padding**, so its output grid
  covers the whole image as the backbone's does and output j sees the patch centred on target cell j
  (``tests`` check: within 2 px). The distilled weights are then used without padding, as released.
  Distilling the unpadded PDN instead asks its border outputs for the features of patches up to 17 px
  away from the ones they see; on textures such a teacher barely learns.
* **Student** PDN with twice the channels: the first half regresses the teacher's (channel-normalised)
  output with the **hard feature loss**: only the squared errors at or above their ``hard_quantile``
  (0.999) quantile in the batch count. The paper's ImageNet penalty on the student is left out (no
  ImageNet offline). The second half regresses the autoencoder's output (that loss trains both, as
  released).
* **Autoencoder** (logical anomalies): a strided-convolution encoder squeezes the whole image into a
  64-d code, a decoder (upsampling + convolutions) predicts the teacher's output map. It must
  reproduce global layout, so a missing or misplaced part shows up in (AE − student) even when every
  33-px patch looks normal. Trained on colour-jittered images (brightness, contrast, saturation
  0.8–1.2), as released.
* **Maps**: M_ST = mean_c (T̂ − S_st)², M_AE = mean_c (A − S_ae)². Each is normalised with the 0.9
  and 0.995 quantiles q_a, q_b of its values on held-back normal images: 0.1 (M − q_a)/(q_b − q_a)
  (:func:`quantile_normalise`; q_a -> 0, q_b -> 0.1), then combined as (M_ST + M_AE)/2, upsampled to
  the input size (no smoothing); image score = the map's maximum.
* Released training: Adam lr 1e-4, weight decay 1e-5, 70 000 steps of batch 1, lr ×0.1 after 95 %,
  256 px; teacher pretraining: 60 000 steps of batch 16, lr 1e-4. Here ``epochs`` (``teacher_epochs``)
  passes over the training images in batches of ``batch_size`` (``teacher_batch_size``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import Backbone
from uiad_lite.features.patch_features import aggregate_neighbourhood
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.teacher_student.distillation import DistillationDetector, check_finite, images_of


def small_pdn(out_channels: int, width: int = 128, padding: bool = False) -> nn.Sequential:
    """EfficientAD-S's PDN: widths (w, 2w, 2w, out), w = 128 as released; ``padding`` = the released
    option (3, 3, 1, 0) that keeps the grid larger."""
    pad = (3, 3, 1) if padding else (0, 0, 0)
    return nn.Sequential(
        nn.Conv2d(3, width, 4, padding=pad[0]), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2, padding=pad[2]),
        nn.Conv2d(width, 2 * width, 4, padding=pad[1]), nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=pad[2]),
        nn.Conv2d(2 * width, 2 * width, 3, padding=pad[2]), nn.ReLU(inplace=True),
        nn.Conv2d(2 * width, out_channels, 4),
    )  # fmt: skip


def receptive_field(network: nn.Sequential) -> int:
    """Receptive field (pixels) of one output position of a chain of convolutions and poolings."""
    field, jump = 1, 1
    for layer in network:
        if isinstance(layer, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)):
            kernel = layer.kernel_size[0] if isinstance(layer.kernel_size, tuple) else layer.kernel_size
            stride = layer.stride[0] if isinstance(layer.stride, tuple) else layer.stride
            field += (kernel - 1) * jump
            jump *= stride
    return field


class AutoEncoder(nn.Module):
    """EfficientAD's autoencoder: 5 strided convolutions, a 1×1 and global pooling to a 64-d code,
    upsample + conv stages back
    to ``out_channels`` on the PDN's output grid (dropout 0.2 in the decoder, as released)."""

    def __init__(self, out_channels: int, grid: int, width: int = 64) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w // 2, 4, 2, 1), nn.ReLU(True), nn.Conv2d(w // 2, w // 2, 4, 2, 1), nn.ReLU(True),
            nn.Conv2d(w // 2, w, 4, 2, 1), nn.ReLU(True), nn.Conv2d(w, w, 4, 2, 1), nn.ReLU(True),
            nn.Conv2d(w, w, 4, 2, 1), nn.ReLU(True), nn.Conv2d(w, w, 1),
        )  # fmt: skip
        # intermediate sizes of the released decoder (3, 8, 15, 32, 63, 127 for a 56 grid), scaled to ours
        self.sizes = [max(2, round(grid * f)) for f in (3 / 56, 8 / 56, 15 / 56, 32 / 56, 63 / 56, 127 / 56)]
        self.grid = grid
        self.decoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, w, 3, 1, 1), nn.ReLU(True), nn.Dropout(0.2)) for _ in self.sizes
        )
        self.head = nn.Sequential(
            nn.Conv2d(w, w, 3, 1, 1), nn.ReLU(True), nn.Conv2d(w, out_channels, 3, 1, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.encoder(images), 1)  # the 64-d code
        for size, stage in zip(self.sizes, self.decoder, strict=True):
            x = stage(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.head(F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False))


def hard_feature_loss(teacher: torch.Tensor, student: torch.Tensor, quantile: float = 0.999) -> torch.Tensor:
    """Mean of the squared differences at or above their ``quantile`` (paper Sec. 3.2, L_hard)."""
    squared = (teacher - student).pow(2)
    threshold = torch.quantile(squared.flatten()[:16_000_000], quantile)
    return squared[squared >= threshold].mean()


def quantile_normalise(maps: torch.Tensor, q_a: float, q_b: float) -> torch.Tensor:
    """0.1 (M − q_a) / (q_b − q_a): q_a (normal maps' 0.9 quantile) -> 0, q_b (0.995) -> 0.1."""
    return 0.1 * (maps - q_a) / max(q_b - q_a, 1e-12)


class EfficientAD(DistillationDetector):
    """EfficientAD-S: PDN teacher (distilled from ``backbone``), PDN student, autoencoder.

    Args:
        out_channels: teacher output channels (None: the backbone's; the paper reduces WRN features to 384).
        pdn_width: first PDN width (released: 128); ``ae_width``: autoencoder width (released: 64).
        teacher_epochs, teacher_learning_rate, teacher_batch_size: Adam passes over the training images
            (rate, batch) to distil the teacher PDN from the backbone (released: lr 1e-4, batch 16, ImageNet).
        backbone_scale: the backbone reads the images at this multiple of ``image_size`` (released: 2).
        hard_quantile: the hard feature loss's quantile (0.999).
        validation_fraction: share of the training images held back for the map quantiles (at least one
            image, and at least one left for training; the released code holds back 10 %).
    """

    def __init__(
        self,
        backbone: str | Backbone = "efficientnet_lite0",
        layers: Sequence[int | str] = (2, 3),
        image_size: int = 256,
        epochs: int = 70,
        teacher_epochs: int = 70,
        batch_size: int = 8,
        learning_rate: float = 1e-4,
        teacher_learning_rate: float = 1e-4,
        teacher_batch_size: int = 16,
        backbone_scale: int = 2,
        weight_decay: float = 1e-5,
        out_channels: int | None = None,
        pdn_width: int = 128,
        ae_width: int = 64,
        hard_quantile: float = 0.999,
        validation_fraction: float = 0.1,
        quantiles: tuple[float, float] = (0.9, 0.995),
        device: str = "auto",
        seed: int = 0,
        pretrained: bool = True,
        progress: bool = True,
    ) -> None:
        if not 0 < hard_quantile < 1 or not 0 < validation_fraction < 1:
            raise ValueError(f"hard_quantile and validation_fraction must lie in (0, 1), got "
                             f"{hard_quantile}, {validation_fraction}")  # fmt: skip
        if teacher_batch_size < 1 or backbone_scale < 1:
            raise ValueError(f"teacher_batch_size and backbone_scale must be at least 1, got "
                             f"{teacher_batch_size}, {backbone_scale}")  # fmt: skip
        super().__init__(backbone, layers, image_size, epochs, batch_size, device, seed, pretrained, progress)
        self.teacher_epochs, self.learning_rate, self.weight_decay = (
            teacher_epochs,
            learning_rate,
            weight_decay,
        )
        self.teacher_learning_rate, self.teacher_batch_size = teacher_learning_rate, int(teacher_batch_size)
        self.backbone_scale = int(backbone_scale)
        self.pdn_width, self.ae_width, self.hard_quantile = pdn_width, ae_width, hard_quantile
        self.validation_fraction, self.quantiles = validation_fraction, tuple(quantiles)
        self.out_channels = out_channels
        self.channels = out_channels or sum(self.teacher.info.channels)
        self.teacher_loss_history_: list[float] = []
        self.pdn_teacher_ = self.student_ = self.autoencoder_ = None
        self.teacher_mean_ = self.teacher_std_ = None
        self.map_quantiles_: dict[str, tuple[float, float]] = {}
        self.validation_indices_: np.ndarray | None = None

    def _targets(self, samples: Sequence[Sample], grid: int) -> torch.Tensor:
        """The backbone's stages on the images at ``backbone_scale`` times the PDN's input size, 3×3
        averaged, resized to the padded PDN's grid, concatenated, pooled to ``out_channels``, standardised.
        Computed 16 images at a time, so only the pooled targets of all images are held at once."""
        parts = []
        for start in range(0, len(samples), 16):
            images = images_of(samples[start : start + 16], self.backbone_scale * self.image_size, self.name)
            features = [aggregate_neighbourhood(f) for f in self._teacher_features(images)]
            joined = torch.cat(
                [F.interpolate(f, size=grid, mode="bilinear", align_corners=False) for f in features], 1
            )
            if self.out_channels:  # PatchCore's reduction: adaptive average pooling over the channels
                n, c, h, w = joined.shape
                columns = joined.permute(0, 2, 3, 1).reshape(-1, 1, c)
                pooled = F.adaptive_avg_pool1d(columns, self.out_channels)
                joined = pooled.reshape(n, h, w, -1).permute(0, 3, 1, 2)
            parts.append(joined)
        joined = torch.cat(parts)
        return (joined - joined.mean((0, 2, 3), keepdim=True)) / joined.std(
            (0, 2, 3), keepdim=True
        ).clamp_min(1e-6)

    def _train(self, loss_of, parameters, count: int, epochs: int, desc: str) -> list[float]:
        rate = self.teacher_learning_rate if desc.startswith("teacher") else self.learning_rate
        optimiser = torch.optim.Adam(parameters, lr=rate, weight_decay=self.weight_decay)
        history, saved = [], (self.epochs, self.batch_size)
        self.epochs = epochs
        if desc.startswith("teacher"):
            self.batch_size = self.teacher_batch_size
        for epoch, batches in self._epochs(count, f"EfficientAD {desc}"):
            if epoch == max(1, int(0.95 * epochs)) and not desc.startswith("teacher"):
                for group in optimiser.param_groups:  # released: lr x 0.1 after 95 % of the steps
                    group["lr"] = rate * 0.1
            total = 0.0
            for batch in batches:
                loss = loss_of(torch.from_numpy(batch))
                check_finite(loss, epoch, f"EfficientAD ({desc})")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            history.append(total / count)
        self.epochs, self.batch_size = saved
        return history

    def _jitter(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One of brightness / contrast / saturation, factor in [0.8, 1.2], per image (released AE input)."""
        out = []
        for image in images:
            factor = 0.8 + 0.4 * torch.rand((), generator=generator).item()
            kind = int(torch.randint(3, (), generator=generator))
            grey = (image * torch.tensor([0.299, 0.587, 0.114], device=image.device).view(3, 1, 1)).sum(0)
            anchor = (torch.zeros_like(image), grey.mean().expand_as(image), grey.expand_as(image))[kind]
            out.append((anchor + factor * (image - anchor)).clamp(0, 1))
        return torch.stack(out)

    def fit(self, samples: Sequence[Sample]) -> EfficientAD:
        images = self._images(samples)
        if len(images) < 2:
            raise ValueError(
                f"EfficientAD needs at least 2 training images (one held back), got {len(images)}"
            )
        torch.manual_seed(self.seed)
        # distilled with padding, so that its output grid covers the image as the backbone's does (released
        # pretraining.py); then used without padding (the same weights), as released
        padded = small_pdn(self.channels, self.pdn_width, padding=True).to(self.device)
        size = self.image_size
        padded_grid = padded(torch.zeros(1, 3, size, size, device=self.device)).shape[-1]
        targets = self._targets(list(samples), padded_grid)
        net_in = self._normalise(images)
        self.teacher_loss_history_ = self._train(
            lambda i: F.mse_loss(padded(net_in[i]), targets[i]), padded.parameters(), len(images),
            self.teacher_epochs, "teacher distillation",
        )  # fmt: skip
        teacher = small_pdn(self.channels, self.pdn_width).to(self.device)
        teacher.load_state_dict(padded.state_dict())
        grid = teacher(torch.zeros(1, 3, size, size, device=self.device)).shape[-1]
        teacher.eval().requires_grad_(False)
        with torch.no_grad():
            outputs = torch.cat([teacher(net_in[i : i + 16]) for i in range(0, len(images), 16)])
        self.teacher_mean_ = outputs.mean((0, 2, 3), keepdim=True)
        self.teacher_std_ = outputs.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
        self.pdn_teacher_ = teacher

        rng = np.random.default_rng(self.seed)
        held = max(1, min(len(images) - 1, round(self.validation_fraction * len(images))))
        order = rng.permutation(len(images))
        train, validation = torch.from_numpy(order[held:]), torch.from_numpy(order[:held])
        self.validation_indices_ = order[:held]
        student = small_pdn(2 * self.channels, self.pdn_width).to(self.device)
        autoencoder = AutoEncoder(self.channels, grid, self.ae_width).to(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        c = self.channels

        targets = (outputs - self.teacher_mean_) / self.teacher_std_  # the student's target (no augmentation)

        def loss_of(index: torch.Tensor) -> torch.Tensor:
            chosen = train[index]
            batch = images[chosen]
            st = hard_feature_loss(targets[chosen], student(net_in[chosen])[:, :c], self.hard_quantile)
            jittered = self._normalise(self._jitter(batch, generator))
            with torch.no_grad():
                target_aug = self._teacher_out(jittered)
            ae = autoencoder(jittered)
            return (
                st + (target_aug - ae).pow(2).mean() + (ae - student(jittered)[:, c:]).pow(2).mean()
            )

        self.student_, self.autoencoder_ = student.train(), autoencoder.train()
        parameters = [*student.parameters(), *autoencoder.parameters()]
        self.loss_history_ = self._train(
            loss_of, parameters, len(train), self.epochs, "student + autoencoder"
        )
        student.eval(), autoencoder.eval()
        st_maps, ae_maps = self._raw_maps(images[validation])
        self.map_quantiles_ = {
            name: tuple(float(torch.quantile(m.flatten(), q)) for q in self.quantiles)
            for name, m in (("st", st_maps), ("ae", ae_maps))
        }
        return self

    def _teacher_out(self, net_in: torch.Tensor) -> torch.Tensor:
        return (self.pdn_teacher_(net_in) - self.teacher_mean_) / self.teacher_std_

    @torch.no_grad()
    def _raw_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, g, g) un-normalised student-teacher and autoencoder-student maps."""
        st_parts, ae_parts, c = [], [], self.channels
        for start in range(0, len(images), 16):
            net_in = self._normalise(images[start : start + 16])
            teacher, student = self._teacher_out(net_in), self.student_(net_in)
            st_parts.append((teacher - student[:, :c]).pow(2).mean(1))
            ae_parts.append((self.autoencoder_(net_in) - student[:, c:]).pow(2).mean(1))
        return torch.cat(st_parts), torch.cat(ae_parts)

    def branch_maps(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        """The quantile-normalised (N, g, g) maps of both branches, keys "st" and "ae"."""
        self._check_fitted(self.student_)
        st, ae = self._raw_maps(self._images(samples))
        return {"st": quantile_normalise(st, *self.map_quantiles_["st"]),
                "ae": quantile_normalise(ae, *self.map_quantiles_["ae"])}  # fmt: skip

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        branches = self.branch_maps(samples)
        combined = 0.5 * branches["st"] + 0.5 * branches["ae"]
        # the unpadded PDN's first output sits 16 px (4 cells) in from the border: pad 4 cells, as released
        maps = self._maps(F.pad(combined, (4, 4, 4, 4)), samples, sigma=0.0)
        return Prediction(scores=maps.reshape(len(maps), -1).max(axis=1), maps=maps)
