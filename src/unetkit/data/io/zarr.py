"""Zarr (``.zarr``) and OME-Zarr (``.ome.zarr``) stores, with zarr-python 2 or 3.

Arrays carry an ``axes`` attribute (or Zarr v3 ``dimension_names``); OME-Zarr images carry
them in ``multiscales``, and any group with ``multiscales`` metadata is read as OME-Zarr.
Stores written here use Zarr format 2 (OME-Zarr v0.4); keys added to an existing Zarr v3 store
follow its format (OME-Zarr 0.5).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from unetkit.data.io.axes import infer_axes, stored_axes
from unetkit.data.io.ome import ome_attrs, ome_axes, ome_multiscale
from unetkit.data.io.paths import keys_text, location_text, supported_suffix
from unetkit.errors import InputError, MissingFileError
from unetkit.utils.atomic import atomic_target


def _is_zarr3() -> bool:
    import zarr

    return int(zarr.__version__.split(".")[0]) >= 3


def _is_group(node: Any) -> bool:
    import zarr

    return isinstance(node, zarr.Group)


def _array_keys(group: Any, prefix: str = "") -> list[str]:
    keys = [f"{prefix}{k}" for k in group.array_keys()]
    for name in group.group_keys():
        keys.extend(_array_keys(group[name], f"{prefix}{name}/"))
    return sorted(keys)


def _attrs_dict(node: Any) -> dict[str, Any]:
    attrs = node.attrs
    if hasattr(attrs, "asdict"):
        return dict(attrs.asdict())
    return dict(attrs)


def _open_root(p: pathlib.Path, mode: str = "r") -> Any:
    import zarr

    try:
        return zarr.open(str(p), mode=mode)
    except FileNotFoundError as exc:
        raise MissingFileError(f"no Zarr array or group found at '{p}'") from exc
    except Exception as exc:  # noqa: BLE001
        raise InputError(
            f"cannot open '{p}' as Zarr: {exc} (Zarr format 3 / OME-Zarr 0.5 stores need "
            f"zarr-python >= 3)"
        ) from exc


def open_zarr(
    p: pathlib.Path, key: str | None, mode: str = "r", *, infer: bool = True
) -> tuple[Any, str | None]:
    """Find the array to read in a Zarr store; return it with its axes (file order, may hold T).

    With ``infer=False`` the axes are not looked up and ``None`` is returned in their place.
    """
    root = _open_root(p, mode)
    node = root
    if key is not None:
        k = key.strip("/")
        if not _is_group(root):
            raise MissingFileError(
                f"key {key!r} not found: '{p}' is a single Zarr array, not a group; "
                f"read it without a key"
            )
        if k not in root:
            available = keys_text(_array_keys(root))
            raise MissingFileError(f"key {key!r} not found in the Zarr store '{p}'; {available}")
        node = root[k]
    source = location_text(p, key)
    if _is_group(node):
        ms = ome_multiscale(_attrs_dict(node))
        if ms is not None:
            datasets = ms.get("datasets") or []
            if not datasets or "path" not in datasets[0]:
                raise InputError(f"the OME-Zarr image {source} lists no datasets in 'multiscales'")
            level0 = str(datasets[0]["path"])
            if level0 not in node:
                raise MissingFileError(
                    f"the OME-Zarr image {source} names dataset {level0!r}, which is missing; "
                    f"{keys_text(_array_keys(node))}"
                )
            arr = node[level0]
            return arr, (ome_axes(ms, arr.ndim, source=source) if infer else None)
        keys = _array_keys(node)
        if len(keys) != 1:
            where = f"the group {key!r} in '{p}'" if key else f"the Zarr group '{p}'"
            if not keys:
                raise MissingFileError(f"{where} contains no arrays")
            prefix = f"{key.strip('/')}/" if key else ""
            raise MissingFileError(
                f"{where} contains {len(keys)} arrays; choose one with key= or "
                f"'{p.name}:KEY'; {keys_text([prefix + k for k in keys])}"
            )
        node = node[keys[0]]
        key = f"{key.strip('/')}/{keys[0]}" if key else keys[0]
    if not infer:
        return node, None
    stored = stored_axes(_attrs_dict(node))
    if stored is None:
        names = getattr(getattr(node, "metadata", None), "dimension_names", None)
        if names and all(isinstance(n, str) and n for n in names):
            stored = "".join(names).upper()
    if stored is None and key is not None and "/" in key.strip("/"):
        # An array that is one level of an OME-Zarr multiscale image: use the parent's axes.
        parent_key, name = key.strip("/").rsplit("/", 1)
        ms = ome_multiscale(_attrs_dict(root[parent_key]))
        if ms is not None and any(str(d.get("path")) == name for d in ms.get("datasets", [])):
            stored = ome_axes(ms, node.ndim, source=source)
    elif stored is None and key is not None and _is_group(root):
        ms = ome_multiscale(_attrs_dict(root))
        if ms is not None and any(
            str(d.get("path")) == key.strip("/") for d in ms.get("datasets", [])
        ):
            stored = ome_axes(ms, node.ndim, source=source)
    return node, infer_axes(stored, node.shape, source=source)


def _create_array(
    store: pathlib.Path,
    name: str | None,
    data: np.ndarray,
    canon: str,
    *,
    compression: bool,
    zarr_format: int,
    nested: bool,
) -> None:
    """Create (replacing) an array at ``name`` (None: the store root) and fill it."""
    import zarr

    if _is_zarr3():
        kw: dict[str, Any] = {"zarr_format": zarr_format, "overwrite": True}
        if not compression:
            kw["compressors"] = None
        if zarr_format == 2:
            if nested:
                kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            kw["dimension_names"] = [a.lower() for a in canon]
        zarr.create_array(
            str(store), name=name, data=data, attributes={"axes": canon}, **kw
        )
    else:  # zarr-python 2
        kw2: dict[str, Any] = {}
        if not compression:
            kw2["compressor"] = None
        if nested:
            kw2["dimension_separator"] = "/"
        arr = zarr.open_array(
            str(store),
            mode="w",
            path=name or "",
            shape=data.shape,
            dtype=data.dtype,
            chunks=True,
            **kw2,
        )
        arr[...] = data
        arr.attrs["axes"] = canon


def _open_group(store: pathlib.Path, mode: str, zarr_format: int | None = None) -> Any:
    import zarr

    kw = {"zarr_format": zarr_format} if (zarr_format and _is_zarr3()) else {}
    return zarr.open_group(str(store), mode=mode, **kw)


def _format_of(node: Any) -> int:
    meta = getattr(node, "metadata", None)
    return int(getattr(meta, "zarr_format", 2))


def _write_into(
    store: pathlib.Path,
    key: str | None,
    data: np.ndarray,
    canon: str,
    *,
    ome: bool,
    compression: bool,
    zarr_format: int,
    image_name: str,
) -> None:
    """Write an array (or an OME-Zarr multiscale group) at ``key`` (None: root) of ``store``."""
    if not ome:
        _create_array(
            store, key, data, canon,
            compression=compression, zarr_format=zarr_format, nested=False,
        )
        return
    root = _open_group(store, "a", zarr_format)
    group = root
    if key is not None:
        if key in root:
            del root[key]
        group = root.require_group(key)
    if zarr_format == 3:  # an existing Zarr v3 store: OME-Zarr 0.5 layout
        multiscales = ome_attrs(canon, image_name)["multiscales"]
        multiscales[0].pop("version", None)
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    else:
        group.attrs["multiscales"] = ome_attrs(canon, image_name)["multiscales"]
    level0 = f"{key}/0" if key else "0"
    _create_array(
        store, level0, data, canon,
        compression=compression, zarr_format=zarr_format, nested=True,
    )


def write_zarr(
    target: pathlib.Path,
    key: str | None,
    data: np.ndarray,
    canon: str,
    *,
    ome: bool,
    compression: bool,
    overwrite: bool,
) -> None:
    """Write ``data`` at ``key`` of the store ``target`` (no key: the store is replaced).

    A new store is written to a temporary folder and moved into place; a key of an existing
    store is written under a hidden name in its group and renamed into place, so the store's
    other arrays are never touched.
    """
    stem = target.name[: -len(supported_suffix(target.name) or "")] or target.name
    if key is not None:
        key = key.strip("/") or None
    if key is not None and target.exists():
        # Add to / replace one key of an existing store (a store is a directory tree).
        root = _open_root(target, "r")
        if not _is_group(root):
            raise InputError(
                f"'{target}' is a single Zarr array, not a group, so key {key!r} cannot be "
                f"added; write to another store or without a key"
            )
        if key in root and not overwrite:
            raise InputError(
                f"key {key!r} already exists in '{target}' and overwrite=False; pass "
                f"overwrite=True or choose another key"
            )
        # built under a hidden name in the key's group, then renamed into place: the other
        # datasets are never touched, and the old one stays until the new one is complete
        zarr_format = _format_of(root)
        parent, _, leaf = key.rpartition("/")
        if parent:
            _open_group(target, "a", zarr_format).require_group(parent)
        with atomic_target(target / parent / leaf if parent else target / leaf) as tmp:
            _write_into(
                tmp, None, data, canon, ome=ome, compression=compression,
                zarr_format=zarr_format, image_name=stem,
            )
        return
    with atomic_target(target) as tmp:
        if key is not None:
            _open_group(tmp, "w", 2)
        _write_into(
            tmp, key, data, canon, ome=ome, compression=compression,
            zarr_format=2, image_name=stem,
        )
