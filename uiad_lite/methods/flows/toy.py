"""A 2-D toy for chapter 06: the package's coupling flow fitted to two moons, with snapshots of the
density it assigns and of where it sends the points (change of variables in one picture)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from uiad_lite.methods.flows.coupling import (
    FlowSequence,
    all_in_one_block,
    fc_subnet,
    gaussian_log_likelihood,
)


def two_moons(count: int = 600, noise: float = 0.08, seed: int = 0) -> np.ndarray:
    """(count, 2) points on two interleaved half circles with Gaussian noise, standardised."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, np.pi, count)
    upper = rng.random(count) < 0.5
    x = np.where(upper, np.cos(angles), 1 - np.cos(angles))
    y = np.where(upper, np.sin(angles), 0.5 - np.sin(angles))
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((count, 2))
    return ((points - points.mean(0)) / points.std(0)).astype(np.float32)


def fit_toy_flow(
    points: np.ndarray,
    blocks: int = 8,
    steps: int = 600,
    snapshots: Sequence[int] = (0, 25, 100, 600),
    learning_rate: float = 3e-3,
    extent: float = 3.0,
    grid: int = 61,
    seed: int = 0,
) -> list[dict]:
    """Train a flow of ``blocks`` AllInOneBlock-like steps by maximum likelihood (full batch, Adam) and
    return, at each step in ``snapshots``: the step, the loss, z = f(points), and log p(x) on a
    ``grid`` × ``grid`` lattice over [-extent, extent]²."""
    torch.manual_seed(seed)
    flow = FlowSequence(
        [
            layer
            for b in range(blocks)
            for layer in all_in_one_block(2, fc_subnet(64.0), clamp=2.0, seed=seed + b, soft_permutation=True)
        ],
        name="toy flow",
    )
    optimiser = torch.optim.Adam(flow.parameters(), lr=learning_rate)
    data = torch.from_numpy(points)
    axis = np.linspace(-extent, extent, grid, dtype=np.float32)
    lattice = torch.from_numpy(np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2))
    wanted, result = set(int(s) for s in snapshots), []
    for step in range(max(wanted) + 1):
        if step in wanted:
            with torch.no_grad():
                z, log_det = flow(data)
                density = gaussian_log_likelihood(*flow(lattice)).reshape(grid, grid)
                loss = -gaussian_log_likelihood(z, log_det).mean()
            result.append(
                dict(step=step, loss=float(loss), z=z.numpy(), axis=axis, log_density=density.numpy())
            )
        loss = -gaussian_log_likelihood(*flow(data)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return result
