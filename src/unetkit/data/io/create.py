"""Empty on-disk arrays to fill piece by piece (out-of-core outputs), swapped in atomically."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from unetkit.data.io.axes import validate_axes
from unetkit.data.io.ome import ome_attrs
from unetkit.data.io.paths import PathLike, parse_location, resolve, supported_suffix
from unetkit.data.io.zarr import _is_zarr3
from unetkit.errors import InputError
from unetkit.utils.atomic import atomic_target

CHUNKED_FORMATS = ("hdf5", "zarr", "ome-zarr")


def is_chunked_target(path: PathLike) -> bool:
    """True if ``path`` (``file.h5:key`` allowed) names an HDF5 / Zarr / OME-Zarr target."""
    return resolve(path, None)[2] in CHUNKED_FORMATS


def target_exists(path: PathLike, key: str | None = None) -> bool:
    """Whether the output ``path`` exists; with a key (``file.h5:key``), whether that dataset does."""
    try:
        p, k, fmt = resolve(path, key)
    except InputError:  # an unsupported suffix: say whether the path exists, the writer explains the rest
        return parse_location(path)[0].exists()
    k = k.strip("/") if k else None
    if not p.exists() or not k or fmt not in CHUNKED_FORMATS:
        return p.exists()
    if fmt == "hdf5":
        from unetkit.data.io.hdf5 import _open

        with _open(p) as f:
            return k in f
    from unetkit.data.io.zarr import _is_group, _open_root

    root = _open_root(p, "r")
    return not _is_group(root) or k in root


def _zarr_empty(store: pathlib.Path, name: str | None, shape: tuple[int, ...], dtype: np.dtype,
                chunks: tuple[int, ...], canon: str, nested: bool, zarr_format: int = 2) -> Any:
    import zarr

    if _is_zarr3():
        kw: dict[str, Any] = {"zarr_format": zarr_format, "overwrite": True}
        if nested and zarr_format == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        return zarr.create_array(str(store), name=name, shape=shape, chunks=chunks, dtype=dtype,
                                 attributes={"axes": canon}, fill_value=0, **kw)
    arr = zarr.open_array(str(store), mode="w", path=name or "", shape=shape, chunks=chunks, dtype=dtype,
                          fill_value=0, **({"dimension_separator": "/"} if nested else {}))
    arr.attrs["axes"] = canon
    return arr


@contextmanager
def new_array(
    path: PathLike,
    *,
    shape: Sequence[int],
    dtype: Any,
    axes: str,
    chunks: Sequence[int] | None = None,
    key: str | None = None,
    overwrite: bool = False,
) -> Iterator[Any]:
    """Create an empty chunked array on disk, yield it for writing, then move it into place.

    Args:
        path: target ``.zarr`` / ``.ome.zarr`` store or ``.h5`` file (``file.h5:key`` allowed).
        shape, dtype: of the array, in canonical ``[C][Z]YX`` order given by ``axes``.
        chunks: chunk shape (default: the format's choice).
        key: dataset inside the container (HDF5 default ``'data'``; Zarr default: the root).
        overwrite: replace an existing target (with a key: only that dataset); otherwise an
            existing target is an error. A key added to an existing container needs no overwrite.

    The array is built at a hidden temporary path next to the target; only when the ``with``
    block finishes without error does it replace the target, so a failure (or a kill) never
    leaves a half-written result under the target's name. With a key and an existing container,
    every other dataset is kept: a Zarr array (or OME-Zarr group) is built under a hidden name
    in the key's group and renamed into place; an HDF5 file is copied, the dataset written into
    the copy, and the copy swapped in (HDF5 cannot be edited in place safely: a kill mid-write
    can corrupt the whole file, and the file may be open for reading as the input).
    """
    p, k, fmt = resolve(path, key)
    if fmt not in CHUNKED_FORMATS:
        raise InputError(f"{p} is not an HDF5 or Zarr target ({supported_suffix(p.name) or p.suffix}); "
                         "out-of-core outputs need .zarr, .ome.zarr or .h5")
    canon = validate_axes(axes, len(shape))
    if canon != "".join(a for a in "CZYX" if a in canon):
        raise InputError(f"axes {axes!r} must be in canonical order (a subsequence of CZYX)")
    k = (k.strip("/") or None) if k else None
    shape, np_dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    chunk = tuple(int(c) for c in chunks) if chunks is not None else None
    if k is not None and p.exists():
        with _into_container(p, k, fmt, overwrite=overwrite) as (tmp, zarr_format):
            if fmt == "hdf5":
                yield _hdf5_dataset(tmp, k, shape, np_dtype, chunk, canon)
            elif fmt == "zarr":
                yield _zarr_empty(tmp, None, shape, np_dtype, chunk or shape, canon, nested=False,
                                  zarr_format=zarr_format)
            else:
                yield _ome_empty(tmp, None, p, shape, np_dtype, chunk or shape, canon, zarr_format)
        return
    if p.exists() and not overwrite:
        raise InputError(f"output {p} already exists; pass overwrite to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(p) as tmp:
        if fmt == "hdf5":
            import h5py

            with h5py.File(tmp, "w") as f:
                ds = f.create_dataset(k or "data", shape=shape, dtype=np_dtype, chunks=chunk or True)
                ds.attrs["axes"] = canon
                yield ds
        elif fmt == "zarr":
            yield _zarr_empty(tmp, k, shape, np_dtype, chunk or shape, canon, nested=False)
        else:
            yield _ome_empty(tmp, k, p, shape, np_dtype, chunk or shape, canon, 2)


def _hdf5_dataset(file: Any, key: str, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...] | None,
                  canon: str) -> Any:
    """An empty dataset at ``key`` of the open h5py ``file`` (an existing one there is deleted first)."""
    if key in file:
        del file[key]
    ds = file.create_dataset(key, shape=shape, dtype=dtype, chunks=chunks or True)
    ds.attrs["axes"] = canon
    return ds


def _ome_empty(store: pathlib.Path, key: str | None, target: pathlib.Path, shape: tuple[int, ...], dtype: np.dtype,
               chunks: tuple[int, ...], canon: str, zarr_format: int) -> Any:
    """An OME-Zarr image group (``multiscales``, level ``0``) at ``key`` of ``store`` (None: the root)."""
    import zarr

    root = zarr.open_group(str(store), mode="a", **({"zarr_format": zarr_format} if _is_zarr3() else {}))
    group = root.require_group(key) if key else root
    multiscales = ome_attrs(canon, target.name[: -len(".ome.zarr")])["multiscales"]
    if zarr_format == 3:  # OME-Zarr 0.5 layout in a Zarr v3 store
        multiscales[0].pop("version", None)
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    else:
        group.attrs["multiscales"] = multiscales
    return _zarr_empty(store, f"{key}/0" if key else "0", shape, dtype, chunks, canon, nested=True,
                       zarr_format=zarr_format)


@contextmanager
def _into_container(p: pathlib.Path, key: str, fmt: str, *, overwrite: bool) -> Iterator[tuple[Any, int]]:
    """Replace (or add) only ``key`` of the existing container ``p``; yields where to build it.

    HDF5: yields the open copy of the file (swapped in on success). Zarr: yields a hidden
    folder in the key's group that becomes the key's folder on success; the Zarr format of the
    store (2 or 3) comes with it.
    """
    if fmt == "hdf5":
        import shutil

        import h5py

        from unetkit.data.io.hdf5 import _open

        with _open(p) as f:
            exists = key in f
        if exists and not overwrite:
            raise InputError(f"key {key!r} already exists in '{p}'; pass overwrite to replace it")
        with atomic_target(p) as tmp:
            shutil.copyfile(p, tmp)
            with h5py.File(tmp, "a") as f:
                yield f, 0
        return
    from unetkit.data.io.zarr import _format_of, _is_group, _open_root

    root = _open_root(p, "r")
    if not _is_group(root):
        raise InputError(f"'{p}' is a single Zarr array, not a group, so key {key!r} cannot be added; write to "
                         "another store or without a key")
    if key in root and not overwrite:
        raise InputError(f"key {key!r} already exists in '{p}'; pass overwrite to replace it")
    zarr_format = _format_of(root)
    parent, _, leaf = key.rpartition("/")
    if parent:
        import zarr

        zarr.open_group(str(p), mode="a", **({"zarr_format": zarr_format} if _is_zarr3() else {})).require_group(parent)
    with atomic_target(p / parent / leaf if parent else p / leaf) as tmp:
        yield tmp, zarr_format
