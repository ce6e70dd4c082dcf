"""PatchCore's coreset subsampling (Roth et al. 2022, Sec. 3.2, Eq. 5, Alg. 1) in its two versions.

The minimax coreset of Eq. 5 keeps the subset M_C of the memory bank M that minimises the largest
distance from any bank point to its nearest member of M_C. Both versions approximate it greedily,
adding one point at a time: the point farthest from everything picked so far (k-center greedy), on
a random low-dimensional projection of the features. They differ in how they start and project:

* ``"approximate"`` — what the authors' released code runs for the paper's results
  (``ApproximateGreedyCoresetSampler`` in amazon-science/patchcore-inspection, ``sampler -p 0.1
  approx_greedy_coreset``): features are mapped to 128 dimensions by a bias-free linear layer with
  PyTorch's default initialisation (entries uniform in ±1/sqrt(d)); ten random anchors are drawn and
  every point starts with its *mean* Euclidean distance to them, so the first pick is the point
  farthest on average from the anchors; each pick then lowers every point's distance to
  min(current, distance to the pick). No N×N matrix is ever formed.
* ``"greedy"`` — the textbook k-center greedy that anomalib runs: a Gaussian Johnson-Lindenstrauss
  projection (eps = 0.9) and a random first point; thereafter the same rule.

Both return the picks in order, so the coreset of a smaller ratio is a prefix of a larger one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

SAMPLERS = ("approximate", "greedy")


def johnson_lindenstrauss_dim(n_samples: int, eps: float = 0.9) -> int:
    """Dimensions a random projection needs to keep pairwise distances within 1 ± eps
    (Dasgupta & Gupta bound, the rule anomalib uses for PatchCore's coreset with eps = 0.9)."""
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    return int(math.ceil(4 * math.log(max(n_samples, 2)) / (eps**2 / 2 - eps**3 / 3)))


def _farthest_first(
    points: torch.Tensor, nearest: torch.Tensor, count: int, first: int | None, progress: bool, squared: bool
) -> np.ndarray:
    """k-center greedy from start distances ``nearest``; picks ``first`` first when given, else the argmax.
    ``squared`` says whether ``nearest`` holds squared distances (the update then stays squared)."""
    squared_norms = (points * points).sum(dim=1)
    picks: list[int] = []
    current = int(torch.argmax(nearest)) if first is None else int(first)
    for step in tqdm(range(count), desc="coreset", disable=not progress, leave=False):
        picks.append(current)
        if step == count - 1:
            break
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2: one matrix-vector product per pick
        distance = (
            torch.mv(points, points[current]).mul_(-2.0).add_(squared_norms).add_(squared_norms[current])
        )
        distance = distance.clamp_min_(0) if squared else distance.clamp_min_(0).sqrt_()
        torch.minimum(nearest, distance, out=nearest)
        nearest[picks[-1]] = -float("inf")  # never pick a point twice (matters only for duplicates)
        current = int(torch.argmax(nearest))
    return np.asarray(picks, dtype=np.int64)


def greedy_coreset(
    features: torch.Tensor, count: int, start_index: int = 0, progress: bool = False
) -> np.ndarray:
    """Exact k-center greedy (PatchCore Alg. 1) from ``start_index``: ``count`` distinct indices in
    the order they were picked, each the point farthest (Euclidean) from all earlier picks."""
    total = features.shape[0]
    if not 1 <= count <= total:
        raise ValueError(f"coreset size must be in [1, {total}], got {count}")
    if not 0 <= start_index < total:
        raise ValueError(f"start_index must be in [0, {total}), got {start_index}")
    points = features.float().contiguous()
    nearest = torch.full((total,), float("inf"), device=points.device)
    return _farthest_first(points, nearest, count, start_index, progress, squared=True)


def approximate_greedy_coreset(
    features: torch.Tensor, count: int, starting_points: int = 10, seed: int = 0, progress: bool = False
) -> np.ndarray:
    """The released ``ApproximateGreedyCoresetSampler``: every point starts at its mean Euclidean
    distance to ``starting_points`` random anchors (seeded); then ``count`` farthest-first picks."""
    total = features.shape[0]
    if not 1 <= count <= total:
        raise ValueError(f"coreset size must be in [1, {total}], got {count}")
    if starting_points < 1:
        raise ValueError(f"starting_points must be positive, got {starting_points}")
    points = features.float().contiguous()
    rng = np.random.default_rng(seed)
    anchors = rng.choice(total, size=min(starting_points, total), replace=False)
    anchor_index = torch.from_numpy(anchors).to(points.device)
    nearest = torch.cdist(points, points[anchor_index]).mean(dim=1)
    return _farthest_first(points, nearest, count, None, progress, squared=False)


def linear_projection_matrix(in_dim: int, out_dim: int, seed: int) -> np.ndarray:
    """(in_dim, out_dim) with entries uniform in ±1/sqrt(in_dim): the distribution of the weights of a
    freshly initialised ``torch.nn.Linear(in_dim, out_dim, bias=False)``, which the released sampler uses."""
    bound = 1.0 / math.sqrt(in_dim)
    rng = np.random.default_rng(seed)
    return rng.uniform(-bound, bound, size=(in_dim, out_dim)).astype(np.float32)


def coreset_indices(
    features: torch.Tensor,
    ratio: float,
    seed: int = 0,
    projection_dim: int | None = None,
    progress: bool = False,
    *,
    sampler: str = "approximate",
    starting_points: int = 10,
) -> np.ndarray:
    """PatchCore's coreset: ``floor(ratio·N)`` (at least 1) indices of ``features`` (N, d), in pick order.

    ``sampler="approximate"`` (released code): linear projection to ``projection_dim`` (default 128;
    skipped when d already equals it) and :func:`approximate_greedy_coreset`.
    ``sampler="greedy"`` (anomalib): Gaussian projection to ``projection_dim`` (default: the
    Johnson-Lindenstrauss size for eps = 0.9; skipped when not smaller than d) and
    :func:`greedy_coreset` from a seeded random start. ``ratio`` = 1 keeps everything.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown coreset sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    if not 0 < ratio <= 1:
        raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")
    total, dim = features.shape
    if ratio == 1:
        return np.arange(total, dtype=np.int64)
    count = max(1, int(total * ratio))
    rng = np.random.default_rng(seed)
    if sampler == "approximate":
        target_dim = 128 if projection_dim is None else int(projection_dim)
        reduced = features.float()
        if target_dim != dim:
            matrix = linear_projection_matrix(dim, target_dim, int(rng.integers(2**31)))
            reduced = reduced @ torch.from_numpy(matrix).to(features.device)
        return approximate_greedy_coreset(reduced, count, starting_points, int(rng.integers(2**31)), progress)
    target_dim = johnson_lindenstrauss_dim(total) if projection_dim is None else int(projection_dim)
    reduced = features
    if target_dim < dim:
        matrix = rng.standard_normal((dim, target_dim)) / np.sqrt(target_dim)
        reduced = features.float() @ torch.from_numpy(matrix.astype(np.float32)).to(features.device)
    start = int(rng.integers(total))
    return greedy_coreset(reduced, count, start_index=start, progress=progress)
