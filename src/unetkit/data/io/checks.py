"""Checks of loaded arrays: usable as network input (images), integer class maps (labels)."""

from __future__ import annotations

import numpy as np

from unetkit.errors import InputError


def check_image(array: np.ndarray, *, name: str = "image") -> None:
    """Raise :class:`InputError` if ``array`` is unusable as network input.

    Refused: non-numeric dtypes (strings, objects, complex, datetimes), zero-size arrays and
    NaN or infinite values (the message gives their counts and the index of the first one).
    Bool, integer and real floating dtypes are accepted.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"{name} has dtype {arr.dtype}, which is not a real number type; "
            f"use bool, integer or float data"
        )
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); every dimension must be >= 1")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            bad = ~finite
            n_nan = int(np.count_nonzero(np.isnan(arr)))
            n_inf = int(np.count_nonzero(bad)) - n_nan
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
            parts = []
            if n_nan:
                parts.append(f"{n_nan} NaN")
            if n_inf:
                parts.append(f"{n_inf} infinite")
            raise InputError(
                f"{name} contains {' and '.join(parts)} value(s) out of {arr.size} "
                f"(shape {arr.shape}); the first is {float(arr[first])} at index {first}. "
                f"Replace or mask them before use"
            )


def check_labels(labels: np.ndarray, axes: str, *, name: str) -> tuple[np.ndarray, str]:
    """Labels in canonical axes as a non-negative integer array without a channel axis.

    ``bool`` becomes ``uint8``, integral finite floats ``int64``; a singleton C is dropped.
    Anything else raises :class:`InputError` naming ``name``.
    """
    if "C" in axes:
        c = axes.index("C")
        if labels.shape[c] != 1:
            raise InputError(
                f"{name} have a channel axis with {labels.shape[c]} channels (axes {axes!r}, "
                f"shape {labels.shape}); labels must be a single integer image per sample "
                f"(axes 'YX' or 'ZYX'); pass axes= if an axis was misread as C"
            )
        labels = labels.reshape([n for i, n in enumerate(labels.shape) if i != c])
        axes = axes.replace("C", "")
    if labels.size == 0:
        raise InputError(f"{name} are empty (shape {labels.shape})")
    kind = labels.dtype.kind
    if kind == "b":
        return labels.astype(np.uint8), axes
    if kind == "f":
        finite = np.isfinite(labels)
        if not finite.all():
            bad = labels[~finite]
            raise InputError(
                f"labels must be integers; {name} have dtype {labels.dtype} with {bad.size} non-finite "
                f"values, e.g. {float(bad[0])}"
            )
        frac = labels != np.round(labels)
        if frac.any():
            example = labels[frac][0]
            raise InputError(
                f"labels must be integers; {name} have dtype {labels.dtype} with non-integer "
                f"values, e.g. {example.item():g}"
            )
        labels = labels.astype(np.int64)
        kind = "i"
    if kind not in "iu":
        raise InputError(
            f"labels must be integers (or bool); {name} have dtype {labels.dtype}"
        )
    if kind == "i":
        lo = labels.min()
        if lo < 0:
            raise InputError(
                f"labels must be >= 0 (0 = background); {name} contain "
                f"{int(np.count_nonzero(labels < 0))} negative values, e.g. {int(lo)}"
            )
    return labels, axes
