"""The four fusion building blocks of RGB+3D anomaly detection (survey Sec. 5; DESIGN §5).

Each named multimodal detector is a composition of these blocks and of one nearest-neighbour memory bank
(:class:`PatchBank`):

* **early** — :class:`ModalityScaler` + concatenation: RGB and 3D patch features are stacked per patch
  before the detector. BTF (Horwitz & Hoshen 2023, released ``RGBFPFHFeatures``) concatenates them *raw*
  (``normalise="none"``): one Euclidean distance over both, so the modality with the larger spread
  decides it. Pooled FPFH histograms sum to 100 per angle (entries up to tens); WideResNet-50 features
  after ReLU and average pooling are mostly below one, so with BTF's backbone the distance is nearly all
  3D and a colour-only defect is drowned (with the quick EfficientNet-Lite0 features the two spreads are
  closer; chapter 11 prints the measured ratio).
  ``normalise="unit"`` centres each modality and divides it by the root mean squared norm of its
  centred training patches, so both contribute equally to a distance; ``scale_3d`` multiplies the 3D part
  afterwards (the chapter's knob that shows the drowning).
* **middle** — :class:`ContrastiveFusion`: a learned mapping trained on normal patches only (M3DM's
  unsupervised feature fusion, Wang et al. 2023, ``models/feature_fusion.py``: per-modality LayerNorm +
  MLP of ratio 4, 256-d heads, patch-wise InfoNCE with temperature 1 where the RGB and 3D features of the
  same patch are the positive pair; the fused feature is the concatenation of the two MLP outputs).
  CFM's mappings (the other middle fusion) live in :mod:`.cfm`.
* **late** — :class:`ScoreNormaliser` + :func:`combine`: one detector per modality; each modality's patch
  scores are normalised with statistics of *held-back* normal data (``"zscore"``: mean / std;
  ``"quantile"``: median / (q99 - median)) and combined by ``"sum"``, ``"max"`` or ``"product"``. A
  product needs positive numbers, so it multiplies the ratios score / held-back median; any positive
  rescaling of one modality then changes every image by the same factor, so a product needs no
  calibration at all (CFM's released score is such a product).
* **hybrid** — :class:`DecisionLayer`: several scores per image (and per patch) go through a decision
  layer fit on normal data: M3DM's ``SGDOneClassSVM(nu=0.5, max_iter=1000, random_state=42)`` on the
  vectors (s_xyz, s_rgb); the released code takes ``score_samples`` (w·x, larger = more anomalous for
  non-negative scores) as the anomaly score. A linear one-class SVM on distances is thus a weighted sum
  whose weights come from the margin of the normal data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from uiad_lite.methods.memory_bank.coreset import coreset_indices
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.point_cloud.btf import reweighted_score

NORMALISE_FEATURES = ("none", "unit")
NORMALISE_SCORES = ("zscore", "quantile")
COMBINE = ("sum", "max", "product")


def choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")
    return value


def as_patches(features: torch.Tensor) -> torch.Tensor:
    """(N, C, g, g) -> (N·g·g, C), row-major over samples then grid."""
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


class PatchBank:
    """PatchCore's memory bank (BTF's released step): coreset of the normal patches, Euclidean distance to
    the nearest bank patch, image score = the worst valid patch re-weighted (BTF / PatchCore Eq. 7)."""

    def __init__(self, coreset_ratio: float = 0.1, seed: int = 0, device: str | torch.device = "cpu",
                 progress: bool = False, reweight: bool = True) -> None:  # fmt: skip
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        self.coreset_ratio, self.seed, self.device = coreset_ratio, seed, device
        self.progress, self.reweight = progress, reweight
        self.bank_: torch.Tensor | None = None

    def fit(self, patches: torch.Tensor) -> PatchBank:
        if len(patches) == 0:
            raise ValueError("no valid training patch to put in the memory bank")
        keep = coreset_indices(
            patches, self.coreset_ratio, self.seed, progress=self.progress, sampler="greedy"
        )
        self.bank_ = patches[torch.from_numpy(keep)].contiguous().to(self.device)
        return self

    def score(
        self, features: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """(N, C, g, g) features -> (N, g, g) patch distances (0 where not ``valid``), (N,) image scores."""
        count, dim, height, width = features.shape
        if self.bank_ is None or self.bank_.shape[1] != dim:
            got = None if self.bank_ is None else tuple(self.bank_.shape)
            raise ValueError(f"memory bank {got} does not match {dim}-d features")
        valid = torch.ones(count, height, width, dtype=torch.bool) if valid is None else valid
        patches = as_patches(features).to(self.device)
        found, nearest = nearest_neighbours(patches, self.bank_, 1)
        distances = found[:, 0].cpu().reshape(count, -1) * valid.reshape(count, -1)
        nearest = nearest[:, 0].cpu().reshape(count, -1)
        patches = patches.cpu().reshape(count, height * width, dim)
        bank, scores = self.bank_.cpu(), []
        for index in range(count):
            keep = valid[index].reshape(-1)
            if not keep.any():
                scores.append(0.0)
            elif not self.reweight:
                scores.append(float(distances[index, keep].max()))
            else:
                scores.append(reweighted_score(distances[index, keep], nearest[index, keep],
                                               patches[index, keep], bank))  # fmt: skip
        return distances.reshape(count, height, width), np.asarray(scores)


class ModalityScaler:
    """Early fusion's per-modality normalisation and concatenation (module docstring)."""

    def __init__(self, normalise: str = "none", scale_3d: float = 1.0) -> None:
        self.normalise = choice("normalise", normalise, NORMALISE_FEATURES)
        self.scale_3d = float(scale_3d)
        self.stats_: dict[str, tuple[torch.Tensor, float]] | None = None

    def fit(self, rgb: torch.Tensor, xyz: torch.Tensor) -> ModalityScaler:
        """``rgb`` (M, C1) and ``xyz`` (M, C2) normal patches (valid ones)."""
        self.stats_ = {}
        for name, patches in (("rgb", rgb), ("xyz", xyz)):
            if self.normalise == "none":
                self.stats_[name] = (torch.zeros(patches.shape[1]), 1.0)
            else:
                mean = patches.mean(dim=0)
                spread = float((patches - mean).square().sum(dim=1).mean().sqrt().clamp_min(1e-12))
                self.stats_[name] = (mean, spread)
        return self

    def transform(self, rgb: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """(N, C1, g, g) and (N, C2, g, g) -> (N, C1 + C2, g, g) fused grids."""
        if self.stats_ is None:
            raise RuntimeError("ModalityScaler.transform() called before fit()")
        parts = []
        for name, grid, factor in (("rgb", rgb, 1.0), ("xyz", xyz, self.scale_3d)):
            mean, spread = self.stats_[name]
            parts.append(factor * (grid - mean[None, :, None, None]) / spread)
        return torch.cat(parts, dim=1)


class ModalityMLP(nn.Module):
    """M3DM's per-modality branch: LayerNorm, Linear(d, ratio·d), GELU, Linear(ratio·d, d)."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = max(1, int(dim * ratio))
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ContrastiveFusion(nn.Module):
    """Middle fusion: M3DM's patch-wise contrastive feature fusion (module docstring)."""

    def __init__(self, rgb_dim: int, xyz_dim: int, ratio: float = 4.0, head_dim: int = 256,
                 temperature: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        self.rgb_mlp, self.xyz_mlp = ModalityMLP(rgb_dim, ratio), ModalityMLP(xyz_dim, ratio)
        self.rgb_head, self.xyz_head = nn.Linear(rgb_dim, head_dim), nn.Linear(xyz_dim, head_dim)
        self.temperature = float(temperature)

    def fuse(self, rgb: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """(M, C1), (M, C2) patches -> (M, C2 + C1) fused patches (released order: xyz first)."""
        return torch.cat([self.xyz_mlp(xyz), self.rgb_mlp(rgb)], dim=1)

    def loss(self, rgb: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """InfoNCE over a batch of patches: the RGB and 3D features of one patch are the positive pair."""
        q = nn.functional.normalize(self.rgb_head(self.rgb_mlp(rgb)), dim=1)
        k = nn.functional.normalize(self.xyz_head(self.xyz_mlp(xyz)), dim=1)
        logits = q @ k.T / self.temperature
        labels = torch.arange(len(q))
        return nn.functional.cross_entropy(logits, labels) * (2 * self.temperature)

    def fit(self, rgb: torch.Tensor, xyz: torch.Tensor, epochs: int = 5, batch_size: int = 256,
            lr: float = 1e-3, seed: int = 0, progress: bool = False) -> list[float]:  # fmt: skip
        """Train on normal (valid) patches; returns the mean loss of each epoch."""
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=1e-4)
        history = []
        self.train()
        for _ in tqdm(range(epochs), desc="contrastive fusion", disable=not progress, leave=False):
            order, losses = torch.randperm(len(rgb), generator=generator), []
            for start in range(0, len(order) - 1, batch_size):
                pick = order[start : start + batch_size]
                if len(pick) < 2:
                    continue
                loss = self.loss(rgb[pick], xyz[pick])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
            history.append(float(np.mean(losses)) if losses else float("nan"))
        self.eval()
        return history


class ScoreNormaliser:
    """Late fusion's per-modality score normalisation, fit on held-back normal patch scores."""

    def __init__(self, method: str = "zscore") -> None:
        self.method = choice("normalise", method, NORMALISE_SCORES)
        self.stats_: dict[str, tuple[float, float, float]] = {}

    def fit(self, name: str, scores: torch.Tensor | np.ndarray) -> ScoreNormaliser:
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"no held-back normal scores for modality {name!r}")
        median = float(np.median(values))
        if self.method == "zscore":
            loc, scale = float(values.mean()), float(values.std())
        else:
            loc, scale = median, float(np.quantile(values, 0.99)) - median
        self.stats_[name] = (loc, max(scale, 1e-12), max(median, 1e-12))
        return self

    def normalise(self, name: str, scores: torch.Tensor) -> torch.Tensor:
        loc, scale, _ = self.stats_[name]
        return (scores - loc) / scale

    def ratio(self, name: str, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.stats_[name][2]


def combine(parts: Sequence[torch.Tensor], how: str) -> torch.Tensor:
    """Sum, maximum or product of equally shaped score tensors (already normalised / ratios)."""
    choice("combine", how, COMBINE)
    if not parts:
        raise ValueError("combine() needs at least one score tensor")
    stacked = torch.stack(list(parts))
    if how == "sum":
        return stacked.sum(dim=0)
    if how == "max":
        return stacked.max(dim=0).values
    return stacked.prod(dim=0)


class DecisionLayer:
    """Hybrid fusion: M3DM's linear one-class SVM over per-modality score vectors (module docstring)."""

    def __init__(self, nu: float = 0.5, max_iter: int = 1000, seed: int = 42) -> None:
        from sklearn.linear_model import SGDOneClassSVM

        self.model = SGDOneClassSVM(nu=nu, max_iter=max_iter, random_state=seed, tol=1e-4)
        self.fitted_ = False

    def fit(self, scores: np.ndarray) -> DecisionLayer:
        """``scores`` (n, k): k per-modality scores of n normal images (or patches)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or len(scores) < 2:
            raise ValueError(f"the decision layer needs an (n >= 2, k) score array, got shape {scores.shape}")
        self.model.fit(scores)
        self.fitted_ = True
        return self

    def score(self, scores: np.ndarray) -> np.ndarray:
        """The released anomaly score: ``score_samples`` = w·x."""
        if not self.fitted_:
            raise RuntimeError("DecisionLayer.score() called before fit()")
        return self.model.score_samples(np.asarray(scores, dtype=np.float64))

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.model.coef_).reshape(-1)
