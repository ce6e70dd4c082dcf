"""The results registry: one tidy row per (chapter, method, dataset, category), kept in CSV files.

Every chapter calls :func:`record` after evaluating a detector; the benchmark chapter calls
:func:`load`. Each chapter owns one file, ``<results_dir>/<chapter>.csv``; re-running a chapter
replaces its own rows for the same (method, dataset, category) and never touches another chapter's
file. Under the runner a chapter records into a staging copy, and only a successful run replaces the
chapter's whole table (so a re-run with fewer categories leaves no stale rows, and a failed run leaves
the last good table). Files are written atomically (temporary file in the same folder, then
``os.replace``).

The folder is ``$UIAD_RESULTS`` when set (the runner sets it), else ``results/`` in the current
working directory.
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import uiad_lite

KEY_COLUMNS = ("chapter", "method", "dataset", "category")


def results_dir() -> Path:
    """Where result tables live (``$UIAD_RESULTS`` or ``./results``)."""
    return Path(os.environ.get("UIAD_RESULTS", "results")).expanduser()


@dataclass
class Timing:
    """Filled by :func:`measure`: wall seconds and peak memory of the measured block."""

    seconds: float = 0.0
    peak_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _release_freed_memory() -> None:
    """Hand heap pages freed earlier back to the OS (glibc ``malloc_trim``), so that memory the next
    block allocates shows up as resident again; a no-op where glibc is not available."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _resident_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux), None where it cannot be read."""
    try:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def measure(device: str = "cpu", interval: float = 0.005) -> Iterator[Timing]:
    """Time a block and record its peak memory above the level at entry.

    On CPU the resident set size is sampled every ``interval`` seconds by a background thread (this
    sees torch and numpy buffers, which the Python heap tracer does not); where /proc is missing, the
    Python heap peak from tracemalloc is used. On CUDA the allocator's peak is reported. Freed heap pages
    are first handed back to the OS (glibc ``malloc_trim``); still, RSS is a lower bound: memory the
    allocator reuses from pages it kept does not make it grow.
    """
    timing = Timing()
    use_cuda = str(device).startswith("cuda")
    if use_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    _release_freed_memory()
    baseline = _resident_bytes()
    peak = [baseline or 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], _resident_bytes() or 0)

    sampler = threading.Thread(target=sample, daemon=True) if baseline is not None else None
    started_tracing = baseline is None and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    if sampler is not None:
        sampler.start()
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start
        if sampler is not None:
            done.set()
            sampler.join()
            peak_bytes = max(peak[0], _resident_bytes() or 0) - baseline
        else:
            peak_bytes = tracemalloc.get_traced_memory()[1]
            if started_tracing:
                tracemalloc.stop()
        if use_cuda:
            import torch

            peak_bytes = torch.cuda.max_memory_allocated()
        timing.peak_mb = max(peak_bytes, 0) / 2**20


def record(
    chapter: str,
    method: str,
    dataset: str,
    category: str,
    metrics: Mapping[str, float],
    *,
    fit_seconds: float | None = None,
    predict_ms_per_image: float | None = None,
    peak_memory_mb: float | None = None,
    device: str = "cpu",
    seed: int = 0,
    quick: bool = True,
    backbone: str = "",
    extra: Mapping[str, Any] | None = None,
    folder: Path | str | None = None,
) -> pd.DataFrame:
    """Add (or replace) one row of ``<folder>/<chapter>.csv`` and return the chapter's table."""
    for name, value in {
        "chapter": chapter,
        "method": method,
        "dataset": dataset,
        "category": category,
    }.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"results.record: {name} must be a non-empty string, got {value!r}")
    reserved = {"chapter", "method", "dataset", "category", "fit_s", "predict_ms_per_image", "peak_memory_mb",
                "device", "seed", "quick", "backbone", "version", "python", "recorded_at"}  # fmt: skip
    for name, columns in (("metrics", metrics), ("extra", extra or {})):
        clash = sorted(reserved & set(columns))
        if clash:
            raise ValueError(f"results.record: {name} may not set the registry's own columns {clash}")
    row: dict[str, Any] = {
        "chapter": chapter,
        "method": method,
        "dataset": dataset,
        "category": category,
        **{key: float(value) for key, value in metrics.items()},
        "fit_s": fit_seconds,
        "predict_ms_per_image": predict_ms_per_image,
        "peak_memory_mb": peak_memory_mb,
        "device": str(device),
        "seed": int(seed),
        "quick": bool(quick),
        "backbone": backbone,
        "version": uiad_lite.__version__,
        "python": platform.python_version(),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **dict(extra or {}),
    }
    folder = Path(folder) if folder is not None else results_dir()
    path = folder / f"{_safe_name(chapter)}.csv"
    table = _read(path)
    if not table.empty:
        same = (table["method"] == method) & (table["dataset"] == dataset) & (table["category"] == category)
        table = table[~same]
    table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    _write_atomically(table, path)
    return table


def clear(chapter: str, folder: Path | str | None = None) -> None:
    """Forget every row of one chapter (a chapter may call this at its start for a clean slate)."""
    path = (Path(folder) if folder is not None else results_dir()) / f"{_safe_name(chapter)}.csv"
    path.unlink(missing_ok=True)


def load(folder: Path | str | None = None, chapter: str | None = None) -> pd.DataFrame:
    """All recorded rows (of one chapter, or of every chapter) as one DataFrame."""
    folder = Path(folder) if folder is not None else results_dir()
    paths = [folder / f"{_safe_name(chapter)}.csv"] if chapter else sorted(folder.glob("*.csv"))
    tables = [_read(path) for path in paths]
    tables = [table for table in tables if not table.empty]
    if not tables:
        return pd.DataFrame(columns=list(KEY_COLUMNS))
    return pd.concat(tables, ignore_index=True)


def timed_predict(predict: Callable[[], Any], n_images: int) -> tuple[Any, float]:
    """Run ``predict()`` and return its result and the milliseconds spent per image."""
    start = time.perf_counter()
    result = predict()
    return result, 1000.0 * (time.perf_counter() - start) / max(n_images, 1)


def _safe_name(chapter: str) -> str:
    if not chapter.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"chapter name {chapter!r} must be letters, digits, '_' or '-'")
    return chapter


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"results file {path} is not a readable CSV table: {error}") from error


def _write_atomically(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            table.to_csv(stream, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
