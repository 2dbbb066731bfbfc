"""HDF5 (``.h5``/``.hdf5``/``.hdf``): datasets chosen by key, axes in an ``axes`` attribute."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import numpy as np

from unetkit.data.io.axes import infer_axes, stored_axes
from unetkit.data.io.paths import keys_text
from unetkit.errors import InputError, MissingFileError
from unetkit.utils.atomic import atomic_target

_DEFAULT_KEY = "data"


def _dataset_keys(f: Any) -> list[str]:
    import h5py

    keys: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            keys.append(name)

    f.visititems(visit)
    return sorted(keys)


def _pick(f: Any, p: pathlib.Path, key: str | None) -> Any:
    import h5py

    if key is None:
        keys = _dataset_keys(f)
        if len(keys) == 1:
            return f[keys[0]]
        if not keys:
            raise MissingFileError(f"the HDF5 file '{p}' contains no datasets")
        raise MissingFileError(
            f"the HDF5 file '{p}' contains {len(keys)} datasets; choose one with key= or "
            f"'{p.name}:KEY'; {keys_text(keys)}"
        )
    if key not in f:
        raise MissingFileError(
            f"key {key!r} not found in the HDF5 file '{p}'; {keys_text(_dataset_keys(f))}"
        )
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        inner = [f"{key.strip('/')}/{k}" for k in _dataset_keys(obj)]
        if len(inner) == 1:
            return f[inner[0]]
        raise MissingFileError(
            f"key {key!r} in '{p}' is a group, not a dataset; {keys_text(inner)}"
        )
    return obj


def _open(p: pathlib.Path, mode: str = "r") -> Any:
    import h5py

    try:
        return h5py.File(p, mode)
    except OSError as exc:
        raise InputError(f"cannot open '{p}' as HDF5: {exc}") from exc


def read_hdf5(
    p: pathlib.Path, key: str | None, axes: str | None, *, source: str
) -> tuple[np.ndarray, str | None]:
    """The dataset in file order, with its stored (or inferred) axes; None when ``axes`` given."""
    with _open(p) as f:
        ds = _pick(f, p, key)
        data = ds[()]
        inferred = None if axes is not None else infer_axes(
            stored_axes(ds.attrs), ds.shape, source=source
        )
    return data, inferred


def open_hdf5(p: pathlib.Path, key: str | None, mode: str, *, source: str) -> tuple[Any, str]:
    """The ``h5py.Dataset`` (its file stays open) and its axes in file order."""
    f = _open(p, mode)
    try:
        arr = _pick(f, p, key)
        axes = infer_axes(stored_axes(arr.attrs), arr.shape, source=source)
    except BaseException:
        f.close()
        raise
    return arr, axes


def write_hdf5(
    target: pathlib.Path,
    key: str | None,
    data: np.ndarray,
    canon: str,
    compression: bool,
    overwrite: bool,
) -> None:
    """Write a dataset at ``key`` (default ``'data'``) with an ``axes`` attribute, atomically.

    With a key, an existing file keeps its other datasets: a copy is edited, then swapped in.
    """
    import h5py

    def create(f: Any, name: str) -> None:
        ds = f.create_dataset(
            name,
            data=data,
            chunks=True if compression else None,
            compression="gzip" if compression else None,
        )
        ds.attrs["axes"] = canon

    with atomic_target(target) as tmp:
        if key is not None and target.exists():
            # Add to / replace inside an existing file: edit a copy, then swap it in.
            with _open(target) as f:
                exists = key in f
            if exists and not overwrite:
                raise InputError(
                    f"key {key!r} already exists in '{target}' and overwrite=False; pass "
                    f"overwrite=True or choose another key"
                )
            shutil.copyfile(target, tmp)
            with h5py.File(tmp, "a") as f:
                if exists:
                    del f[key]
                create(f, key)
        else:
            with h5py.File(tmp, "w") as f:
                create(f, key or _DEFAULT_KEY)
