from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio

import uiad_lite.plots as plots


def test_renderer_is_default_and_emits_json_and_cdn_free_html():
    assert pio.renderers.default == plots.RENDERER_NAME
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), layout=dict(height=300))
    bundle = plots.JsonAndHtmlRenderer().to_mimebundle(figure.to_dict())
    assert json.dumps(bundle[plots.PLOTLY_MIME]["data"][0]["y"]) == "[3, 1, 2]"
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "plotly-graph-div" in html
    assert "cdn.plot.ly" not in html and "<script src" not in html
    assert len(html) < 20_000, "plotly.js must not be inlined into each figure"
    assert "height:300px" in html.replace(" ", "")


def _awkward_frame():
    """Columns as pandas 2 and 3 hand them to plotly: object, categorical, datetime, nullable."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "when": pd.to_datetime(["2020-01-01", None, "2021-05-03"]),
            "value": [1.0, np.nan, 3.0],
            "year": pd.array([2019, None, 2021], dtype="Int64"),
            "name": np.array(["a", "b", None], dtype=object),
            "kind": pd.Categorical(["x", "y", "x"]),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "text": pd.array(["p", None, "r"], dtype="string"),
        }
    )


def test_bundle_is_strict_json_for_frames_with_object_categorical_datetime_and_nullable_columns():
    import plotly.express as px

    frame = _awkward_frame()
    scatter = px.scatter(
        frame, x="when", y="value", color="kind", hover_data=["name", "year", "flag", "text"]
    )
    table = go.Figure(go.Table(cells=dict(values=frame.T.values)))  # one object array of mixed values
    for figure in (scatter, table):
        bundle = plots.JsonAndHtmlRenderer().to_mimebundle(figure.to_dict())
        text = json.dumps(bundle[plots.PLOTLY_MIME], allow_nan=False)  # NaN/NaT/NA must become null
        assert "NaN" not in text
    cells = json.loads(text)["data"][0]["cells"]["values"]
    assert cells[0] == ["2020-01-01T00:00:00", None, "2021-05-03T00:00:00"]
    assert cells[2] == [2019, None, 2021] and cells[5] == [True, None, False] and cells[4] == ["x", "y", "x"]
    # the HTML twin draws the same data
    assert '"2021-05-03T00:00:00"' in bundle["text/html"]


def test_renderer_uses_only_public_plotly_modules():
    from pathlib import Path

    source = Path(plots.__file__).read_text()
    assert "plotly.io._" not in source and "from plotly.io._" not in source
