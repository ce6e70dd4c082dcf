"""Plotly figures for the workbook, and the renderer that makes them survive papermill and the book.

Importing this package registers a plotly renderer named ``"uiad"`` and makes it the default. It
emits one output carrying two representations of each figure:

* ``application/vnd.plotly.v1+json`` — drawn by JupyterLab's plotly extension (live use);
* ``text/html`` — a ``<div>`` plus a call to ``Plotly.newPlot``, *without* plotly.js inlined. The
  Jupyter Book ships plotly.js once (``book/_static``) and prefers this representation, so every
  figure is drawn offline in the static site.

Plotly's default renderer under papermill emits only the JSON representation, which the book's
HTML builder drops without a word; that is why the choice is made here, deliberately.

The JSON representation is plain JSON (strings, numbers, lists, dicts): the figure goes through
plotly's own encoder (:func:`plotly.io.to_json`) and back, so numpy arrays, object arrays from
pandas, categoricals, timestamps and missing values (``pd.NA``, ``NaT``) all arrive as values
``json.dumps`` accepts. Only plotly's public API is used.
"""

from __future__ import annotations

import json

import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

PLOTLY_MIME = "application/vnd.plotly.v1+json"
RENDERER_NAME = "uiad"


def figure_json(figure) -> dict:
    """``{"data": [...], "layout": {...}}`` of a figure (or figure dict) as plain JSON values."""
    return json.loads(pio.to_json(figure, validate=False, remove_uids=False))


class JsonAndHtmlRenderer(MimetypeRenderer):
    """A plotly renderer emitting both the plotly JSON and a CDN-free HTML snippet."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        plain = figure_json(fig_dict)
        html = pio.to_html(
            plain,
            include_plotlyjs=False,
            full_html=False,
            validate=False,
            default_width="100%",
            default_height=f"{plain.get('layout', {}).get('height') or 450}px",
            config={"responsive": True, "displaylogo": False},
        )
        return {
            PLOTLY_MIME: {"data": plain.get("data", []), "layout": plain.get("layout", {})},
            "text/html": html,
        }


def use_book_renderer() -> None:
    """Register and select the ``uiad`` renderer (idempotent)."""
    pio.renderers[RENDERER_NAME] = JsonAndHtmlRenderer()
    pio.renderers.default = RENDERER_NAME


use_book_renderer()
