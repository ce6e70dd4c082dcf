"""Fractal Perlin gradient noise, the mask generator behind DRÆM-style anomaly simulation.

Perlin, "An image synthesizer" (SIGGRAPH 1985) and "Improving noise" (SIGGRAPH 2002): random unit
gradients sit on an integer lattice; the noise at a point is the dot product of each surrounding
corner's gradient with the offset from that corner, blended with the quintic fade
``6t^5 - 15t^4 + 10t^3``. Summing octaves of doubling frequency and shrinking amplitude
(``persistence``) gives fractal noise. DRÆM (Zavrtanik et al. 2021) thresholds such noise to draw
irregular anomaly regions; 3DRÆM and 3DSR reuse it on depth maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

# A 2-D Perlin layer with unit gradients is bounded by sqrt(2)/2; this factor maps it onto [-1, 1].
_UNIT_RANGE = math.sqrt(2.0)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Accept ``n`` or ``(rows, cols)`` and check both are positive integers."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (rows, cols), got {value!r}")
    if any(int(v) != v or v < 1 for v in pair):
        raise ValueError(f"{name} must hold positive integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's 2002 quintic interpolant: zero first and second derivative at t = 0 and t = 1."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _gradient_layer(
    height: int, width: int, cells_y: int, cells_x: int, rng: np.random.Generator, tileable: bool
) -> np.ndarray:
    """One octave: a (cells_y x cells_x) lattice of random unit gradients sampled on a height x width grid."""
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(cells_y + 1, cells_x + 1))
    if tileable:  # the last lattice row/column repeats the first, so the field is periodic
        angles[-1, :] = angles[0, :]
        angles[:, -1] = angles[:, 0]
    grad_y, grad_x = np.sin(angles), np.cos(angles)

    pos_y = np.arange(height) * (cells_y / height)
    pos_x = np.arange(width) * (cells_x / width)
    cell_y, cell_x = np.floor(pos_y).astype(int), np.floor(pos_x).astype(int)
    frac_y, frac_x = pos_y - cell_y, pos_x - cell_x

    def corner(dy: int, dx: int) -> np.ndarray:
        gy = grad_y[np.ix_(cell_y + dy, cell_x + dx)]
        gx = grad_x[np.ix_(cell_y + dy, cell_x + dx)]
        return gy * (frac_y - dy)[:, None] + gx * (frac_x - dx)[None, :]

    blend_x = _fade(frac_x)[None, :]
    blend_y = _fade(frac_y)[:, None]
    top_left, bottom_left = corner(0, 0), corner(1, 0)
    top = top_left + blend_x * (corner(0, 1) - top_left)
    bottom = bottom_left + blend_x * (corner(1, 1) - bottom_left)
    return _UNIT_RANGE * (top + blend_y * (bottom - top))


def perlin_noise(
    shape: int | Sequence[int],
    scale: int | Sequence[int],
    rng: np.random.Generator,
    octaves: int = 1,
    persistence: float = 0.5,
    tileable: bool = False,
) -> np.ndarray:
    """Fractal 2-D Perlin noise in [-1, 1] (Perlin 1985/2002), float64 array of ``shape``.

    scale        lattice cells along (rows, cols) of the first octave; more cells = higher frequency.
                 Octave k uses ``scale * 2**k`` cells and amplitude ``persistence**k``.
    tileable     gradients wrap around, so ``np.tile(noise, 2)`` has no seam.
    The sum is divided by the total amplitude, so every octave count stays inside [-1, 1]; with one
    octave the noise is exactly zero on lattice points (a property of gradient noise).
    """
    height, width = _pair(shape, "shape")
    cells_y, cells_x = _pair(scale, "scale")
    if int(octaves) != octaves or octaves < 1:
        raise ValueError(f"octaves must be a positive integer, got {octaves!r}")
    if not 0.0 < persistence <= 1.0:
        raise ValueError(f"persistence must be in (0, 1], got {persistence!r}")
    total = np.zeros((height, width))
    amplitude, amplitude_sum = 1.0, 0.0
    for octave in range(int(octaves)):
        factor = 2**octave
        total += amplitude * _gradient_layer(height, width, cells_y * factor, cells_x * factor, rng, tileable)
        amplitude_sum += amplitude
        amplitude *= persistence
    # the bound is exact in theory; the clip only removes float rounding beyond +-1
    return np.clip(total / amplitude_sum, -1.0, 1.0)


def random_perlin_field(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    scale_exponents: tuple[int, int] = (0, 6),
    rotate: bool = True,
    rotation: tuple[float, float] = (-90.0, 90.0),
) -> np.ndarray:
    """DRÆM's mask noise (Zavrtanik et al. 2021): one Perlin octave whose lattice has ``2**k`` cells
    per axis, k drawn independently per axis from ``[low, high)``, then rotated about the centre by an
    angle drawn from ``rotation`` (degrees). As in the authors' code (imgaug ``Affine``, constant
    mode), the corners the rotation leaves uncovered are zero, so they fall below any positive
    threshold. Threshold the field to get an anomaly region."""
    height, width = _pair(shape, "shape")
    low, high = scale_exponents
    if not 0 <= low < high:
        raise ValueError(f"scale_exponents must satisfy 0 <= low < high, got {scale_exponents!r}")
    if not rotation[0] <= rotation[1]:
        raise ValueError(f"rotation must be a range (low, high) in degrees, got {rotation!r}")
    cells = (2 ** int(rng.integers(low, high)), 2 ** int(rng.integers(low, high)))
    noise = perlin_noise((height, width), cells, rng)
    if not rotate:
        return noise
    angle = float(rng.uniform(*rotation))
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
    rotated = cv2.warpAffine(
        noise.astype(np.float32), matrix, (width, height),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return rotated.astype(np.float64)
