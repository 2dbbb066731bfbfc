"""Intensity normalisation of images.

All functions take a NumPy image in canonical ``[C][Z]YX`` order (any number of axes) and
return a new ``float32`` array of the same shape. Statistics are computed over the whole
image, or over every axis except ``channel_axis`` when one is given (one set of statistics
per channel). Constant images (or constant channels) never produce NaN or inf: the
denominator is clipped from below by ``eps``, so they map to 0.

Non-finite input values (NaN, inf) are refused with :class:`~unetkit.errors.InputError`,
since every statistic computed from them would be meaningless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from unetkit.errors import InputError

__all__ = ["NORMALIZE_MODES", "normalize", "normalize_meanstd", "normalize_percentile"]

NORMALIZE_MODES: tuple[str, ...] = ("percentile", "meanstd", "none")

_PERCENTILE_KWARGS = ("low", "high", "eps")
_MEANSTD_KWARGS = ("mean", "std", "eps")


def _as_float_image(image: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(image)
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(
            f"image dtype {arr.dtype} cannot be normalised; expected an integer, float or bool array"
        )
    # Statistics in float64 where float32 would lose precision (float64, wide integers).
    work = np.float64 if arr.dtype.itemsize > 4 or arr.dtype in (np.int32, np.uint32) else np.float32
    arr = arr.astype(work, copy=False)
    if arr.size == 0:
        raise InputError(f"image of shape {arr.shape} is empty; expected at least one pixel")
    if not np.isfinite(arr).all():
        raise InputError(
            "image contains NaN or infinite values; expected only finite values "
            "(replace or mask them before normalising)"
        )
    return arr


def _reduce_axes(ndim: int, channel_axis: int | None) -> tuple[tuple[int, ...] | None, int | None]:
    """Axes to reduce over and the normalised channel axis (``None`` for whole-image stats)."""
    if channel_axis is None:
        return None, None
    if not isinstance(channel_axis, (int, np.integer)) or isinstance(channel_axis, bool):
        raise InputError(f"channel_axis={channel_axis!r} must be an int or None")
    if not -ndim <= channel_axis < ndim:
        raise InputError(
            f"channel_axis={channel_axis} is out of range for an image with {ndim} axes; "
            f"expected None or an int in [{-ndim}, {ndim - 1}]"
        )
    ax = int(channel_axis) % ndim
    return tuple(i for i in range(ndim) if i != ax), ax


def _check_eps(eps: float) -> float:
    if not np.isfinite(eps) or eps <= 0:
        raise InputError(f"eps={eps!r} must be a finite number > 0")
    return float(eps)


def normalize_percentile(
    image: npt.ArrayLike,
    *,
    low: float = 1.0,
    high: float = 99.8,
    channel_axis: int | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """Map the ``low`` / ``high`` percentiles of ``image`` to 0 / 1.

    ``out = (image - p_low) / max(p_high - p_low, eps)``; values outside the percentile range
    are not clipped (they fall below 0 or above 1).

    Args:
        image: array of any shape, canonical order ``[C][Z]YX``; integer, float or bool.
        low, high: percentiles in ``[0, 100]`` with ``low < high``.
        channel_axis: if given, percentiles are computed per channel, i.e. over all axes
            except this one (usually 0 for ``(C, [Z,] Y, X)`` images).
        eps: lower bound of the denominator (> 0); a constant image maps to 0.

    Returns:
        ``float32`` array of the same shape as ``image``.

    Raises:
        InputError: ``low >= high``, a percentile outside ``[0, 100]``, a bad
            ``channel_axis``, ``eps <= 0``, an empty image or non-finite values.
    """
    for name, value in (("low", low), ("high", high)):
        if not np.isfinite(value) or not 0.0 <= value <= 100.0:
            raise InputError(f"{name}={value!r} must be a percentile in [0, 100]")
    if low >= high:
        raise InputError(f"low={low!r} must be smaller than high={high!r} (percentiles in [0, 100])")
    eps = _check_eps(eps)
    arr = _as_float_image(image)
    axes, _ = _reduce_axes(arr.ndim, channel_axis)
    return _apply(arr, *_percentile_stats(arr, axes, low, high, eps))


def _percentile_stats(arr: np.ndarray, axes: tuple[int, ...] | None, low: float, high: float,
                      eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) with ``normalised = (x - offset) / scale`` (shapes broadcast against ``arr``)."""
    p_low, p_high = np.percentile(arr, [low, high], axis=axes, keepdims=True)
    return p_low, np.maximum(p_high - p_low, eps)


def _apply(arr: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((arr - offset) / scale).astype(np.float32, copy=False)


def _stat_param(
    value: float | Sequence[float] | np.ndarray,
    name: str,
    ndim: int,
    channel_ax: int | None,
    n_channels: int | None,
) -> np.ndarray:
    """Broadcastable float32 array for a user-given mean or std (scalar or per channel)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        out = arr
    elif arr.ndim == 1 and channel_ax is not None and arr.shape[0] == n_channels:
        shape = [1] * ndim
        shape[channel_ax] = n_channels
        out = arr.reshape(shape)
    else:
        expected = "a scalar" if channel_ax is None else f"a scalar or {n_channels} values (one per channel)"
        raise InputError(f"{name} of shape {arr.shape} does not fit the image; expected {expected}")
    if not np.isfinite(out).all():
        raise InputError(f"{name}={value!r} must be finite")
    return out


def normalize_meanstd(
    image: npt.ArrayLike,
    *,
    mean: float | Sequence[float] | np.ndarray | None = None,
    std: float | Sequence[float] | np.ndarray | None = None,
    channel_axis: int | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """Standardise ``image``: ``out = (image - mean) / max(std, eps)``.

    Args:
        image: array of any shape, canonical order ``[C][Z]YX``.
        mean, std: fixed statistics (a scalar, or one value per channel when
            ``channel_axis`` is given); each one that is ``None`` is computed from the image
            (per channel when ``channel_axis`` is given).
        channel_axis: the channel axis, or ``None`` for whole-image statistics.
        eps: lower bound of the denominator (> 0); a constant image maps to 0.

    Returns:
        ``float32`` array of the same shape as ``image``.

    Raises:
        InputError: ``std < 0``, statistics whose shape does not fit, a bad
            ``channel_axis``, ``eps <= 0``, an empty image or non-finite values.
    """
    eps = _check_eps(eps)
    arr = _as_float_image(image)
    axes, ch = _reduce_axes(arr.ndim, channel_axis)
    return _apply(arr, *_meanstd_stats(arr, axes, ch, mean, std, eps))


def _meanstd_stats(arr: np.ndarray, axes: tuple[int, ...] | None, ch: int | None, mean: Any, std: Any,
                   eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) for mean/std normalisation; given statistics win over computed ones."""
    n_ch = None if ch is None else arr.shape[ch]
    if mean is None:
        m = arr.mean(axis=axes, keepdims=True, dtype=np.float64)
    else:
        m = _stat_param(mean, "mean", arr.ndim, ch, n_ch)
    if std is None:
        sd = arr.std(axis=axes, keepdims=True, dtype=np.float64)
    else:
        sd = _stat_param(std, "std", arr.ndim, ch, n_ch)
        if (sd < 0).any():
            raise InputError(f"std={std!r} must be >= 0")
    return m.astype(arr.dtype), np.maximum(sd, eps).astype(arr.dtype)


def _check_options(mode: str, kwargs: dict[str, Any]) -> None:
    """InputError for an unknown mode or an option the mode does not take."""
    allowed: tuple[str, ...]
    if mode == "percentile":
        allowed = _PERCENTILE_KWARGS
    elif mode == "meanstd":
        allowed = _MEANSTD_KWARGS
    elif mode == "none":
        allowed = ()
    else:
        raise InputError(f"unknown normalisation mode {mode!r}; valid modes: {', '.join(NORMALIZE_MODES)}")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise InputError(f"option(s) {', '.join(unknown)} not valid for mode {mode!r}; valid options: {valid}")


def normalize(
    image: npt.ArrayLike,
    mode: Literal["percentile", "meanstd", "none"],
    *,
    channel_axis: int | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Normalise ``image`` with the named ``mode``.

    Args:
        image: array of any shape, canonical order ``[C][Z]YX``.
        mode: ``"percentile"`` (:func:`normalize_percentile`, options ``low``, ``high``,
            ``eps``), ``"meanstd"`` (:func:`normalize_meanstd`, options ``mean``, ``std``,
            ``eps``) or ``"none"`` (a ``float32`` copy, no options).
        channel_axis: per-channel statistics over all other axes, or ``None``.
        **kwargs: options of the chosen mode.

    Returns:
        ``float32`` array of the same shape as ``image``.

    Raises:
        InputError: an unknown mode or an option the mode does not take.
    """
    _check_options(mode, kwargs)
    if mode == "percentile":
        return normalize_percentile(image, channel_axis=channel_axis, **kwargs)
    if mode == "meanstd":
        return normalize_meanstd(image, channel_axis=channel_axis, **kwargs)
    _reduce_axes(np.ndim(image), channel_axis)  # validate even though it is unused
    arr = _as_float_image(image)
    out = arr.astype(np.float32, copy=False)
    return out.copy() if out is image else out


def strided_sample(array: Any, max_samples: int = 1 << 24, *, channel_axis: int | None = 0) -> np.ndarray:
    """A regular subsample of ``array`` (NumPy or lazy Zarr/HDF5) with at most ``max_samples`` values.

    Every spatial axis (all axes but ``channel_axis``) is read with the same stride; an array
    that already fits is returned whole, so statistics on it are exact.
    """
    shape = tuple(array.shape)
    spatial = [i for i in range(len(shape)) if channel_axis is None or i != channel_axis % len(shape)]
    def size(k: int) -> int:
        return int(np.prod([-(-n // k) if i in spatial else n for i, n in enumerate(shape)]))

    stride = 1
    while size(stride) > max_samples and stride < max(shape):
        stride += 1
    index = tuple(slice(None, None, stride) if i in spatial else slice(None) for i in range(len(shape)))
    return np.asarray(array[index])


def make_normalizer(
    sample: npt.ArrayLike,
    mode: Literal["percentile", "meanstd", "none"],
    *,
    channel_axis: int | None = None,
    **kwargs: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """A pixel-wise ``x -> (x - offset) / scale`` whose statistics come from ``sample``.

    Gives the same values as :func:`normalize` on ``sample`` itself, and can be applied window
    by window (tiles of an image larger than memory: take ``sample`` from
    :func:`strided_sample`). The returned function maps arrays with the sample's axis layout.
    """
    _check_options(mode, kwargs)
    if mode == "none":
        return lambda x: np.asarray(x, dtype=np.float32)
    arr = _as_float_image(sample)
    axes, ch = _reduce_axes(arr.ndim, channel_axis)
    eps = _check_eps(kwargs.get("eps", 1e-6))
    if mode == "percentile":
        offset, scale = _percentile_stats(arr, axes, kwargs.get("low", 1.0), kwargs.get("high", 99.8), eps)
    else:
        offset, scale = _meanstd_stats(arr, axes, ch, kwargs.get("mean"), kwargs.get("std"), eps)
    dtype = arr.dtype

    def apply(x: np.ndarray) -> np.ndarray:
        return _apply(np.asarray(x).astype(dtype, copy=False), offset, scale)

    return apply
