"""Clustering of pixel embeddings into instance labels.

:func:`mean_shift`: mean-shift with a Gaussian (``exp(-d^2 / bandwidth)``) or flat kernel.
"""

from unetkit.clustering.mean_shift import mean_shift

__all__ = ["mean_shift"]
