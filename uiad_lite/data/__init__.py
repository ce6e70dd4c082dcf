"""Datasets: the `Sample` record, the catalogue, loaders for the survey's datasets, the synthetic benchmark.

from uiad_lite.data import load, categories, DATASETS
splits = load("synthetic", category="brick")          # generated on first use
splits = load("mvtec_ad", root="/data/mvtec", category="bottle", size="full")
"""

from uiad_lite.data.lazy import LazySamples, SampleRecord
from uiad_lite.data.loading import categories, load
from uiad_lite.data.registry import DATASETS, REGISTRY, DatasetInfo, catalogue, info
from uiad_lite.data.sample import Sample
from uiad_lite.data.splits import SETTINGS, DatasetSplits

__all__ = [
    "DATASETS",
    "REGISTRY",
    "SETTINGS",
    "DatasetInfo",
    "DatasetSplits",
    "LazySamples",
    "Sample",
    "SampleRecord",
    "catalogue",
    "categories",
    "info",
    "load",
]
