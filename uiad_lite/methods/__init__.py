"""Anomaly detectors, one folder per family of the survey, one file per method (see DESIGN.md §1).

``create(name, preset="quick"|"paper", **overrides)`` builds a detector by its lower-case name and
``catalogue()`` lists every registered one with its survey metadata (:mod:`uiad_lite.methods.registry`).
"""

from uiad_lite.methods.base import Detector, NotFittedError, Prediction
from uiad_lite.methods.registry import PRESETS, catalogue, create, detector_class, preset_settings

__all__ = [
    "PRESETS",
    "Detector",
    "NotFittedError",
    "Prediction",
    "catalogue",
    "create",
    "detector_class",
    "preset_settings",
]
