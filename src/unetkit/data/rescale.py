"""Rescaling of images, label images and network outputs by a zoom factor, in 2-D and 3-D.

Used to test a model on scales it was not trained at (``unetkit evaluate --scales``, see
:mod:`unetkit.metrics.scales`) and by the scale-jitter augmentation
(:class:`unetkit.data.transforms.ScaleJitter`).

Conventions:

* Arrays are ``([C,] [Z,] Y, X)``: ``ndim`` (2 or 3) trailing spatial axes, at most one leading
  channel axis. Channels are never mixed.
* A factor ``f`` maps a spatial size ``n`` to ``round(n * f)`` (:func:`scaled_shape`); ``f > 1``
  enlarges (zooms in), ``f < 1`` shrinks. Pixel centres are aligned (``align_corners=False``:
  output pixel ``i`` samples the input at ``(i + 0.5) * n / m - 0.5``).
* Float data (images, logits) is interpolated linearly (bilinear / trilinear). When an axis
  shrinks, the data is low-pass filtered first (antialiasing): in 2-D by torch's
  ``interpolate(..., antialias=True)`` (a triangle filter stretched by ``1 / f``, the PIL
  method); in 3-D, which torch does not antialias, by a Gaussian pre-blur with
  ``sigma = (1 / f - 1) / 2`` input pixels along each shrinking axis (0 where the axis does not
  shrink; 0.5 px for a 2x reduction, 1.5 px for 4x), ``mode='reflect'``, then trilinear.
* Integer / bool data (label images) is resampled by nearest neighbour on the same
  pixel-centre grid, so values are always taken from the input and the dtype is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from unetkit.errors import InputError

__all__ = [
    "DEFAULT_SCALE_FACTORS",
    "check_factors",
    "rescale_image",
    "rescale_labels",
    "resize_to",
    "scaled_shape",
]

DEFAULT_SCALE_FACTORS: tuple[float, ...] = tuple(float(f) for f in 2.0 ** np.linspace(-2, 2, 17))
"""``2 ** linspace(-2, 2, 17)``: 17 factors from 0.25 to 4, four per octave (the SEU-Net
paper's protocol for the Oxford Pet data)."""


def _check_factor(factor: float) -> float:
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
        raise InputError(f"scale factor {factor!r} must be a number > 0")
    f = float(factor)
    if not (math.isfinite(f) and f > 0):
        raise InputError(f"scale factor {factor!r} must be a finite number > 0 (e.g. 0.5 to shrink, 2 to enlarge)")
    return f


def check_factors(factors: Sequence[float]) -> tuple[float, ...]:
    """Validate a non-empty list of factors (each finite and > 0, no duplicates); returns floats."""
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not len(factors):
        raise InputError(f"scale factors {factors!r} must be a non-empty list of numbers > 0")
    out = tuple(_check_factor(f) for f in factors)
    if len(set(out)) != len(out):
        raise InputError(f"scale factors {list(factors)!r} contain duplicates; give each factor once")
    return out


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """Spatial ``shape`` zoomed by ``factor``: ``round(n * factor)`` per axis.

    Raises:
        InputError: ``factor <= 0`` (or not finite), or a result smaller than 1 pixel.
    """
    f = _check_factor(factor)
    out = tuple(round(int(n) * f) for n in shape)
    if any(m < 1 for m in out):
        smallest = 0.5 / min(int(n) for n in shape)
        raise InputError(f"scale factor {factor!r} shrinks the shape {tuple(shape)} to {out}, below 1 pixel; "
                         f"use a factor >= {smallest:.3g} for this image")
    return out


def _split(array: np.ndarray, ndim: int, name: str) -> tuple[np.ndarray, bool]:
    """``(array with a channel axis, had_one)`` for ``([C,] *spatial)`` input."""
    if isinstance(ndim, bool) or ndim not in (2, 3):
        raise InputError(f"ndim={ndim!r} must be 2 or 3 (number of spatial axes)")
    a = np.asarray(array)
    if a.ndim == ndim:
        return a[None], False
    if a.ndim == ndim + 1:
        return a, True
    raise InputError(f"{name} of shape {a.shape} does not have {ndim} spatial axes; expected "
                     f"({'[C, ] Z, Y, X' if ndim == 3 else '[C, ] Y, X'})")


def _linear(data: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """Linear resampling with antialiasing of ``(C, *S)`` float data to ``(C, *out_shape)`` float32."""
    src = np.ascontiguousarray(data, dtype=np.float32)
    in_shape = src.shape[1:]
    if tuple(in_shape) == tuple(out_shape):
        return src.copy()
    nd = len(in_shape)
    if nd == 3:
        sigma = [max(0.0, (n / m - 1.0) / 2.0) for n, m in zip(in_shape, out_shape)]
        if any(s > 0 for s in sigma):
            src = ndi.gaussian_filter(src, [0.0, *sigma], mode="reflect").astype(np.float32, copy=False)
        mode, antialias = "trilinear", False
    else:
        mode, antialias = "bilinear", any(m < n for n, m in zip(in_shape, out_shape))
    t = torch.from_numpy(src)[None]
    with torch.no_grad():
        out = F.interpolate(t, size=tuple(out_shape), mode=mode, align_corners=False, antialias=antialias)
    return out[0].numpy()


def _nearest(data: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resampling (pixel centres aligned) of ``(C, *S)`` data, dtype kept."""
    in_shape = data.shape[1:]
    index = [np.minimum(((np.arange(m) + 0.5) * n / m).astype(np.int64), n - 1)
             for n, m in zip(in_shape, out_shape)]
    return np.ascontiguousarray(data[(slice(None), *np.ix_(*index))])


def resize_to(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize ``([C,] *spatial)`` data to the spatial ``shape`` (e.g. logits of a rescaled image back
    to the original size): float data linearly (antialiased where an axis shrinks, as
    :func:`rescale_image`), integer / bool data by nearest neighbour (dtype kept). The number of
    spatial axes is ``len(shape)`` (2 or 3). Returns ``([C,] *shape)``, float32 for float input."""
    out_shape = tuple(int(s) for s in shape)
    if any(s < 1 for s in out_shape):
        raise InputError(f"target shape {out_shape} must be at least 1 pixel on every axis")
    data, had_c = _split(array, len(out_shape), "array")
    if np.issubdtype(data.dtype, np.integer) or data.dtype == bool:
        out = _nearest(data, out_shape)
    elif np.issubdtype(data.dtype, np.floating):
        out = _linear(data, out_shape)
    else:
        raise InputError(f"array dtype {data.dtype} is neither float (linear) nor integer (nearest)")
    return out if had_c else out[0]


def rescale_image(image: np.ndarray, factor: float, *, ndim: int = 2) -> np.ndarray:
    """Zoom an image ``([C,] [Z,] Y, X)`` by ``factor``: bilinear / trilinear, antialiased when shrinking.

    Args:
        image: float (or any real) image with ``ndim`` spatial axes and an optional leading C.
        factor: zoom factor > 0; spatial sizes become ``round(n * factor)``.
        ndim: number of spatial axes (2 or 3).

    Returns:
        float32 ``([C,] *scaled_shape(spatial, factor))``; a copy of the image for ``factor`` 1.
    """
    data, had_c = _split(image, ndim, "image")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool) or np.iscomplexobj(data):
        raise InputError(f"image dtype {data.dtype} is not a real numeric type")
    out = _linear(data.astype(np.float32, copy=False), scaled_shape(data.shape[1:], factor))
    return out if had_c else out[0]


def rescale_labels(labels: np.ndarray, factor: float) -> np.ndarray:
    """Zoom a label image ``([Z,] Y, X)`` (integer or bool, every axis spatial) by ``factor``,
    nearest neighbour: every output value is an input value, the dtype is kept."""
    lab = np.asarray(labels)
    if not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        raise InputError(f"labels dtype {lab.dtype} is not an integer type; expected integer label ids")
    if lab.ndim not in (2, 3):
        raise InputError(f"labels of shape {lab.shape} must be ([Z,] Y, X)")
    return _nearest(lab[None], scaled_shape(lab.shape, factor))[0]

