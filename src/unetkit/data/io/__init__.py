"""Reading and writing images and label arrays, with an explicit axes string.

Axis convention
---------------
Arrays in the API are NumPy arrays in *canonical* order: a subsequence of ``'CZYX'``
(channel first if present, then depth, then rows, then columns). 2-D data never gets a fake
``Z`` axis. The axes string travels with the array: every reader returns ``(array, axes)``
and every writer takes ``axes=``.

Axis letters: ``C`` channel, ``Z`` depth, ``Y`` rows, ``X`` columns. When *reading*, two more
letters are accepted in a user-given or file-given axes string: ``S`` (samples, e.g. RGB
components; treated as ``C``) and ``T`` (time; allowed only if singleton, then dropped).

Formats (chosen by suffix, case-insensitive): TIFF (``.tif``/``.tiff``), PNG, HDF5
(``.h5``/``.hdf5``/``.hdf``), Zarr (``.zarr``) and OME-Zarr (``.ome.zarr``; any Zarr group with
``multiscales`` metadata is read as OME-Zarr). A dataset inside a container is selected with
``key=`` or a ``':key'`` suffix on the path: ``'vol.h5:raw/data'``.

Where the axes are stored: TIFF files carry them in the ImageJ or tifffile "shaped"
description; HDF5 datasets and Zarr arrays written here carry an ``axes`` attribute (string in
canonical order); OME-Zarr carries them in ``multiscales``. When a file has no axes metadata
they are inferred from the number of dimensions: 2 -> ``YX``, 3 -> ``ZYX``, 4 -> ``CZYX``.

Zarr stores written here use Zarr format 2 (readable by zarr-python 2 and 3; OME-Zarr v0.4).
The heavy libraries (h5py, zarr, tifffile, Pillow) are imported inside the functions that use
them, so ``import unetkit.data.io`` is light.

Layout: :mod:`.paths` (locations, suffixes, formats), :mod:`.axes` (axes strings),
:mod:`.tiff`, :mod:`.png`, :mod:`.hdf5` and :mod:`.zarr` (one format each; :mod:`.ome`
holds the OME-Zarr metadata), :mod:`.checks` (image and label checks), :mod:`.folders` (listing and pairing),
:mod:`.lazy` (the view behind :func:`open_array`); this module dispatches on the format.
Writes go through :mod:`unetkit.utils.atomic`.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from unetkit.data.io.axes import (
    CANONICAL_AXES,
    parse_read_axes,
    to_canonical,
    validate_axes,
    validate_axes_for,
)
from unetkit.data.io.checks import check_image, check_labels
from unetkit.data.io.create import is_chunked_target, new_array, target_exists
from unetkit.data.io.folders import list_images, pair_images_labels, pair_masks
from unetkit.data.io.hdf5 import open_hdf5, read_hdf5, write_hdf5
from unetkit.data.io.lazy import DropAxes
from unetkit.data.io.paths import (
    SUPPORTED_SUFFIXES,
    PathLike,
    location_text,
    parse_location,
    require_exists,
    resolve,
)
from unetkit.data.io.png import read_png, write_png
from unetkit.data.io.tiff import read_tiff, write_tiff
from unetkit.data.io.zarr import open_zarr, write_zarr
from unetkit.errors import InputError
from unetkit.utils.atomic import atomic_target

__all__ = [
    "is_chunked_target",
    "new_array",
    "target_exists",
    "CANONICAL_AXES",
    "SUPPORTED_SUFFIXES",
    "parse_location",
    "validate_axes",
    "read_image",
    "write_image",
    "read_labels",
    "check_image",
    "list_images",
    "pair_images_labels",
    "pair_masks",
    "open_array",
]

# CANONICAL_AXES and PathLike are importable from here too, as before the split.


def _read_raw(
    path: PathLike, axes: str | None, key: str | None
) -> tuple[np.ndarray, str, str]:
    """Load the array in file order; return (array, axes in file order (maybe T/S), source)."""
    p, k, fmt = resolve(path, key)
    require_exists(p)
    source = location_text(p, k)
    if fmt == "tiff":
        data, inferred = read_tiff(p, axes)
    elif fmt == "png":
        data, inferred = read_png(p)
    elif fmt == "hdf5":
        data, inferred = read_hdf5(p, k, axes, source=source)
    else:  # zarr / ome-zarr
        arr, inferred = open_zarr(p, k, infer=axes is None)
        data = np.asarray(arr[...])
    data = np.asarray(data)
    file_axes = axes if axes is not None else inferred
    assert file_axes is not None
    return data, file_axes, source


def read_image(
    path: PathLike, *, axes: str | None = None, key: str | None = None
) -> tuple[np.ndarray, str]:
    """Read an image and return ``(array, axes)`` with the array in canonical ``[C][Z]YX`` order.

    ``axes`` describes the axis order *in the file* (letters C, Z, Y, X; S is read as C; a
    singleton T is dropped). When ``None`` it comes from the file's metadata (TIFF series axes,
    PNG mode, the ``axes`` attribute of HDF5/Zarr arrays, OME-Zarr ``multiscales``) or, when
    there is none, from the number of dimensions: 2 -> ``YX``, 3 -> ``ZYX``, 4 -> ``CZYX``.
    ``key`` (or a ``':key'`` suffix of ``path``) selects the dataset inside HDF5/Zarr; a
    container holding exactly one array needs no key. The returned axes string is a subsequence
    of ``'CZYX'``. The whole array is loaded into memory (see :func:`open_array` for lazy access).
    Singleton dimensions are never squeezed silently: axes must name every dimension.
    """
    data, file_axes, source = _read_raw(path, axes, key)
    kept, drop = parse_read_axes(file_axes, data.shape, source=source)
    if drop:
        data = data.reshape([n for i, n in enumerate(data.shape) if i not in drop])
    out, canon = to_canonical(data, kept)
    return np.ascontiguousarray(out), canon


def read_labels(
    path: PathLike, *, axes: str | None = None, key: str | None = None
) -> tuple[np.ndarray, str]:
    """Read a label image; return ``(labels, axes)`` with axes a subsequence of ``'ZYX'``.

    Integer dtypes are returned unchanged; ``bool`` becomes ``uint8``; floats whose values are
    all integers become ``int64`` (same values). Non-integral or non-finite floats, negative
    values and a non-singleton channel axis raise :class:`InputError` (a singleton C is dropped).
    """
    labels, canon = read_image(path, axes=axes, key=key)
    name = f"labels in {location_text(*resolve(path, key)[:2])}"
    return check_labels(labels, canon, name=name)


def open_array(
    path: PathLike, *, key: str | None = None, mode: str = "r"
) -> tuple[Any, str]:
    """Open an array lazily for out-of-core access; return ``(array_like, axes)``.

    HDF5 gives an ``h5py.Dataset`` (its file stays open while the dataset is referenced), Zarr
    and OME-Zarr give a ``zarr.Array`` (OME-Zarr: level 0). ``axes`` describe the array *as
    stored* (file order, not transposed; letters of 'CZYX'); a singleton T axis is hidden behind
    a small read-only view. TIFF and PNG are loaded into memory (canonical order).
    ``mode`` is ``'r'`` (read-only) or ``'r+'`` (read/write, HDF5/Zarr only).
    """
    if mode not in ("r", "r+"):
        raise InputError(f"mode must be 'r' or 'r+' for open_array; got {mode!r}")
    p, k, fmt = resolve(path, key)
    require_exists(p)
    source = location_text(p, k)
    if fmt in ("tiff", "png"):
        if mode != "r":
            raise InputError(
                f"{fmt.upper()} files can be opened only with mode='r'; use write_image to write"
            )
        return read_image(p)
    if fmt == "hdf5":
        arr, axes = open_hdf5(p, k, mode, source=source)
    else:
        arr, zaxes = open_zarr(p, k, mode)
        assert zaxes is not None
        axes = zaxes
    kept, drop = parse_read_axes(axes, arr.shape, source=source)
    if drop:
        return DropAxes(arr, drop), kept
    return arr, kept


def write_image(
    path: PathLike,
    array: np.ndarray,
    *,
    axes: str,
    key: str | None = None,
    compression: bool = True,
    overwrite: bool = True,
) -> pathlib.Path:
    """Write ``array`` (axes ``axes``: any order of a subsequence of 'CZYX') and return the path.

    The data is stored in canonical ``[C][Z]YX`` order with its axes recorded:

    * TIFF: ImageJ hyperstack (axes order ``[Z][C]YX``) for uint8/uint16/float32 without
      singleton axes, else a plain tifffile with ``axes`` in its metadata; zlib-compressed when
      ``compression``.
    * PNG: 2-D ``YX`` uint8/uint16, or ``CYX``/``YXC`` uint8 with 3 or 4 channels (RGB/RGBA);
      anything else raises :class:`InputError`.
    * HDF5: dataset at ``key`` (default ``'data'``), chunked and gzip-compressed when
      ``compression``, with an ``axes`` attribute.
    * Zarr (Zarr format 2): array at ``key``, or the store root is the array when no key.
    * OME-Zarr (``.ome.zarr``): a v0.4 group with a single-level ``multiscales`` entry,
      dataset ``'0'``, axes typed ``channel``/``space``.

    Without a key the file/store is the target and is replaced as a whole. With a key (argument
    or ``':key'`` suffix) an existing HDF5 file / Zarr group keeps its other datasets.
    Single files (TIFF, PNG, HDF5) are written atomically: to a temporary file in the same
    folder, then moved over the target with :func:`os.replace`, so a failure never leaves a
    half-written or clobbered file. A new Zarr store is written to a temporary folder and moved
    into place; adding a key to an existing Zarr store writes in place.
    ``overwrite=False`` raises :class:`InputError` if the target (the file, or the key when one is
    given) exists. Parent folders are created.
    """
    p, k, fmt = resolve(path, key)
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"cannot write an array of dtype {arr.dtype} to {p}; use bool, integer or float data"
        )
    ax = validate_axes_for(
        axes, arr.ndim, source=f"the array written to {location_text(p, k)}"
    )
    if arr.size == 0:
        raise InputError(f"cannot write an empty array (shape {arr.shape}) to {p}")
    data, canon = to_canonical(arr, ax)
    if fmt in ("tiff", "png", "hdf5") and p.is_dir():
        raise InputError(f"cannot write {fmt.upper()} to '{p}': it is an existing directory")
    target_exists = p.exists()
    if target_exists and not overwrite and (k is None or fmt in ("tiff", "png")):
        raise InputError(
            f"'{p}' already exists and overwrite=False; pass overwrite=True or choose another path"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tiff":
        with atomic_target(p) as tmp:
            write_tiff(tmp, data, canon, compression)
    elif fmt == "png":
        with atomic_target(p) as tmp:
            write_png(tmp, data, canon, p)
    elif fmt == "hdf5":
        write_hdf5(p, k, data, canon, compression, overwrite)
    else:
        write_zarr(
            p, k, data, canon,
            ome=fmt == "ome-zarr", compression=compression, overwrite=overwrite,
        )
    return p
