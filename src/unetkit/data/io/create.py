"""Empty on-disk arrays to fill piece by piece (out-of-core outputs), swapped in atomically."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from unetkit.data.io.axes import validate_axes
from unetkit.data.io.ome import ome_attrs
from unetkit.data.io.paths import PathLike, resolve, supported_suffix
from unetkit.data.io.zarr import _is_zarr3
from unetkit.errors import InputError
from unetkit.utils.atomic import atomic_target

CHUNKED_FORMATS = ("hdf5", "zarr", "ome-zarr")


def is_chunked_target(path: PathLike) -> bool:
    """True if ``path`` (``file.h5:key`` allowed) names an HDF5 / Zarr / OME-Zarr target."""
    return resolve(path, None)[2] in CHUNKED_FORMATS


def _zarr_empty(store: pathlib.Path, name: str | None, shape: tuple[int, ...], dtype: np.dtype,
                chunks: tuple[int, ...], canon: str, nested: bool) -> Any:
    import zarr

    if _is_zarr3():
        kw: dict[str, Any] = {"zarr_format": 2, "overwrite": True}
        if nested:
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
        overwrite: replace an existing target as a whole; otherwise an existing target is an error.

    The array is built at a hidden temporary path next to the target; only when the ``with``
    block finishes without error does it replace the target, so a failure (or a kill) never
    leaves a half-written result under the target's name.
    """
    p, k, fmt = resolve(path, key)
    if fmt not in CHUNKED_FORMATS:
        raise InputError(f"{p} is not an HDF5 or Zarr target ({supported_suffix(p.name) or p.suffix}); "
                         "out-of-core outputs need .zarr, .ome.zarr or .h5")
    canon = validate_axes(axes, len(shape))
    if canon != "".join(a for a in "CZYX" if a in canon):
        raise InputError(f"axes {axes!r} must be in canonical order (a subsequence of CZYX)")
    if p.exists() and not overwrite:
        raise InputError(f"output {p} already exists; pass overwrite to replace it")
    shape, np_dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    chunk = tuple(int(c) for c in chunks) if chunks is not None else None
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
            import zarr

            root = zarr.open_group(str(tmp), mode="w", **({"zarr_format": 2} if _is_zarr3() else {}))
            group = root.require_group(k) if k else root
            group.attrs["multiscales"] = ome_attrs(canon, p.name[: -len(".ome.zarr")])["multiscales"]
            yield _zarr_empty(tmp, f"{k}/0" if k else "0", shape, np_dtype, chunk or shape, canon, nested=True)
