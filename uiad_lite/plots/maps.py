"""Heat-map grids: test images, their ground truth and a detector's anomaly maps, side by side."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from uiad_lite.data.sample import Sample


def png_data_uri(image: np.ndarray) -> str:
    """Encode an H×W×3 uint8 (or H×W bool/uint8) array as a compact PNG data URI for go.Image."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def jpeg_data_uri(picture: np.ndarray, quality: int = 88) -> str:
    """An H×W×3 uint8 picture as a JPEG data URI: photographs and textures at a third of PNG's size."""
    from PIL import Image

    picture = np.asarray(picture)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"jpeg_data_uri expects an H×W×3 uint8 array, got {picture.dtype} {picture.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _downsample(array: np.ndarray, max_side: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(array.shape[:2]) / max_side)))
    return array[::step, ::step]


def heatmap_grid(
    samples: Sequence[Sample],
    maps: np.ndarray,
    scores: Sequence[float] | None = None,
    title: str = "",
    max_side: int = 112,
    shared_scale: bool = True,
) -> go.Figure:
    """One column per sample: the image, its ground-truth mask, the anomaly map (hover for values).

    With ``shared_scale`` every map uses one colour range (the 1st to 99.9th percentile over all maps),
    so that a bright map means a high score, not just a high score *for that image*.
    """
    if len(samples) != len(maps):
        raise ValueError(f"heatmap_grid: {len(samples)} samples but {len(maps)} maps")
    if not samples:
        raise ValueError("heatmap_grid: no samples to show")
    n = len(samples)
    titles = []
    for i, sample in enumerate(samples):
        score = f" s={scores[i]:.3g}" if scores is not None else ""
        titles.append(f"{sample.defect}{score}")
    titles += [""] * (2 * n)
    figure = make_subplots(
        rows=3, cols=n, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.03
    )
    low, high = np.percentile(np.asarray(maps), [1, 99.9]) if shared_scale else (None, None)
    for column, (sample, anomaly_map) in enumerate(zip(samples, maps, strict=True), start=1):
        if sample.image is not None:
            figure.add_trace(
                go.Image(source=png_data_uri(_downsample(sample.image, max_side * 2))), 1, column
            )
        mask = sample.mask if sample.mask is not None else np.zeros(anomaly_map.shape, bool)
        figure.add_trace(
            go.Image(
                source=png_data_uri(
                    np.repeat(_downsample(mask, max_side * 2)[..., None], 3, -1).astype(np.uint8) * 255
                )
            ),
            2,
            column,
        )
        small = _downsample(np.asarray(anomaly_map, dtype=np.float32), max_side)
        figure.add_trace(
            go.Heatmap(
                z=np.round(small[::-1], 4),
                zmin=low,
                zmax=high,
                colorscale="Inferno",
                showscale=column == n,
                hovertemplate="score %{z}<extra></extra>",
            ),
            3,
            column,
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    for column in range(1, n + 1):
        figure.update_yaxes(scaleanchor=f"x{2 * n + column if column else ''}", row=3, col=column)
    figure.update_layout(
        title=title or "test images (top), ground truth (middle), anomaly maps (bottom)",
        height=520,
        margin=dict(l=10, r=10, t=70, b=10),
    )
    return figure
