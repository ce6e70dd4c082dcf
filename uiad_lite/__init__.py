"""uiad-lite: a Jupyter-first workbook on unsupervised industrial image anomaly detection."""

__version__ = "0.1.0"
