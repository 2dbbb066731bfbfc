"""Axes strings: the canonical ``'CZYX'`` order, checks, inference and reordering.

Arrays in the API are in canonical order, a subsequence of ``'CZYX'``; when reading, ``S``
(samples, read as ``C``) and a singleton ``T`` (dropped) are accepted as well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from unetkit.errors import InputError

CANONICAL_AXES = "CZYX"
_VALID_LETTERS_MSG = "valid axes letters are C, Z, Y, X (and T, S for reading only)"


def _axes_error_prefix(axes: str, source: str | None) -> str:
    where = f" for {source}" if source else ""
    return f"axes {axes!r}{where}"


def _distinct_letters(axes: Any, source: str | None, *, reading: bool) -> tuple[str, str]:
    """``axes`` upper-cased, checked to be a string of distinct known letters (T and S only
    when ``reading``), and the prefix for further error messages about it."""
    if not isinstance(axes, str):
        raise InputError(
            f"axes must be a string such as 'ZYX' or 'CYX'; got {axes!r} ({type(axes).__name__})"
        )
    up = axes.upper()
    prefix = _axes_error_prefix(axes, source)
    for letter in up:
        if not reading and letter in "TS":
            raise InputError(
                f"{prefix} contains axis {letter!r}, which is accepted only when reading; "
                f"{_VALID_LETTERS_MSG}"
            )
        if letter not in CANONICAL_AXES + "TS":
            raise InputError(f"{prefix} contains unknown axis {letter!r}; {_VALID_LETTERS_MSG}")
    dupes = sorted({a for a in up if up.count(a) > 1})
    if dupes:
        raise InputError(f"{prefix} repeats axis {', '.join(dupes)}; each axis may appear once")
    return up, prefix


def validate_axes(axes: str, ndim: int) -> str:
    """Check an axes string for an array with ``ndim`` dimensions and return it upper-cased.

    Letters must come from ``'CZYX'``, each at most once, ``Y`` and ``X`` are required, any order
    is allowed, and the length must equal ``ndim``. Raises :class:`InputError` otherwise.
    """
    return validate_axes_for(axes, ndim, source=None)


def validate_axes_for(axes: Any, ndim: int, *, source: str | None) -> str:
    """:func:`validate_axes`, naming ``source`` (the file or array) in the error messages."""
    up, prefix = _distinct_letters(axes, source, reading=False)
    missing = [a for a in "YX" if a not in up]
    if missing:
        raise InputError(
            f"{prefix} lacks required axis {' and '.join(missing)}; every image needs Y and X "
            f"(e.g. 'YX', 'ZYX', 'CYX', 'CZYX')"
        )
    if len(up) != ndim:
        raise InputError(
            f"{prefix} has {len(up)} letters but the array has {ndim} dimensions; "
            f"give one letter per dimension"
        )
    return up


def parse_read_axes(
    axes: Any, shape: Sequence[int], *, source: str | None
) -> tuple[str, tuple[int, ...]]:
    """Read-side axes check.

    Accepts ``S`` (mapped to ``C``) and a singleton ``T``. Returns ``(axes, drop)``: the axes of
    the array after removing the dimensions at positions ``drop`` (singleton T), in file order.
    """
    up, prefix = _distinct_letters(axes, source, reading=True)
    if "S" in up and "C" in up:
        raise InputError(
            f"{prefix} has both S (samples) and C (channels); only one channel axis is supported"
        )
    up = up.replace("S", "C")
    if len(up) != len(shape):
        raise InputError(
            f"{prefix} has {len(up)} letters but the array has {len(shape)} dimensions "
            f"(shape {tuple(shape)}); give one letter per dimension"
        )
    drop: tuple[int, ...] = ()
    if "T" in up:
        t = up.index("T")
        if shape[t] != 1:
            raise InputError(
                f"{prefix}: the time axis T has length {shape[t]} (shape {tuple(shape)}); only a "
                f"singleton T is supported. Pass axes with Z in place of T to treat time as depth, "
                f"or split the time points into separate files"
            )
        drop = (t,)
        up = up.replace("T", "")
    kept = validate_axes_for(up, len(shape) - len(drop), source=source)
    return kept, drop


def axes_by_ndim(ndim: int, *, source: str) -> str:
    """The axes of an array without axes metadata: 2 -> ``YX``, 3 -> ``ZYX``, 4 -> ``CZYX``."""
    guess = {2: "YX", 3: "ZYX", 4: "CZYX"}.get(ndim)
    if guess is None:
        raise InputError(
            f"cannot infer the axes of the {ndim}-D array in {source}; pass axes= explicitly "
            f"(letters C, Z, Y, X, plus a singleton T)"
        )
    return guess


def to_canonical(array: Any, axes: str) -> tuple[Any, str]:
    """Transpose ``array`` with axes ``axes`` (letters of 'CZYX') to canonical order."""
    canon = "".join(a for a in CANONICAL_AXES if a in axes)
    if canon == axes:
        return array, canon
    perm = [axes.index(a) for a in canon]
    return array.transpose(perm), canon


def stored_axes(attrs: Any) -> str | None:
    """Axes stored in an HDF5/Zarr attribute mapping ('axes' string/list or ilastik 'axistags')."""
    try:
        value = attrs.get("axes") if "axes" in attrs else None
        if value is None and "axistags" in attrs:
            tags = attrs["axistags"]
            if isinstance(tags, bytes):
                tags = tags.decode()
            value = [t["key"] for t in json.loads(tags)["axes"]]
    except Exception:  # noqa: BLE001 - foreign metadata we do not understand is ignored
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        try:
            value = "".join(v.decode() if isinstance(v, bytes) else str(v) for v in value)
        except Exception:  # noqa: BLE001
            return None
    return value.upper() if isinstance(value, str) and value else None


def infer_axes(stored: str | None, shape: Sequence[int], *, source: str) -> str:
    """Use stored axes when they fit the array, else the ndim rule."""
    if stored is not None:
        try:
            parse_read_axes(stored, shape, source=source)
            return stored
        except InputError:
            pass
    return axes_by_ndim(len(shape), source=source)
