"""An on-disk cache of frozen-backbone features, shared by every method and chapter of a run.

PaDiM, PatchCore, CFA and the simulation-trained head read the same frozen stages of the same
backbone for the same images; on two CPU cores the forward passes are most of their cost. This cache
stores the backbone's raw stage outputs (before any neighbourhood aggregation, stage combination or
channel reduction, which differ between methods) once per

    (dataset, data version, category, split, backbone, weights, image size)

and hands them to whoever asks next. An entry holds the stages extracted so far, each under its layer
index: PaDiM asks for layers 1-3 and PatchCore, next, for layers 2-3 of the same images, so PatchCore
reads two of PaDiM's three stages and runs no forward pass; a request for a layer the entry lacks runs
the backbone once and adds that layer to the entry. How each part enters the key:

* category and split: from the samples;
* dataset and data version: the samples' file paths and a digest of the very pixels the backbone sees
  (after the loader's resizing and cropping), so any change of data or preprocessing is a new key;
* backbone, weights, image size: the backbone's name and a digest of its parameters (a re-downloaded
  or retrained checkpoint is a new key), the network input size. A stage's output does not depend on
  which other stages are returned, so the layers are not part of the key but of the entry.

Entries live in ``$UIAD_FEATURE_CACHE`` (default ``$UIAD_DATA/feature_cache``, else
``~/.cache/uiad_lite/features``; ``UIAD_FEATURE_CACHE=off`` switches the cache off), one file per key,
written to a temporary file and renamed into place. Each file stores its own key: a file that cannot
be read (truncated, corrupt) or holds another key is deleted and the features are extracted afresh,
never used. The folder is bounded (``UIAD_FEATURE_CACHE_MB``, default 2048): the least recently used
entries go first.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

FORMAT = 2
DEFAULT_LIMIT_MB = 2048
OFF = ("0", "off", "none", "false", "no")


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when the cache is switched off."""
    value = os.environ.get("UIAD_FEATURE_CACHE", "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value)
    if os.environ.get("UIAD_DATA"):
        return Path(os.environ["UIAD_DATA"]) / "feature_cache"
    return Path.home() / ".cache" / "uiad_lite" / "features"


def limit_bytes() -> int:
    raw = os.environ.get("UIAD_FEATURE_CACHE_MB", str(DEFAULT_LIMIT_MB))
    try:
        megabytes = float(raw)
    except ValueError:
        raise ValueError(f"UIAD_FEATURE_CACHE_MB must be a number of megabytes, got {raw!r}") from None
    return int(megabytes * 2**20)


def backbone_digest(backbone) -> str:
    """A digest of the backbone's parameters and buffers (computed once per backbone object)."""
    cached = getattr(backbone, "_uiad_parameter_digest", None)
    if cached is None:
        hasher = hashlib.sha256()
        for name, tensor in backbone.state_dict().items():
            hasher.update(name.encode())
            hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        cached = hasher.hexdigest()
        backbone._uiad_parameter_digest = cached
    return cached


def feature_key(samples: Sequence, image_of: Callable[[int], np.ndarray], backbone, image_size: int) -> dict:
    """The key of the backbone features of ``samples`` (reads every image once, to digest its pixels)."""
    pixels = hashlib.sha256()
    for index in range(len(samples)):
        image = np.ascontiguousarray(image_of(index))
        pixels.update(f"{image.shape}{image.dtype}".encode())
        pixels.update(image.tobytes())
    paths = hashlib.sha256("\n".join(str(getattr(s, "path", "")) for s in samples).encode())
    info = backbone.info
    return {
        "format": FORMAT,
        "categories": sorted({str(getattr(s, "category", "")) for s in samples}),
        "splits": sorted({str(getattr(s, "split", "")) for s in samples}),
        "count": len(samples),
        "paths": paths.hexdigest(),
        "pixels": pixels.hexdigest(),
        "backbone": info.name,
        "weights": backbone_digest(backbone),
        "image_size": int(image_size),
    }


def _file_for(folder: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return folder / f"{digest[:40]}.pt"


def _read_entry(path: Path, key: dict) -> dict[int, torch.Tensor] | None:
    """The stages stored at ``path`` by layer, or ``None`` when the file is bad or holds another key."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        stages = dict(zip(entry["layers"], entry["stages"], strict=True))
        valid = entry.get("key") == key and all(
            isinstance(layer, int) and isinstance(t, torch.Tensor) and t.ndim == 4
            and t.shape[0] == key["count"]
            for layer, t in stages.items()
        )  # fmt: skip
    except Exception:  # truncated, corrupt or another format
        valid = False
    return stages if valid else None


def load(key: dict, layers: Sequence[int], folder: Path | None = None) -> list[torch.Tensor] | None:
    """The cached outputs of stages ``layers`` for ``key``, or ``None`` when any is missing.

    A bad or foreign entry is deleted."""
    folder = cache_dir() if folder is None else folder
    if folder is None:
        return None
    path = _file_for(folder, key)
    if not path.exists():
        return None
    stages = _read_entry(path, key)
    if stages is None:
        path.unlink(missing_ok=True)
        return None
    if not set(layers) <= set(stages):
        return None
    os.utime(path)  # most recently used
    return [stages[layer] for layer in layers]


def store(
    key: dict, layers: Sequence[int], stages: list[torch.Tensor], folder: Path | None = None
) -> Path | None:
    """Add stages ``layers`` to the entry of ``key`` (written atomically), then trim the folder."""
    folder = cache_dir() if folder is None else folder
    if folder is None:
        return None
    if len(layers) != len(stages):
        raise ValueError(f"{len(stages)} stage outputs for {len(layers)} layers {list(layers)}")
    folder.mkdir(parents=True, exist_ok=True)
    path = _file_for(folder, key)
    merged = (_read_entry(path, key) if path.exists() else None) or {}
    for layer, stage in zip(layers, stages, strict=True):
        merged[int(layer)] = stage.detach().cpu().contiguous()
    order = sorted(merged)
    handle, temporary = tempfile.mkstemp(prefix=".entry.", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        torch.save({"key": key, "layers": order, "stages": [merged[layer] for layer in order]}, temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    trim(folder, limit_bytes(), keep=path)
    return path


def trim(folder: Path, limit: int, keep: Path | None = None) -> None:
    """Delete the least recently used entries until the folder holds at most ``limit`` bytes."""
    entries = []
    for path in folder.glob("*.pt"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((stat.st_mtime_ns, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
