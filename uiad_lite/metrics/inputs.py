"""Turning user inputs (numpy arrays, torch tensors, lists) into validated numpy arrays.

Two kinds of failure are kept apart on purpose:

* malformed input (empty, shapes that disagree, NaN/inf scores, labels that are not 0/1) raises a
  plain ``ValueError``: the caller made a mistake;
* well-formed input on which a metric has no value (e.g. only one class present, no ground-truth
  region) raises :class:`UndefinedMetricError`, a ``ValueError`` subclass, so that
  :func:`uiad_lite.metrics.evaluate` can skip exactly these metrics and say why.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class UndefinedMetricError(ValueError):
    """The inputs are well formed but the metric has no value for them (e.g. one class only)."""


def to_numpy(values: Any) -> np.ndarray:
    """A numpy view/copy of ``values``; torch tensors are detached and moved to the CPU."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def as_scores(values: Any, name: str) -> np.ndarray:
    """Real-valued anomaly scores (higher = more anomalous); keeps float32/float64 as given.

    Integer and bool scores become float64, float16 becomes float32 (both exact). Finiteness is
    checked by the caller when it is cheaper there (see :func:`check_finite`).
    """
    array = to_numpy(values)
    if array.size == 0:
        raise ValueError(f"{name} is empty; expected at least one score")
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def as_binary(values: Any, name: str) -> np.ndarray:
    """Ground truth as a bool array; accepts bool or numbers that are all 0 or 1."""
    array = to_numpy(values)
    if array.size == 0:
        raise ValueError(f"{name} is empty; expected at least one label")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be bool or 0/1 numbers, got dtype {array.dtype}")
    is_one = array == 1
    if not np.all(is_one | (array == 0)):
        found = np.unique(array[~(is_one | (array == 0))])[:5]
        raise ValueError(f"{name} must contain only 0/1 (or bool) values, found e.g. {found.tolist()}")
    return is_one


def check_same_shape(scores: np.ndarray, labels: np.ndarray, score_name: str, label_name: str) -> None:
    """Raise when scores and ground truth do not line up element by element."""
    if scores.shape != labels.shape:
        raise ValueError(
            f"{score_name} has shape {scores.shape} but {label_name} has shape {labels.shape}; "
            "they must match element by element"
        )


def check_finite(scores: np.ndarray, name: str) -> None:
    """Raise when scores contain NaN or +-inf (a ranking metric cannot order them)."""
    finite = np.isfinite(scores)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(f"{name} contains {bad} NaN/inf value(s); anomaly scores must be finite")


def check_maps_and_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate pixel-level inputs: (N, H, W) or (H, W) maps and binary masks of the same shape."""
    score_maps = as_scores(maps, "maps")
    truth = as_binary(masks, "masks")
    check_same_shape(score_maps, truth, "maps", "masks")
    if score_maps.ndim == 2:
        score_maps, truth = score_maps[None], truth[None]
    if score_maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (H, W), got shape {score_maps.shape}")
    return score_maps, truth


def require_both_classes(n_positive: int, n_negative: int, metric: str, unit: str) -> None:
    """Raise :class:`UndefinedMetricError` unless both anomalous and normal items are present."""
    if n_positive == 0 or n_negative == 0:
        raise UndefinedMetricError(
            f"{metric} needs both normal and anomalous {unit}; got {n_positive} anomalous and "
            f"{n_negative} normal"
        )


def check_fraction(value: float, name: str, *, allow_zero: bool = False) -> float:
    """A number in (0, 1] (or [0, 1] with ``allow_zero``), e.g. an FPR limit or a recall level."""
    value = float(value)
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value
