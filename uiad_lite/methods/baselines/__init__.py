"""Baselines outside the survey's taxonomy: floors every method must beat (no learned features)."""

from uiad_lite.methods.baselines.pixel_gaussian import PixelGaussian

__all__ = ["PixelGaussian"]
