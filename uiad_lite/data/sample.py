"""The one record every loader returns and every method reads (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Sample:
    """One test or training item. Every modality is optional; methods read what they need.

    image        H×W×3 uint8 RGB
    mask         H×W bool ground truth (all False for a good sample)
    xyz          H×W×3 float32 organised point cloud, zeros where a point is missing
    points       N×3 float32 unorganised cloud (Real3D-AD style)
    point_labels N bool per-point ground truth
    """

    category: str
    split: str
    label: int = 0
    defect: str = "good"
    path: str = ""
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    xyz: np.ndarray | None = None
    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def require(self, *fields: str) -> None:
        """Raise a clear error when a method needs a modality this sample lacks."""
        missing = [name for name in fields if getattr(self, name) is None]
        if missing:
            where = self.path or f"{self.category}/{self.split}"
            raise ValueError(
                f"sample {where!r} has no {', '.join(missing)}; this method needs {', '.join(fields)}"
            )
