"""The one place uiad-lite imports open3d."""

from __future__ import annotations

import os
from types import ModuleType


def import_open3d() -> ModuleType:
    """open3d, without its Jupyter WebVisualizer: inside a notebook kernel open3d would otherwise start a
    WebRTC server on import and print its log into the chapter (the workbook draws clouds with plotly)."""
    os.environ.setdefault("OPEN3D_DISABLE_WEB_VISUALIZER", "true")
    import open3d

    return open3d
