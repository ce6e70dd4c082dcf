"""A list-like of Samples that reads files only when an item is accessed.

A loader first *indexes* a category (cheap: file names, labels, defect types) into
`SampleRecord`s, then wraps them in `LazySamples`. Indexing an item reads its files and keeps
the last few Samples in a small cache, so a 500-image category never sits in memory twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from uiad_lite.data.sample import Sample


@dataclass(frozen=True)
class SampleRecord:
    """Where one sample lives on disk and what it is, before any file is opened."""

    category: str
    split: str
    label: int
    defect: str
    path: str
    files: dict[str, str] = field(default_factory=dict)  # role -> path, e.g. {"image": ..., "mask": ...}
    meta: dict[str, Any] = field(default_factory=dict)


SampleReader = Callable[[SampleRecord], Sample]


class LazySamples(Sequence[Sample]):
    """Sequence of Samples read on access (len, indexing, negative indices, slicing, iteration).

    `labels` and `defects` come from the index, without reading any file.
    """

    def __init__(self, records: Sequence[SampleRecord], reader: SampleReader, cache_size: int = 32) -> None:
        self.records: list[SampleRecord] = list(records)
        self.reader = reader
        self.cache_size = cache_size
        self._cache: OrderedDict[int, Sample] = OrderedDict()

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> LazySamples: ...

    def __getitem__(self, index: int | slice) -> Sample | LazySamples:
        if isinstance(index, slice):
            return LazySamples(self.records[index], self.reader, self.cache_size)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"LazySamples indices must be int or slice, not {type(index).__name__}")
        position = int(index)
        if position < 0:
            position += len(self.records)
        if not 0 <= position < len(self.records):
            raise IndexError(f"sample index {index} out of range for {len(self.records)} samples")
        cached = self._cache.get(position)
        if cached is not None:
            self._cache.move_to_end(position)
            return cached
        sample = self.reader(self.records[position])
        if self.cache_size > 0:
            self._cache[position] = sample
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sample

    def __iter__(self) -> Iterator[Sample]:
        for position in range(len(self.records)):
            yield self[position]

    @property
    def labels(self) -> np.ndarray:
        """Image-level labels (0 good, 1 anomalous) without reading files."""
        return np.array([record.label for record in self.records], dtype=np.int64)

    @property
    def defects(self) -> list[str]:
        """Defect type of every sample ("good" for normal ones) without reading files."""
        return [record.defect for record in self.records]

    @property
    def paths(self) -> list[str]:
        return [record.path for record in self.records]

    def subset(self, positions: Sequence[int]) -> LazySamples:
        """A new LazySamples with the records at `positions` (in that order)."""
        return LazySamples([self.records[int(p)] for p in positions], self.reader, self.cache_size)

    def materialize(self) -> list[Sample]:
        """Read every sample now and return a plain list."""
        return [self.reader(record) for record in self.records]

    def __repr__(self) -> str:
        anomalous = int(self.labels.sum()) if self.records else 0
        return f"LazySamples({len(self)} samples, {anomalous} anomalous)"
