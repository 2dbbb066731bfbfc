"""Where an image lives: a path, an optional dataset key, and the format its suffix names.

A dataset inside an HDF5 file or a Zarr store is selected with ``key=`` or a ``':key'`` suffix
on the path (``'vol.h5:raw/data'``); the format comes from the suffix, case-insensitive.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from unetkit.errors import InputError, MissingFileError

PathLike = str | os.PathLike

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".tif",
    ".tiff",
    ".png",
    ".h5",
    ".hdf5",
    ".hdf",
    ".zarr",
    ".ome.zarr",
)

_CONTAINER_SUFFIXES = (".h5", ".hdf5", ".hdf", ".zarr")
_FORMAT_OF_SUFFIX = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".zarr": "zarr",
    ".ome.zarr": "ome-zarr",
}


def supported_suffix(name: str) -> str | None:
    """The supported suffix that ``name`` ends with (longest match, case-insensitive), or None."""
    low = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix) and len(low) > len(suffix):
            return suffix
    return None


def suffixes_text() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def parse_location(path: PathLike) -> tuple[pathlib.Path, str | None]:
    """Split ``'file.h5:raw/data'`` into ``(Path('file.h5'), 'raw/data')``.

    Only a ``':'`` that directly follows a container suffix (``.h5``, ``.hdf5``, ``.hdf``,
    ``.zarr``, case-insensitive) splits, and the last such ``':'`` wins, so Windows drive letters
    (``'C:\\x.tif'``, ``'C:\\d\\f.h5:raw'``) are handled. A plain path gives ``(path, None)``; an
    empty key (``'f.h5:'``) gives ``None``. The split is purely lexical.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    low = text.lower()
    pos = low.rfind(":")
    while pos > 0:
        if low[:pos].endswith(_CONTAINER_SUFFIXES):
            key = text[pos + 1 :]
            return pathlib.Path(text[:pos]), (key or None)
        pos = low.rfind(":", 0, pos)
    return pathlib.Path(text), None


def location_text(path: pathlib.Path, key: str | None) -> str:
    """``'path'`` or ``'path:key'``, quoted, for messages."""
    return f"'{path}:{key}'" if key else f"'{path}'"


def resolve(path: PathLike, key: str | None) -> tuple[pathlib.Path, str | None, str]:
    """Split the path, reconcile the key and find the format from the suffix."""
    p, k = parse_location(path)
    if key is not None and not isinstance(key, str):
        raise InputError(f"key must be a string such as 'raw/data'; got {key!r}")
    if key == "":
        key = None
    if key is not None and k is not None and key.strip("/") != k.strip("/"):
        raise InputError(
            f"two different keys were given: {k!r} in the path {os.fspath(path)!r} and "
            f"key={key!r}; give only one"
        )
    k = key if key is not None else k
    suffix = supported_suffix(p.name)
    if suffix is None:
        if p.is_dir() and _looks_like_zarr(p):
            return p, k, "zarr"
        head, sep, _ = p.name.rpartition(":")
        if sep and supported_suffix(head) in (".tif", ".tiff", ".png"):
            raise InputError(
                f"{os.fspath(path)!r} has a ':key' suffix, but TIFF and PNG files hold a single "
                f"image; keys select datasets only in HDF5 (.h5, .hdf5, .hdf) and Zarr (.zarr)"
            )
        raise InputError(
            f"unsupported file type {p.name!r} ({p}); supported suffixes are {suffixes_text()}"
        )
    fmt = _FORMAT_OF_SUFFIX[suffix]
    if k is not None and fmt in ("tiff", "png"):
        raise InputError(
            f"a key ({k!r}) was given for {p}, but {fmt.upper()} files hold a single image; "
            f"keys select datasets only in HDF5 (.h5, .hdf5, .hdf) and Zarr (.zarr) containers"
        )
    return p, k, fmt


def _looks_like_zarr(p: pathlib.Path) -> bool:
    return any((p / name).exists() for name in (".zgroup", ".zarray", "zarr.json"))


def require_exists(p: pathlib.Path) -> None:
    """Raise :class:`MissingFileError` (saying so when the folder is missing too) if no ``p``."""
    if not p.exists():
        hint = ""
        if not p.parent.exists():
            hint = f" (the folder {p.parent} does not exist either)"
        raise MissingFileError(f"no such file or directory: '{p}'{hint}")


def keys_text(keys: Sequence[str]) -> str:
    """The keys available in a container, for messages (at most 20 listed)."""
    if not keys:
        return "it contains no datasets"
    shown = ", ".join(repr(k) for k in keys[:20])
    more = f" and {len(keys) - 20} more" if len(keys) > 20 else ""
    return f"available keys: {shown}{more}"
