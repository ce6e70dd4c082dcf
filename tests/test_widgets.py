"""Live explorers and their static twins (uiad_lite.widgets) and the figure they draw."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from uiad_lite import widgets
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import Prediction
from uiad_lite.plots.curves import map_inspection


def _samples_and_predictions():
    rng = np.random.default_rng(0)
    samples, maps = [], []
    for i, defect in enumerate(["good", "good", "scratch", "hole"]):
        mask = np.zeros((32, 32), bool)
        if defect != "good":
            mask[8 + i : 16 + i, 10:20] = True
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        samples.append(Sample("toy", "test", int(defect != "good"), defect, f"toy/{i}.png", image, mask))
        maps.append(rng.random((32, 32)).astype(np.float32) * 0.5 + mask)
    maps = np.stack(maps)
    predictions = {
        "A": Prediction(scores=maps.reshape(4, -1).max(1), maps=maps),
        "B": Prediction(scores=10 * maps.reshape(4, -1).max(1), maps=10 * maps),
    }
    return samples, predictions


def test_map_inspection_counts_against_numpy():
    samples, predictions = _samples_and_predictions()
    anomaly_map, mask = predictions["A"].maps[2], samples[2].mask
    figure = map_inspection(samples[2], anomaly_map, 0.8, score=1.5)
    flagged = anomaly_map >= 0.8
    tp, fp, fn = (flagged & mask).sum(), (flagged & ~mask).sum(), (~flagged & mask).sum()
    title = figure.layout.title.text
    assert f"TP {tp} · FP {fp} · FN {fn}" in title and f"IoU {tp / (tp + fp + fn):.3f}" in title
    assert "toy/2.png (scratch)" in title and "image score 1.5" in title
    assert [type(trace).__name__ for trace in figure.data] == ["Image", "Image", "Heatmap", "Image"]
    np.testing.assert_allclose(figure.data[2].z, anomaly_map[::-1])


def test_is_static_under_the_runner_and_outside_a_kernel(monkeypatch):
    monkeypatch.setenv("UIAD_STATIC", "1")
    assert widgets.is_static()
    monkeypatch.delenv("UIAD_STATIC")
    assert widgets.is_static()  # pytest is no IPython kernel

    class Shell:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert not widgets.is_static()


def test_explorer_follows_its_controls():
    samples, predictions = _samples_and_predictions()
    explorer = widgets.MapExplorer(samples, predictions)
    # starts on method A, image 0, at the highest value a good image reaches: no false alarm on good images
    assert explorer.threshold.value == pytest.approx(float(predictions["A"].maps[:2].max()), rel=1e-6)
    assert explorer.figure.layout.title.text.startswith("A: toy/0.png (good)")
    explorer.image.value = 3
    assert "toy/3.png (hole)" in explorer.figure.layout.title.text
    explorer.threshold.value = explorer.threshold.min
    low = explorer.figure.layout.title.text
    flagged = predictions["A"].maps[3] >= explorer.threshold.value
    assert f"FP {(flagged & ~samples[3].mask).sum()} " in low
    explorer.method.value = "B"  # new method: the slider moves to its range, the map is B's
    low_b, high_b = np.percentile(predictions["B"].maps, [1, 99.9])
    assert explorer.threshold.min == pytest.approx(low_b) and explorer.threshold.max == pytest.approx(high_b)
    assert explorer.figure.layout.title.text.startswith("B: toy/3.png")
    np.testing.assert_allclose(explorer.figure.data[2].z, predictions["B"].maps[3][::-1], rtol=1e-6)


def test_explore_maps_static_twin_and_live_explorer(monkeypatch):
    samples, predictions = _samples_and_predictions()
    monkeypatch.setenv("UIAD_STATIC", "1")
    figures = widgets.explore_maps(samples, predictions, shown=[0, 2], title="toy")
    assert [figure.layout.title.text for figure in figures] == ["A on toy", "B on toy"]
    assert all(isinstance(figure, go.Figure) for figure in figures)
    monkeypatch.setattr(widgets, "is_static", lambda: False)
    assert isinstance(widgets.explore_maps(samples, predictions, shown=[0]), widgets.MapExplorer)


def test_bad_predictions_are_named():
    samples, predictions = _samples_and_predictions()
    short = {"A": predictions["A"], "C": Prediction(scores=np.zeros(2), maps=np.zeros((2, 32, 32)))}
    with pytest.raises(ValueError, match=r"predictions\['C'\] has 2 maps; expected one per sample \(4\)"):
        widgets.MapExplorer(samples, short)
    with pytest.raises(ValueError, match="at least one"):
        widgets.explore_maps(samples, {}, shown=[0])


def test_in_a_live_kernel_the_explorer_is_a_widget_and_under_the_runner_a_figure(monkeypatch):
    """Executed by a real kernel: without UIAD_STATIC the cell's output is an ipywidgets view; with it
    (as the runner sets it), plotly figures and no widget."""
    import nbformat
    from nbclient import NotebookClient

    code = (
        "import numpy as np\n"
        "import uiad_lite.plots\n"
        "from uiad_lite.data.sample import Sample\n"
        "from uiad_lite.methods.base import Prediction\n"
        "from uiad_lite.widgets import explore_maps\n"
        "mask = np.zeros((16, 16), bool); mask[4:8, 4:8] = True\n"
        "samples = [Sample('t', 'test', i % 2, 'spot' if i % 2 else 'good', f't/{i}.png',\n"
        "                  np.full((16, 16, 3), 100, np.uint8), mask if i % 2 else ~mask & False)\n"
        "           for i in range(4)]\n"
        "maps = np.stack([s.mask.astype(np.float32) + 0.1 * i for i, s in enumerate(samples)])\n"
        "shown_maps = explore_maps(samples, {'A': Prediction(maps.max((1, 2)), maps)}, [0, 1])\n"
    )

    def outputs(static: bool) -> list[str]:
        if static:
            monkeypatch.setenv("UIAD_STATIC", "1")
        else:
            monkeypatch.delenv("UIAD_STATIC", raising=False)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
        return [mime for output in notebook.cells[0].outputs for mime in output.get("data", {})]

    live = outputs(static=False)
    assert "application/vnd.jupyter.widget-view+json" in live
    static = outputs(static=True)
    assert "application/vnd.plotly.v1+json" in static and "text/html" in static
    assert "application/vnd.jupyter.widget-view+json" not in static
