"""Tensor layout of lifted (scale-space) features, shared by every scale layer.

A lifted feature map is a tensor ``(N, C, S, *spatial)``: batch, channels, the scale axis
(``S`` scales, index k = 0 finest .. S-1 coarsest, scale k meaning a downscaling by 2^k) and
the ``ndim`` spatial axes ``([D,] H, W)``. The scale axis is :data:`SCALE_AXIS` = 2, so that the
channel axis stays at 1 like every other unetkit tensor and ``torch.cat(..., dim=1)`` joins
skip connections of lifted features.
"""

from __future__ import annotations

from torch import Tensor

from unetkit.errors import ShapeError

SCALE_AXIS = 2
"""Index of the scale axis in a lifted tensor ``(N, C, S, *spatial)``."""


def check_lifted(x: Tensor, ndim: int, *, scales: int | None = None, channels: int | None = None,
                 what: str = "input") -> None:
    """Raise :class:`~unetkit.errors.ShapeError` unless ``x`` is ``(N, C, S, *spatial)`` with ``ndim``
    spatial axes (and ``scales`` scales / ``channels`` channels when given)."""
    if x.dim() != ndim + 3:
        axes = "N, C, S, " + ("D, H, W" if ndim == 3 else "H, W")
        raise ShapeError(f"{what} of shape {tuple(x.shape)} is not a lifted {ndim}-D tensor ({axes}); "
                         "lift images with GaussianLift first")
    if channels is not None and x.shape[1] != channels:
        raise ShapeError(f"{what} has {x.shape[1]} channels (shape {tuple(x.shape)}), expected {channels}")
    if scales is not None and x.shape[SCALE_AXIS] != scales:
        raise ShapeError(f"{what} has {x.shape[SCALE_AXIS]} scales (shape {tuple(x.shape)}), expected {scales}")


def check_image(x: Tensor, ndim: int, *, channels: int | None = None, what: str = "input") -> None:
    """Raise :class:`~unetkit.errors.ShapeError` unless ``x`` is ``(N, C, *spatial)`` with ``ndim`` spatial axes."""
    if x.dim() != ndim + 2:
        axes = "N, C, " + ("D, H, W" if ndim == 3 else "H, W")
        raise ShapeError(f"{what} of shape {tuple(x.shape)} is not a {ndim}-D image batch ({axes})")
    if channels is not None and x.shape[1] != channels:
        raise ShapeError(f"{what} has {x.shape[1]} channels (shape {tuple(x.shape)}), expected {channels}")
