"""Anomaly detectors, one module per paradigm family of the survey (see DESIGN.md)."""

from uiad_lite.methods.base import Detector, NotFittedError, Prediction

__all__ = ["Detector", "NotFittedError", "Prediction"]
