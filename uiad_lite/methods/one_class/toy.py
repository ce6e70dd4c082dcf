"""A two-dimensional picture of the one-class view of normality (chapter 05's first figure).

Normal "features" lie on a curved band in the plane. Three ways to draw a boundary around them:

* the density view (CutPaste's GDE): one Gaussian, score = squared Mahalanobis distance, level sets are
  ellipses that cannot follow the curve;
* the classifier view (SimpleNet): a small discriminator trained with the truncated L1 loss to tell the
  normal points from the same points plus Gaussian noise; its boundary wraps the band at about the
  noise's distance;
* GLASS's global synthesis: the noisy points first climb the discriminator's gradient towards normal and
  are held on a shell around their normal point, so the negatives are near misses and the boundary tighter.

Everything is computed with the package's own pieces (:class:`GaussianDensity`,
:func:`truncated_l1_loss`, :func:`uiad_lite.simulation.gradient_guided_noise`), on the CPU in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from uiad_lite.methods.one_class.gde import GaussianDensity
from uiad_lite.methods.one_class.simplenet import truncated_l1_loss
from uiad_lite.simulation import gaussian_feature_noise, gradient_guided_noise


@dataclass
class ToyNormality:
    """Normal points, grid axes and one (len(ys), len(xs)) anomaly-score surface per view."""

    normal: np.ndarray
    noisy: np.ndarray
    ascended: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    surfaces: dict[str, np.ndarray]


def curved_band(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points on a noisy arc (a banana shape), float32 (count, 2)."""
    angle = rng.uniform(0.15 * np.pi, 0.85 * np.pi, count)
    radius = 1.0 + rng.normal(0, 0.06, count)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle) - 0.5], axis=1).astype(np.float32)


def _discriminator() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2),
                         nn.Linear(32, 1))  # fmt: skip


def _train(normal: torch.Tensor, rng: np.random.Generator, sigma: float, ascent: bool, steps: int) -> tuple:
    model = _discriminator()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    last = normal
    for _ in range(steps):
        noisy, _ = gaussian_feature_noise(normal, rng, sigma=sigma)
        if ascent:  # GLASS: D scores normality here, so its anomaly logit is -D
            noisy, _ = gradient_guided_noise(
                normal, lambda rows: -model(rows)[:, 0], rng, sigma=sigma, steps=3, step_size=0.5 * sigma,
                radius=(0.5 * sigma, sigma), project_every=3,
            )  # fmt: skip
        scores = model(torch.cat([normal, noisy]))[:, 0]
        loss = truncated_l1_loss(scores[: len(normal)], scores[len(normal) :], margin=0.5)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        last = noisy
    return model, last


def toy_normality(count: int = 200, sigma: float = 0.25, steps: int = 150, seed: int = 0,
                  grid: int = 80) -> ToyNormality:  # fmt: skip
    """The three views on one curved band (module docstring); surfaces are anomaly scores on a grid."""
    rng = np.random.default_rng(seed)
    normal = curved_band(count, rng)
    xs, ys = np.linspace(-1.6, 1.6, grid), np.linspace(-1.1, 1.0, grid)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    gde = GaussianDensity(normalise=False, shrinkage=0.0).fit(normal)
    surfaces = {"density (GDE)": gde.mahalanobis(points).reshape(grid, grid)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rows = torch.from_numpy(normal)
        simple, noisy = _train(rows, rng, sigma, ascent=False, steps=steps)
        glass, ascended = _train(rows, rng, sigma, ascent=True, steps=steps)
        with torch.no_grad():
            grid_rows = torch.from_numpy(points)
            surfaces["classifier (SimpleNet noise)"] = (-simple(grid_rows)[:, 0]).numpy().reshape(grid, grid)
            surfaces["classifier (GLASS ascent)"] = (-glass(grid_rows)[:, 0]).numpy().reshape(grid, grid)
    return ToyNormality(normal, np.asarray(noisy), np.asarray(ascended), xs, ys, surfaces)
