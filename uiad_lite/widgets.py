"""Live explorers for JupyterLab; in executed notebooks and the book they become plotly figures.

ipywidgets need a running kernel: a page of the book has none, and embedding the widgets' state would
make the page load require.js from a CDN. So each explorer here has a static twin, and
:func:`explore_maps` shows the explorer in a live session and the twin when :func:`is_static` (the
runner sets ``UIAD_STATIC=1`` for every kernel it starts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.plots.curves import map_inspection
from uiad_lite.plots.maps import heatmap_grid

STATIC_ENVIRONMENT_VARIABLE = "UIAD_STATIC"


def is_static() -> bool:
    """True when outputs must stand without a kernel: under the runner, or outside an IPython kernel."""
    if os.environ.get(STATIC_ENVIRONMENT_VARIABLE) == "1":
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or getattr(shell, "kernel", None) is None


def _check_predictions(samples: Sequence[Sample], predictions: Mapping[str, Prediction]) -> None:
    if not predictions:
        raise ValueError("give at least one method's Prediction")
    for method, prediction in predictions.items():
        if prediction.maps is None or len(prediction.maps) != len(samples):
            count = "no maps" if prediction.maps is None else f"{len(prediction.maps)} maps"
            raise ValueError(f"predictions[{method!r}] has {count}; expected one per sample ({len(samples)})")


class MapExplorer:
    """Pick a method, a test image and a threshold; see the image, its ground truth, the anomaly map
    and what the threshold flags (:func:`uiad_lite.plots.curves.map_inspection`).

    The threshold slider spans the 1st to 99.9th percentile of the chosen method's maps and starts at
    the largest value any good test image reaches (no false alarm on a good image), when there is one.
    ``widget`` is the ipywidgets box to display; ``figure`` the figure drawn last.
    """

    def __init__(self, samples: Sequence[Sample], predictions: Mapping[str, Prediction], max_side: int = 160):
        import ipywidgets as widgets

        _check_predictions(samples, predictions)
        self.samples = list(samples)
        self.predictions = dict(predictions)
        self.max_side = max_side
        self.figure: go.Figure | None = None
        choices = [(f"{i}: {sample.defect}", i) for i, sample in enumerate(self.samples)]
        self.method = widgets.Dropdown(options=list(self.predictions), description="method")
        self.image = widgets.Dropdown(options=choices, description="image")
        self.threshold = widgets.FloatSlider(
            description="threshold", continuous_update=False, readout_format=".4g", layout={"width": "60%"}
        )
        self.output = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.method, self.image]), self.threshold, self.output])
        self._reset_threshold()
        self.method.observe(self._method_changed, names="value")
        self.image.observe(self._redraw, names="value")
        self.threshold.observe(self._redraw, names="value")
        self._redraw()

    def _reset_threshold(self) -> None:
        maps = np.asarray(self.predictions[self.method.value].maps, dtype=np.float64)
        low, high = (float(v) for v in np.percentile(maps, [1, 99.9]))
        high = max(high, low + 1e-9)
        good = [i for i, sample in enumerate(self.samples) if sample.label == 0]
        start = float(maps[good].max()) if good else high
        slider = self.threshold
        with slider.hold_trait_notifications():
            if low > slider.max:  # keep min <= max at every step
                slider.max, slider.min = high, low
            else:
                slider.min, slider.max = low, high
            slider.step = (high - low) / 200
            slider.value = min(max(start, low), high)

    def _method_changed(self, _change=None) -> None:
        self._reset_threshold()
        self._redraw()

    def _redraw(self, _change=None) -> None:
        prediction = self.predictions[self.method.value]
        index = self.image.value
        self.figure = map_inspection(
            self.samples[index], prediction.maps[index], self.threshold.value,
            score=float(prediction.scores[index]), max_side=self.max_side,
        )  # fmt: skip
        self.figure.update_layout(title_text=f"{self.method.value}: {self.figure.layout.title.text}")
        with self.output:
            self.output.clear_output(wait=True)
            self.figure.show()


def explore_maps(
    samples: Sequence[Sample],
    predictions: Mapping[str, Prediction],
    shown: Sequence[int],
    title: str = "",
    max_side: int = 64,
) -> MapExplorer | list[go.Figure]:
    """Show anomaly maps of several methods on the same test images.

    Live (JupyterLab): a :class:`MapExplorer` over every test image. Static (runner, book): one
    :func:`uiad_lite.plots.maps.heatmap_grid` per method for the images ``shown``. Returns what it
    displayed.
    """
    from IPython.display import display

    _check_predictions(samples, predictions)
    if not is_static():
        explorer = MapExplorer(samples, predictions)
        display(explorer.widget)
        return explorer
    figures = []
    for method, prediction in predictions.items():
        figure = heatmap_grid(
            [samples[i] for i in shown],
            prediction.maps[shown],
            prediction.scores[shown],
            title=f"{method}{' on ' + title if title else ''}",
            max_side=max_side,
        )
        figure.show()
        figures.append(figure)
    return figures
