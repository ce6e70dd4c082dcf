"""Parameter sweeps that reuse one set of features instead of refitting a detector per setting.

:func:`coreset_sweep` measures PatchCore's coreset trade-off (Roth et al. 2022, Sec. 3.2 and
Table 1/2): how image AUROC, AU-PRO, search time and memory change with the fraction of normal
patches kept in the memory bank. It relies on a property of greedy k-center selection
(:mod:`uiad_lite.methods.memory_bank.coreset`, exact or approximate): points are picked one at a
time, so the coreset for a small ratio is a prefix of the coreset for a larger ratio (same seed,
same random projection, same sampler). The training patches are extracted once and ordered once;
every ratio then only costs a nearest-neighbour search over a prefix of that order.

:func:`patchcore_sweep` wraps the extraction: it uses a :class:`~uiad_lite.methods.memory_bank.PatchCore`
instance only for its feature extractor and hyper-parameters, so the features match what
``PatchCore.fit`` / ``predict`` would compute with the same settings.

Two measurements go with it: :func:`coverage_table` (how far normal patches are from their nearest
coreset member, greedy against random subsets, the quantity of PatchCore's Eq. 5) and
:func:`fitted_state_mb` (the memory a fitted detector keeps for prediction).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.memory_bank import PatchCore, coreset_indices, nearest_neighbours, score_against_bank
from uiad_lite.metrics import aupro, image_auroc, pixel_auroc

SWEEP_COLUMNS = (
    "ratio",
    "bank_size",
    "bank_mb",
    "i_auroc",
    "p_auroc",
    "aupro",
    "search_ms_per_image",
    "predict_ms_per_image",
)


def fitted_state_mb(detector: object) -> float:
    """Megabytes a fitted detector keeps for prediction, besides its frozen backbone: the tensors,
    arrays and module parameters among its attributes whose names end in ``_`` (the fitted state, in
    scikit-learn's convention), e.g. PatchCore's ``memory_bank_`` or PaDiM's ``mean_`` and
    ``inverse_covariance_``. Unlike a Python-heap measurement, this counts torch storage on any device."""
    total = 0
    found = False
    for name, value in vars(detector).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in value.parameters())
        else:
            continue
        found = True
    if not found:
        raise ValueError(f"{type(detector).__name__} holds no fitted tensors (is it fitted?)")
    return total / 2**20


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads (``None``: leave the setting alone).

    Greedy coreset selection makes thousands of small matrix-vector products; on a small or busy CPU,
    splitting each one across threads costs more in synchronisation than it gains.
    """
    if count is None:
        yield
        return
    if count < 1:
        raise ValueError(f"thread count must be positive, got {count}")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class PatchBank:
    """Every normal patch feature of one category and the greedy k-center order over them.

    ``patches`` is (M, d); ``order`` holds indices into ``patches`` in the order the greedy search
    picked them, long enough for the largest ratio below 1 that was asked for.
    """

    patches: torch.Tensor
    order: np.ndarray

    def coreset_size(self, ratio: float) -> int:
        """PatchCore's coreset size for ``ratio``: floor(ratio·M), at least 1 (all M for ratio 1)."""
        _check_ratio(ratio)
        total = self.patches.shape[0]
        return total if ratio == 1 else max(1, int(total * ratio))

    def coreset(self, ratio: float) -> np.ndarray:
        """Indices of the coreset for ``ratio`` (a prefix of ``order``; everything for ratio 1)."""
        count = self.coreset_size(ratio)
        if ratio == 1:
            return np.arange(count, dtype=np.int64)
        if count > len(self.order):
            raise ValueError(
                f"ratio {ratio} needs {count} coreset points but the bank was ordered for {len(self.order)}; "
                f"build it with a larger max_ratio"
            )
        return self.order[:count]


def _check_ratio(ratio: float) -> None:
    if not 0 < ratio <= 1:
        raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")


def order_bank(
    patches: torch.Tensor,
    max_ratio: float,
    seed: int = 0,
    projection_dim: int | None = None,
    threads: int | None = 1,
    progress: bool = False,
    *,
    sampler: str = "approximate",
    starting_points: int = 10,
) -> PatchBank:
    """Run PatchCore's coreset selection once, for ``max_ratio``, and keep the pick order.

    ``seed``, ``projection_dim``, ``sampler`` and ``starting_points`` mean what they mean in
    :func:`~uiad_lite.methods.memory_bank.coreset_indices`, so ``order[:k]`` is exactly the coreset
    that ``PatchCore(coreset_ratio=k/M, seed=seed, ...)`` with the same options would keep.
    ``threads`` torch CPU threads are used for the greedy search (see :func:`torch_threads`).
    """
    if patches.ndim != 2:
        raise ValueError(f"patches must be an (M, d) matrix, got shape {tuple(patches.shape)}")
    _check_ratio(max_ratio)
    if max_ratio == 1:
        return PatchBank(patches, np.arange(patches.shape[0], dtype=np.int64))
    with torch_threads(threads if patches.device.type == "cpu" else None):
        order = coreset_indices(
            patches, max_ratio, seed=seed, projection_dim=projection_dim, progress=progress,
            sampler=sampler, starting_points=starting_points,
        )  # fmt: skip
    return PatchBank(patches, order)


def coverage_table(
    bank: PatchBank, ratios: Sequence[float], queries: int = 5000, seed: int = 0, max_block: int = 2**24
) -> pd.DataFrame:
    """How well a subset of the bank stands in for all of it, greedy coreset against random subset.

    For every ratio: the distance from each of ``queries`` randomly drawn normal patches to its nearest
    member of the greedy coreset (``bank.coreset(ratio)``) and of a uniformly random subset of the same
    size; columns ``ratio``, ``size``, ``greedy_max``, ``greedy_mean``, ``random_max``, ``random_mean``.
    The maximum over all patches is the objective the coreset minimises (PatchCore Eq. 5); over a random
    sample of queries it is an estimate from below.
    """
    total = bank.patches.shape[0]
    if queries < 1:
        raise ValueError(f"queries must be positive, got {queries}")
    rng = np.random.default_rng(seed)
    probe = np.sort(rng.choice(total, size=min(queries, total), replace=False))
    probes = bank.patches[torch.from_numpy(probe).to(bank.patches.device)]
    rows = []
    for ratio in sorted(set(float(r) for r in ratios)):
        greedy = bank.coreset(ratio)
        random = np.sort(rng.choice(total, size=len(greedy), replace=False))
        row = {"ratio": ratio, "size": len(greedy)}
        for name, subset in (("greedy", greedy), ("random", random)):
            members = bank.patches[torch.from_numpy(subset).to(bank.patches.device)]
            distances = nearest_neighbours(probes, members, 1, max_block)[0][:, 0]
            row[f"{name}_max"] = float(distances.max())
            row[f"{name}_mean"] = float(distances.mean())
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["ratio", "size", "greedy_max", "greedy_mean", "random_max", "random_mean"]
    )


def score_with_bank(
    test_features: torch.Tensor,
    bank: torch.Tensor,
    image_size: int,
    output_size: tuple[int, int],
    num_neighbors: int = 9,
    sigma: float = 4.0,
    max_block: int = 2**24,
    distance: str = "squared",
    image_score: str = "max",
) -> Prediction:
    """PatchCore's test-time scoring against a given memory bank (what ``PatchCore.predict`` does
    after feature extraction, :func:`~uiad_lite.methods.memory_bank.score_against_bank`).

    test_features: (N, d, h, w) patch features; bank: (B, d).
    """
    return score_against_bank(
        test_features, bank, image_size, output_size, distance=distance, image_score=image_score,
        num_neighbors=num_neighbors, sigma=sigma, max_block=max_block,
    )  # fmt: skip


def _labels_and_masks(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([int(sample.label) for sample in samples])
    masks = []
    for index, sample in enumerate(samples):
        if sample.mask is None:
            if sample.label == 1:
                raise ValueError(f"test sample #{index} ({sample.path}) is anomalous but has no mask")
            reference = sample.require("image").image
            masks.append(np.zeros(reference.shape[:2], dtype=bool))
        else:
            masks.append(np.asarray(sample.mask, dtype=bool))
    shapes = {mask.shape for mask in masks}
    if len(shapes) != 1:
        raise ValueError(f"all test masks must share one size for the sweep, got {sorted(shapes)}")
    return labels, np.stack(masks)


def coreset_sweep(
    bank: PatchBank,
    test_features: torch.Tensor,
    test_samples: Sequence[Sample],
    ratios: Sequence[float],
    *,
    image_size: int,
    num_neighbors: int = 9,
    sigma: float = 4.0,
    extraction_ms_per_image: float = 0.0,
    max_block: int = 2**24,
    progress: bool = False,
    distance: str = "squared",
    image_score: str = "max",
) -> pd.DataFrame:
    """Score the test set against the coreset of every ratio; one row per ratio (ascending).

    Columns (:data:`SWEEP_COLUMNS`): ``ratio``; ``bank_size`` (patches kept); ``bank_mb`` (float32
    storage of the bank); ``i_auroc``, ``p_auroc``, ``aupro``; ``search_ms_per_image`` (nearest-neighbour
    search, re-weighting and map post-processing, measured here); ``predict_ms_per_image`` = that plus
    ``extraction_ms_per_image`` (the backbone's share, the same for every ratio).
    """
    if len(ratios) == 0:
        raise ValueError("give at least one coreset ratio")
    for ratio in ratios:
        _check_ratio(ratio)
    if len(test_samples) != test_features.shape[0]:
        raise ValueError(f"{len(test_samples)} test samples but {test_features.shape[0]} feature maps")
    labels, masks = _labels_and_masks(test_samples)
    if len(set(labels.tolist())) < 2:
        raise ValueError("the test set needs both good (0) and anomalous (1) samples to compute AUROC")
    rows = []
    for ratio in tqdm(
        sorted(set(float(r) for r in ratios)), desc="coreset sweep", disable=not progress, leave=False
    ):
        keep = torch.from_numpy(bank.coreset(ratio)).to(bank.patches.device)
        memory = bank.patches[keep].contiguous()
        start = time.perf_counter()
        prediction = score_with_bank(
            test_features, memory, image_size, masks.shape[1:], num_neighbors, sigma, max_block,
            distance=distance, image_score=image_score,
        )  # fmt: skip
        search_ms = 1000.0 * (time.perf_counter() - start) / len(test_samples)
        rows.append(
            {
                "ratio": ratio,
                "bank_size": int(memory.shape[0]),
                "bank_mb": memory.shape[0] * memory.shape[1] * 4 / 2**20,
                "i_auroc": image_auroc(prediction.scores, labels),
                "p_auroc": pixel_auroc(prediction.maps, masks),
                "aupro": aupro(prediction.maps, masks),
                "search_ms_per_image": search_ms,
                "predict_ms_per_image": search_ms + extraction_ms_per_image,
            }
        )
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


@dataclass
class PatchCoreSweep:
    """What :func:`patchcore_sweep` returns: the table and the features behind it (for figures)."""

    table: pd.DataFrame
    bank: PatchBank
    test_features: torch.Tensor


def patchcore_sweep(
    detector: PatchCore,
    train: Sequence[Sample],
    test: Sequence[Sample],
    ratios: Sequence[float],
    *,
    threads: int | None = 1,
    progress: bool = False,
) -> PatchCoreSweep:
    """Extract train and test patch features once with ``detector``'s extractor, order the bank for
    the largest ratio and run :func:`coreset_sweep`. ``detector`` need not be fitted; its
    ``coreset_ratio`` is ignored in favour of ``ratios``, every other setting is used."""
    if len(ratios) == 0:
        raise ValueError("give at least one coreset ratio")
    features = detector.extractor(train, desc="sweep: train features")
    patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).contiguous()
    start = time.perf_counter()
    test_features = detector.extractor(test, desc="sweep: test features")
    extraction_ms = 1000.0 * (time.perf_counter() - start) / max(len(test), 1)
    below_one = [float(r) for r in ratios if float(r) < 1]
    bank = order_bank(
        patches,
        max(below_one) if below_one else 1.0,
        seed=detector.seed,
        projection_dim=detector.projection_dim,
        threads=threads,
        progress=progress,
        sampler=detector.sampler,
        starting_points=detector.starting_points,
    )
    table = coreset_sweep(
        bank,
        test_features,
        test,
        ratios,
        image_size=detector.image_size,
        num_neighbors=detector.num_neighbors,
        sigma=detector.sigma,
        extraction_ms_per_image=extraction_ms,
        max_block=detector.max_block,
        progress=progress,
        distance=detector.distance,
        image_score=detector.image_score,
    )
    return PatchCoreSweep(table, bank, test_features)
