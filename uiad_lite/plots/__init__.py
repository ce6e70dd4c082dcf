"""Plotly figures for the workbook, and the renderer that makes them survive papermill and the book.

Importing this package registers a plotly renderer named ``"uiad"`` and makes it the default. It
emits one output carrying two representations of each figure:

* ``application/vnd.plotly.v1+json`` — drawn by JupyterLab's plotly extension (live use);
* ``text/html`` — a ``<div>`` plus a call to ``Plotly.newPlot``, *without* plotly.js inlined. The
  Jupyter Book ships plotly.js once (``book/_static``) and prefers this representation, so every
  figure is drawn offline in the static site.

Plotly's default renderer under papermill emits only the JSON representation, which the book's
HTML builder drops without a word; that is why the choice is made here, deliberately.
"""

from __future__ import annotations

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

PLOTLY_MIME = "application/vnd.plotly.v1+json"
RENDERER_NAME = "uiad"


class JsonAndHtmlRenderer(MimetypeRenderer):
    """A plotly renderer emitting both the plotly JSON and a CDN-free HTML snippet."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            full_html=False,
            validate=False,
            default_width="100%",
            default_height=f"{fig_dict.get('layout', {}).get('height') or 450}px",
            config={"responsive": True, "displaylogo": False},
        )
        return {
            PLOTLY_MIME: {"data": fig_dict.get("data", []), "layout": fig_dict.get("layout", {})},
            "text/html": html,
        }


def use_book_renderer() -> None:
    """Register and select the ``uiad`` renderer (idempotent)."""
    pio.renderers[RENDERER_NAME] = JsonAndHtmlRenderer()
    pio.renderers.default = RENDERER_NAME


use_book_renderer()
