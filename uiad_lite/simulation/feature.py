"""Feature-level anomaly simulation: SimpleNet's Gaussian noise and GLASS's gradient ascent.

Features are numpy arrays or torch tensors, either (N, C) rows of patch features or a (C, H, W)
feature map (every spatial position is one C-dimensional feature). Generators return
``(altered_features, labels)`` in the same library, dtype and device as the input; ``labels`` is
(N,) or (H, W) bool and is True exactly on the feature vectors that were changed.

Why GLASS rather than GeneralAD's feature copy-paste: GLASS's global synthesis is the one the
survey singles out for steering synthetic features with the discriminator's gradient, which needs
autograd and so shows something Gaussian noise cannot: anomalies pushed towards the normal region
(harder negatives) yet kept at a controlled distance from the normal feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def _as_rows(features: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(M, C) float tensor view of the features plus the label shape ((N,) or (H, W))."""
    if not isinstance(features, np.ndarray | torch.Tensor):
        raise ValueError(f"features must be a numpy array or torch tensor, got {type(features).__name__}")
    tensor = torch.as_tensor(features)
    if not tensor.is_floating_point():
        raise ValueError(f"features must be floating point, got {tensor.dtype}")
    if tensor.ndim == 2:
        rows, label_shape = tensor, (tensor.shape[0],)
    elif tensor.ndim == 3:
        channels, height, width = tensor.shape
        rows, label_shape = tensor.reshape(channels, height * width).T, (height, width)
    else:
        raise ValueError(f"features must have shape (N, C) or (C, H, W), got {tuple(tensor.shape)}")
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ValueError(f"features are empty: shape {tuple(tensor.shape)}")
    if not torch.isfinite(rows).all():
        raise ValueError("features contain NaN or infinite values")
    return rows, label_shape


def _from_rows(rows: torch.Tensor, like: ArrayOrTensor) -> ArrayOrTensor:
    """Undo :func:`_as_rows`: back to the input's layout and library."""
    shaped = rows if like.ndim == 2 else rows.T.reshape(like.shape)
    if isinstance(like, np.ndarray):
        return shaped.detach().cpu().numpy().astype(like.dtype, copy=False)
    return shaped.detach()


def _labels_out(labels: torch.Tensor, shape: tuple[int, ...], like: ArrayOrTensor) -> ArrayOrTensor:
    labels = labels.reshape(shape)
    return labels.cpu().numpy() if isinstance(like, np.ndarray) else labels.to(like.device)


def _select_rows(count: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Bool (count,): which feature vectors become anomalous (``round(fraction * count)``, at least 1)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    chosen = np.zeros(count, dtype=bool)
    chosen[rng.choice(count, size=max(1, round(fraction * count)), replace=False)] = True
    return chosen


def _gaussian_start(
    rows: torch.Tensor, rng: np.random.Generator, sigma: float, fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Selected rows plus i.i.d. N(0, sigma^2) noise (drawn with numpy, so any device gives the same)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    chosen = torch.from_numpy(_select_rows(rows.shape[0], fraction, rng)).to(rows.device)
    noise = torch.from_numpy(rng.normal(0.0, sigma, size=tuple(rows.shape))).to(rows.device, rows.dtype)
    return rows + noise * chosen[:, None], chosen


def gaussian_feature_noise(
    features: ArrayOrTensor, rng: np.random.Generator, sigma: float = 0.015, fraction: float = 1.0
) -> tuple[ArrayOrTensor, ArrayOrTensor]:
    """SimpleNet's anomalous feature generator (Liu et al. 2023): ``f + eps`` with
    eps ~ N(0, sigma^2 I) (paper default sigma = 0.015). ``fraction`` of the feature vectors (all by
    default, as SimpleNet perturbs a copy of every normal feature) receive noise; labels mark
    exactly those that changed."""
    rows, label_shape = _as_rows(features)
    noisy, _ = _gaussian_start(rows, rng, sigma, fraction)
    labels = (noisy != rows).any(dim=1)
    return _from_rows(noisy, features), _labels_out(labels, label_shape, features)


def gradient_guided_noise(
    features: ArrayOrTensor,
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    rng: np.random.Generator,
    sigma: float = 0.015,
    steps: int = 20,
    step_size: float = 0.001,
    radius: tuple[float, float] = (0.5, 1.0),
    project_every: int = 5,
    fraction: float = 1.0,
) -> tuple[ArrayOrTensor, ArrayOrTensor]:
    """GLASS global anomaly synthesis (Chen et al. 2024, "GAS" branch), defaults as released
    (github.com/cqylunlun/GLASS, ``glass.py`` with ``--noise 0.015 --step 20``, manifold branch):

    1. start from SimpleNet noise ``g = f + eps`` (same draw as :func:`gaussian_feature_noise`);
    2. ``steps`` times, climb the discriminator's loss for calling ``g`` anomalous,
       ``L = BCE(D(g), 1) = softplus(-D(g))``, by a step of length ``step_size`` along the per-row
       normalised gradient: this pulls ``g`` towards what D still accepts as normal;
    3. after every ``project_every``-th step, project the offset ``d = g - f`` onto the shell
       ``radius[0] <= ||d|| <= radius[1]`` (GLASS's truncated projection, r = 0.5 to 2r), so the
       feature never falls back onto the normal one nor drifts arbitrarily far. The released radii
       are absolute, for its 1536-channel projected features (where the starting noise has norm
       about 0.015 * sqrt(1536) = 0.59); on features of another scale, scale the radii with them.

    ``discriminator`` maps an (M, C) tensor to M anomaly logits (higher = more anomalous; pass the
    pre-sigmoid output), scoring each row on its own. As grad L = -sigmoid(-D) grad D, the step
    direction is taken from grad(-D): the same direction per row, without underflow when D
    saturates. Only the features receive gradients: the discriminator's parameters and ``.grad``
    fields are untouched, but its train/eval mode is the caller's (BatchNorm layers in train mode
    update their running statistics). Returns ``(features, labels)`` like :func:`gaussian_feature_noise`.
    """
    r_min, r_max = float(radius[0]), float(radius[1])
    if not 0.0 <= r_min <= r_max:
        raise ValueError(f"radius must be (r_min, r_max) with 0 <= r_min <= r_max, got {radius!r}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if int(project_every) != project_every or project_every < 1:
        raise ValueError(f"project_every must be a positive integer, got {project_every!r}")
    if not step_size >= 0:
        raise ValueError(f"step_size must be non-negative, got {step_size!r}")
    rows, label_shape = _as_rows(features)
    start, chosen = _gaussian_start(rows, rng, sigma, fraction)
    normal, synthetic = rows[chosen].detach(), start[chosen].detach()

    def project(candidate: torch.Tensor) -> torch.Tensor:
        offset = candidate - normal
        length = offset.norm(dim=1, keepdim=True)
        target = length.clamp(min=r_min, max=r_max)
        return normal + offset * (target / length.clamp_min(torch.finfo(offset.dtype).tiny))

    with torch.enable_grad():
        for step in range(int(steps)):
            synthetic = synthetic.detach().requires_grad_(True)
            raw = discriminator(synthetic)
            logits = raw.reshape(-1)
            if logits.shape[0] != synthetic.shape[0]:
                raise ValueError(f"discriminator must return one logit per feature ({synthetic.shape[0]}), "
                                 f"got shape {tuple(raw.shape)}")
            (gradient,) = torch.autograd.grad((-logits).sum(), synthetic)
            length = gradient.norm(dim=1, keepdim=True)
            safe_length = length.clamp_min(torch.finfo(length.dtype).tiny)
            direction = torch.where(length > 0, gradient / safe_length, 0.0)
            synthetic = synthetic.detach() + step_size * direction
            if (step + 1) % int(project_every) == 0:
                synthetic = project(synthetic)
    altered = rows.detach().clone()
    altered[chosen] = synthetic.detach()
    labels = (altered != rows).any(dim=1)
    return _from_rows(altered, features), _labels_out(labels, label_shape, features)
