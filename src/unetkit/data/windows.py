"""Reading windows that may leave the array: mirrored or constant-filled borders.

Works on NumPy arrays and on lazy arrays (``zarr.Array``, ``h5py.Dataset``): only the bounding
box of the needed source pixels is read, so a window of a huge on-disk array costs the window's
memory, not the array's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def mirror_indices(start: int, n: int, size: int) -> np.ndarray:
    """Indices ``start .. start + n - 1`` mirrored into ``0..size-1`` (``np.pad`` 'reflect' rule)."""
    idx = np.arange(start, start + n)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx < size, idx, period - idx)


def read_window(array: Any, start: Sequence[int], shape: Sequence[int], *, fill: float | None = None) -> np.ndarray:
    """Window ``array[..., start : start + shape]`` over the trailing ``len(shape)`` axes.

    Args:
        array: ``(*lead, *spatial)`` NumPy or lazy array supporting basic slicing.
        start: window origin per spatial axis (may be negative or past the end).
        shape: window shape per spatial axis.
        fill: ``None`` mirrors outside parts (as ``np.pad(..., mode="reflect")`` of the whole
            array, at any distance from it); a number fills them with that constant.

    Returns:
        ``(*lead, *shape)`` NumPy array (a copy).
    """
    nd = len(shape)
    spatial = tuple(array.shape[-nd:]) if nd else ()
    lead = tuple(array.shape[: len(array.shape) - nd])
    if all(s >= 0 and s + n <= size for s, n, size in zip(start, shape, spatial)):
        return np.array(array[(Ellipsis, *(slice(s, s + n) for s, n in zip(start, shape)))])
    if fill is None:
        index = [mirror_indices(s, n, size) for s, n, size in zip(start, shape, spatial)]
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in index)
        block = np.asarray(array[(Ellipsis, *box)])
        local = np.ix_(*(i - b.start for i, b in zip(index, box)))
        return block[(Ellipsis, *local)]
    out = np.full((*lead, *shape), fill, dtype=array.dtype)
    src, dst = [], []
    for s, n, size in zip(start, shape, spatial):
        lo, hi = max(s, 0), min(s + n, size)
        if hi <= lo:  # window entirely outside on this axis: all fill
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[(Ellipsis, *dst)] = np.asarray(array[(Ellipsis, *src)])
    return out
