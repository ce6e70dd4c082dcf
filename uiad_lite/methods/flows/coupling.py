"""Invertible layers for normalizing flows, written for this package (no FrEIA code).

A flow f maps a feature x to z = f(x) with a tractable Jacobian; with z ~ N(0, I) the change of
variables gives the exact log-likelihood

    log p(x) = log N(f(x); 0, I) + log |det df/dx|.

Every layer here is a ``FlowLayer``: ``forward(x, cond)`` returns ``(y, log_det)`` with ``log_det`` one
value per sample (summed over all non-batch dimensions), ``inverse(y, cond)`` returns x exactly. Inputs
are vectors (B, D) or feature maps (B, C, H, W); channels are dimension 1.

Behaviour matched (read, not copied) from FrEIA's ``AllInOneBlock`` as CFlow-AD (Gudovskiy et al.
2022) and FastFlow (anomalib) use it: one block = affine coupling -> fixed permutation -> global
affine (actnorm), where

* the coupling splits the channels into x1 (the first ceil(C/2)) and x2, feeds x1 (and the condition,
  concatenated) to a subnet whose output a is first scaled by 0.1, then
  ``s = clamp * tanh(a_s)``, ``y2 = x2 * exp(s) + 0.1 * a_t`` ("soft clamping" bounds |s| by clamp);
* the permutation is a fixed random permutation matrix (``permute_soft=False``) or a fixed random
  orthogonal matrix (``permute_soft=True``), |det| = 1 either way;
* the global affine is a per-channel scale and offset, the scale parameterised as
  0.1 * softplus_{beta=0.5}(p) and initialised to 1 ("SOFTPLUS" global affine), the offset at 0.

DifferNet's own coupling (Rudolph et al. 2021, ``glow_coupling_layer``) clamps with
``exp(clamp * 0.636 * atan(s / clamp))`` instead of tanh: ``clamp_mode="atan"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LOG_TWO_PI = float(np.log(2 * np.pi))


def _sum_per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1)


def _channel_view(vector: torch.Tensor, ndim: int) -> torch.Tensor:
    """(C,) -> shape broadcasting over dimension 1 of an ndim-dimensional input."""
    return vector.view(1, -1, *([1] * (ndim - 2)))


class FlowLayer(nn.Module):
    """An invertible layer: ``forward(x, cond) -> (y, log_det)``, ``inverse(y, cond) -> x``."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class ActNorm(FlowLayer):
    """Per-channel affine y = scale * x + offset (Glow's actnorm; AllInOneBlock's global affine).

    ``data_init=True`` sets scale and offset on the first training batch so that every channel leaves
    with zero mean and unit variance (Glow, Kingma & Dhariwal 2018); ``False`` starts at the identity
    as AllInOneBlock does. log|det| = (positions per channel) * sum_c log scale_c.
    """

    def __init__(self, channels: int, data_init: bool = False) -> None:
        super().__init__()
        identity = 2.0 * np.log(np.exp(5.0) - 1.0)  # 0.1 * softplus_{beta=0.5}(identity) == 1
        self.raw_scale = nn.Parameter(torch.full((channels,), float(identity)))
        self.offset = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialised", torch.tensor(not data_init))

    def scale(self) -> torch.Tensor:
        return 0.1 * F.softplus(self.raw_scale, beta=0.5)

    @torch.no_grad()
    def _initialise(self, x: torch.Tensor) -> None:
        dims = [d for d in range(x.ndim) if d != 1]
        mean, std = x.mean(dim=dims), x.std(dim=dims).clamp_min(1e-6)
        target = 1.0 / std  # solve 0.1 * 2 * log(1 + exp(p / 2)) = target for p
        self.raw_scale.copy_(2.0 * torch.log(torch.expm1(target / 0.2).clamp_min(1e-12)))
        self.offset.copy_(-mean * self.scale())
        self.initialised.fill_(True)

    def forward(self, x, cond=None):
        if self.training and not bool(self.initialised):
            self._initialise(x)
        scale = self.scale()
        y = x * _channel_view(scale, x.ndim) + _channel_view(self.offset, x.ndim)
        positions = x[0, 0].numel()
        log_det = (positions * torch.log(scale).sum()).expand(x.shape[0])
        return y, log_det

    def inverse(self, y, cond=None):
        return (y - _channel_view(self.offset, y.ndim)) / _channel_view(self.scale(), y.ndim)


class FixedPermutation(FlowLayer):
    """A fixed (not trained) channel mixing: a random permutation, or a random orthogonal matrix when
    ``soft`` (AllInOneBlock's ``permute_soft``). Seeded; log|det| = 0 in both cases."""

    def __init__(self, channels: int, seed: int = 0, soft: bool = False) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.soft = bool(soft)
        if soft:
            q, r = np.linalg.qr(rng.standard_normal((channels, channels)))
            matrix = q * np.sign(np.diag(r))[None]  # Haar-distributed orthogonal matrix
            self.register_buffer("matrix", torch.tensor(matrix, dtype=torch.get_default_dtype()))
        else:
            order = rng.permutation(channels)
            self.register_buffer("order", torch.from_numpy(order))
            self.register_buffer("inverse_order", torch.from_numpy(np.argsort(order)))

    def _mix(self, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            return x @ matrix.T.to(x.dtype)
        return torch.einsum("ij,bj...->bi...", matrix.to(x.dtype), x)

    def forward(self, x, cond=None):
        y = self._mix(x, self.matrix) if self.soft else x.index_select(1, self.order)
        return y, x.new_zeros(x.shape[0])

    def inverse(self, y, cond=None):
        # orthogonal: the inverse is the transpose
        return self._mix(y, self.matrix.T) if self.soft else y.index_select(1, self.inverse_order)


class AffineCoupling(FlowLayer):
    """Affine coupling (Dinh et al. 2017) with soft-clamped scales, as in AllInOneBlock.

    x = (x1, x2) along channels, x1 the first ceil(C/2); a = 0.1 * subnet([x1, cond]) with 2 * len(x2)
    output channels; s = clamp * tanh(a_s) (or clamp * 0.636 * atan(a_s / clamp), ``clamp_mode="atan"``),
    y2 = x2 * exp(s) + 0.1 * a_t, y1 = x1; log|det| = sum(s). ``subnet_constructor(c_in, c_out)``
    builds the subnet (fully connected for vectors, convolutional for maps). ``scale_outputs=False``
    drops both factors 0.1 (DifferNet's coupling uses the subnet's output as it is).
    """

    def __init__(
        self,
        channels: int,
        subnet_constructor: Callable[[int, int], nn.Module],
        cond_channels: int = 0,
        clamp: float = 2.0,
        clamp_mode: str = "tanh",
        scale_outputs: bool = True,
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"a coupling layer needs at least 2 channels, got {channels}")
        if clamp_mode not in ("tanh", "atan"):
            raise ValueError(f"clamp_mode must be 'tanh' or 'atan', got {clamp_mode!r}")
        self.split = channels - channels // 2
        self.cond_channels = int(cond_channels)
        self.clamp, self.clamp_mode = float(clamp), clamp_mode
        self.output_scale = 0.1 if scale_outputs else 1.0
        self.subnet = subnet_constructor(self.split + self.cond_channels, 2 * (channels - self.split))

    def _scale_shift(self, x1: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cond_channels:
            if cond is None or cond.shape[1] != self.cond_channels:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(
                    f"coupling expects a condition with {self.cond_channels} channels, got {got}"
                )
            x1 = torch.cat([x1, cond.to(x1.dtype)], dim=1)
        a = self.output_scale * self.subnet(x1)
        a_s, a_t = a.chunk(2, dim=1)
        if self.clamp_mode == "tanh":
            s = self.clamp * torch.tanh(a_s)
        else:
            s = self.clamp * 0.636 * torch.atan(a_s / self.clamp)
        return s, self.output_scale * a_t

    def forward(self, x, cond=None):
        x1, x2 = x[:, : self.split], x[:, self.split :]
        s, t = self._scale_shift(x1, cond)
        return torch.cat([x1, x2 * torch.exp(s) + t], dim=1), _sum_per_sample(s)

    def inverse(self, y, cond=None):
        y1, y2 = y[:, : self.split], y[:, self.split :]
        s, t = self._scale_shift(y1, cond)
        return torch.cat([y1, (y2 - t) * torch.exp(-s)], dim=1)


class FlowSequence(FlowLayer):
    """Layers applied in order; log-dets add up. Every output is checked: a layer that produces a
    NaN or infinite value raises ``FloatingPointError`` naming the layer (never a silent NaN map)."""

    def __init__(self, layers: Sequence[FlowLayer], name: str = "flow") -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.name = name

    def forward(self, x, cond=None):
        inputs = x
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer(x, cond)
            log_det = log_det + layer_log_det
        if not (torch.isfinite(x).all() and torch.isfinite(log_det).all()):
            self._raise_for_first_bad_layer(inputs, cond)
        return x, log_det

    @torch.no_grad()
    def _raise_for_first_bad_layer(self, x: torch.Tensor, cond: torch.Tensor | None) -> None:
        """Re-run layer by layer (only once something went wrong) and name the first bad one."""
        if not torch.isfinite(x).all():
            raise FloatingPointError(f"{self.name}: its input already holds NaN/inf values")
        for index, layer in enumerate(self.layers):
            x, layer_log_det = layer(x, cond)
            if not (torch.isfinite(x).all() and torch.isfinite(layer_log_det).all()):
                raise FloatingPointError(
                    f"{self.name}: layer {index} ({type(layer).__name__}) produced NaN/inf values; "
                    f"lower the learning rate or the clamp"
                )
        raise FloatingPointError(f"{self.name}: the summed log-determinant overflowed")

    def inverse(self, y, cond=None):
        for layer in reversed(self.layers):
            y = layer.inverse(y, cond)
        return y


def fc_subnet(hidden_factor: float = 2.0, dropout: float = 0.0) -> Callable[[int, int], nn.Module]:
    """Linear -> ReLU -> Linear with hidden = hidden_factor * c_in (CFlow's ``subnet_fc``: 2 * c_in)."""

    def build(c_in: int, c_out: int) -> nn.Module:
        hidden = max(1, int(hidden_factor * c_in))
        return nn.Sequential(
            nn.Linear(c_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, c_out)
        )

    return build


def conv_subnet(kernel_size: int, hidden_ratio: float = 1.0) -> Callable[[int, int], nn.Module]:
    """Conv(k) -> ReLU -> Conv(k), same padding, hidden = hidden_ratio * c_in (FastFlow's subnet)."""

    def build(c_in: int, c_out: int) -> nn.Module:
        hidden = max(1, int(c_in * hidden_ratio))
        pad = kernel_size // 2
        return nn.Sequential(
            nn.Conv2d(c_in, hidden, kernel_size, padding=pad),
            nn.ReLU(),
            nn.Conv2d(hidden, c_out, kernel_size, padding=pad),
        )

    return build


def all_in_one_block(
    channels: int,
    subnet_constructor: Callable[[int, int], nn.Module],
    cond_channels: int = 0,
    clamp: float = 2.0,
    seed: int = 0,
    soft_permutation: bool = False,
    clamp_mode: str = "tanh",
) -> list[FlowLayer]:
    """One AllInOneBlock-like step: coupling -> fixed permutation -> global affine (identity init)."""
    return [
        AffineCoupling(channels, subnet_constructor, cond_channels, clamp, clamp_mode),
        FixedPermutation(channels, seed=seed, soft=soft_permutation),
        ActNorm(channels, data_init=False),
    ]


def gaussian_log_likelihood(z: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
    """log p(x) = -0.5 * ||z||^2 - D/2 * log(2 pi) + log|det| per sample (D = z's non-batch size)."""
    dims = z[0].numel()
    return -0.5 * _sum_per_sample(z**2) - 0.5 * dims * LOG_TWO_PI + log_det
