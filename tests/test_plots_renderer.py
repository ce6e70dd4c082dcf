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
