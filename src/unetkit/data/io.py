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
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from unetkit.errors import InputError, MissingFileError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "parse_location",
    "validate_axes",
    "read_image",
    "write_image",
    "read_labels",
    "check_image",
    "list_images",
    "pair_images_labels",
    "open_array",
]

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

CANONICAL_AXES = "CZYX"
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
_DEFAULT_H5_KEY = "data"
_VALID_LETTERS_MSG = "valid axes letters are C, Z, Y, X (and T, S for reading only)"
_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_OME_NAME_TO_LETTER = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------
# Paths, suffixes and axes
# --------------------------------------------------------------------------------------------


def _supported_suffix(name: str) -> str | None:
    """The supported suffix that ``name`` ends with (longest match, case-insensitive), or None."""
    low = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix) and len(low) > len(suffix):
            return suffix
    return None


def _suffixes_text() -> str:
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


def _axes_error_prefix(axes: str, source: str | None) -> str:
    where = f" for {source}" if source else ""
    return f"axes {axes!r}{where}"


def validate_axes(axes: str, ndim: int) -> str:
    """Check an axes string for an array with ``ndim`` dimensions and return it upper-cased.

    Letters must come from ``'CZYX'``, each at most once, ``Y`` and ``X`` are required, any order
    is allowed, and the length must equal ``ndim``. Raises :class:`InputError` otherwise.
    """
    return _validate_axes(axes, ndim, source=None)


def _validate_axes(axes: Any, ndim: int, *, source: str | None) -> str:
    if not isinstance(axes, str):
        raise InputError(
            f"axes must be a string such as 'ZYX' or 'CYX'; got {axes!r} ({type(axes).__name__})"
        )
    up = axes.upper()
    prefix = _axes_error_prefix(axes, source)
    for letter in up:
        if letter in "TS":
            raise InputError(
                f"{prefix} contains axis {letter!r}, which is accepted only when reading; "
                f"{_VALID_LETTERS_MSG}"
            )
        if letter not in CANONICAL_AXES:
            raise InputError(f"{prefix} contains unknown axis {letter!r}; {_VALID_LETTERS_MSG}")
    dupes = sorted({a for a in up if up.count(a) > 1})
    if dupes:
        raise InputError(f"{prefix} repeats axis {', '.join(dupes)}; each axis may appear once")
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


def _parse_read_axes(
    axes: Any, shape: Sequence[int], *, source: str | None
) -> tuple[str, tuple[int, ...]]:
    """Read-side axes check.

    Accepts ``S`` (mapped to ``C``) and a singleton ``T``. Returns ``(axes, drop)``: the axes of
    the array after removing the dimensions at positions ``drop`` (singleton T), in file order.
    """
    if not isinstance(axes, str):
        raise InputError(
            f"axes must be a string such as 'ZYX' or 'CYX'; got {axes!r} ({type(axes).__name__})"
        )
    up = axes.upper()
    prefix = _axes_error_prefix(axes, source)
    for letter in up:
        if letter not in "CZYXTS":
            raise InputError(f"{prefix} contains unknown axis {letter!r}; {_VALID_LETTERS_MSG}")
    dupes = sorted({a for a in up if up.count(a) > 1})
    if dupes:
        raise InputError(f"{prefix} repeats axis {', '.join(dupes)}; each axis may appear once")
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
    kept = _validate_axes(up, len(shape) - len(drop), source=source)
    return kept, drop


def _axes_by_ndim(ndim: int, *, source: str) -> str:
    guess = {2: "YX", 3: "ZYX", 4: "CZYX"}.get(ndim)
    if guess is None:
        raise InputError(
            f"cannot infer the axes of the {ndim}-D array in {source}; pass axes= explicitly "
            f"(letters C, Z, Y, X, plus a singleton T)"
        )
    return guess


def _to_canonical(array: Any, axes: str) -> tuple[Any, str]:
    """Transpose ``array`` with axes ``axes`` (letters of 'CZYX') to canonical order."""
    canon = "".join(a for a in CANONICAL_AXES if a in axes)
    if canon == axes:
        return array, canon
    perm = [axes.index(a) for a in canon]
    return array.transpose(perm), canon


def _source(path: pathlib.Path, key: str | None) -> str:
    return f"'{path}:{key}'" if key else f"'{path}'"


def _resolve(path: PathLike, key: str | None) -> tuple[pathlib.Path, str | None, str]:
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
    suffix = _supported_suffix(p.name)
    if suffix is None:
        if p.is_dir() and _looks_like_zarr(p):
            return p, k, "zarr"
        head, sep, _ = p.name.rpartition(":")
        if sep and _supported_suffix(head) in (".tif", ".tiff", ".png"):
            raise InputError(
                f"{os.fspath(path)!r} has a ':key' suffix, but TIFF and PNG files hold a single "
                f"image; keys select datasets only in HDF5 (.h5, .hdf5, .hdf) and Zarr (.zarr)"
            )
        raise InputError(
            f"unsupported file type {p.name!r} ({p}); supported suffixes are {_suffixes_text()}"
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


def _require_exists(p: pathlib.Path) -> None:
    if not p.exists():
        hint = ""
        if not p.parent.exists():
            hint = f" (the folder {p.parent} does not exist either)"
        raise MissingFileError(f"no such file or directory: '{p}'{hint}")


# --------------------------------------------------------------------------------------------
# Format-specific readers: each returns (array-like in file order, axes-or-None)
# --------------------------------------------------------------------------------------------


def _read_tiff(p: pathlib.Path, axes: str | None) -> tuple[np.ndarray, str]:
    import tifffile

    try:
        tif = tifffile.TiffFile(p)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad input file
        raise InputError(f"cannot read '{p}' as TIFF: {exc}") from exc
    with tif:
        if not tif.series:
            raise InputError(f"the TIFF file '{p}' contains no image data")
        series = tif.series[0]
        data = series.asarray()
        squeezed_axes = series.axes
        full_shape = tuple(series.get_shape(False))
    if axes is not None:
        # Use the squeezed shape unless the user's axes describe the unsqueezed one.
        if len(axes) != data.ndim and len(axes) == len(full_shape):
            data = data.reshape(full_shape)
        return data, axes
    return data, _infer_tiff_axes(squeezed_axes, data.shape, source=f"'{p}'")


def _infer_tiff_axes(tif_axes: str, shape: Sequence[int], *, source: str) -> str:
    """Map tifffile series axes to ours; fall back to the ndim rule when not meaningful."""
    mapped = tif_axes.upper().replace("S", "C") if "C" not in tif_axes else tif_axes.upper()
    generic = [a for a in mapped if a in "IQ"]
    if len(generic) == 1 and "Z" not in mapped:
        mapped = mapped.replace(generic[0], "Z")
    if "T" in mapped and len(mapped) == len(shape) and shape[mapped.index("T")] != 1:
        raise InputError(
            f"the TIFF file {source} is a time series (axes {tif_axes!r}, shape {tuple(shape)}); "
            f"only a singleton T is supported. Pass axes= explicitly (e.g. "
            f"{tif_axes.upper().replace('T', 'Z')!r} to treat time as depth)"
        )
    try:
        _parse_read_axes(mapped, shape, source=source)
    except InputError:
        return _axes_by_ndim(len(shape), source=source)
    return mapped


def _read_png(p: pathlib.Path) -> tuple[np.ndarray, str]:
    from PIL import Image

    try:
        with Image.open(p) as img:
            img.load()
            mode = img.mode
            data = np.asarray(img)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read '{p}' as PNG: {exc}") from exc
    if mode in ("I", "I;16B") or (mode.startswith("I;16")):
        # PNG stores at most 16 bits per sample; Pillow may hand them out as int32.
        data = data.astype(np.uint16)
    if data.ndim == 2:
        return data, "YX"
    return data, "YXC"


def _attr_axes(attrs: Any) -> str | None:
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


def _infer_container_axes(
    stored: str | None, shape: Sequence[int], *, source: str
) -> str:
    """Use stored axes when they fit the array, else the ndim rule."""
    if stored is not None:
        try:
            _parse_read_axes(stored, shape, source=source)
            return stored
        except InputError:
            pass
    return _axes_by_ndim(len(shape), source=source)


def _h5_dataset_keys(f: Any) -> list[str]:
    import h5py

    keys: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            keys.append(name)

    f.visititems(visit)
    return sorted(keys)


def _keys_text(keys: Sequence[str]) -> str:
    if not keys:
        return "it contains no datasets"
    shown = ", ".join(repr(k) for k in keys[:20])
    more = f" and {len(keys) - 20} more" if len(keys) > 20 else ""
    return f"available keys: {shown}{more}"


def _h5_pick(f: Any, p: pathlib.Path, key: str | None) -> Any:
    import h5py

    if key is None:
        keys = _h5_dataset_keys(f)
        if len(keys) == 1:
            return f[keys[0]]
        if not keys:
            raise MissingFileError(f"the HDF5 file '{p}' contains no datasets")
        raise MissingFileError(
            f"the HDF5 file '{p}' contains {len(keys)} datasets; choose one with key= or "
            f"'{p.name}:KEY'; {_keys_text(keys)}"
        )
    if key not in f:
        raise MissingFileError(
            f"key {key!r} not found in the HDF5 file '{p}'; {_keys_text(_h5_dataset_keys(f))}"
        )
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        inner = [f"{key.strip('/')}/{k}" for k in _h5_dataset_keys(obj)]
        if len(inner) == 1:
            return f[inner[0]]
        raise MissingFileError(
            f"key {key!r} in '{p}' is a group, not a dataset; {_keys_text(inner)}"
        )
    return obj


def _open_h5(p: pathlib.Path, mode: str = "r") -> Any:
    import h5py

    try:
        return h5py.File(p, mode)
    except OSError as exc:
        raise InputError(f"cannot open '{p}' as HDF5: {exc}") from exc


def _is_zarr3() -> bool:
    import zarr

    return int(zarr.__version__.split(".")[0]) >= 3


def _zarr_is_group(node: Any) -> bool:
    import zarr

    return isinstance(node, zarr.Group)


def _zarr_array_keys(group: Any, prefix: str = "") -> list[str]:
    keys = [f"{prefix}{k}" for k in group.array_keys()]
    for name in group.group_keys():
        keys.extend(_zarr_array_keys(group[name], f"{prefix}{name}/"))
    return sorted(keys)


def _attrs_dict(node: Any) -> dict[str, Any]:
    attrs = node.attrs
    if hasattr(attrs, "asdict"):
        return dict(attrs.asdict())
    return dict(attrs)


def _ome_multiscale(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``multiscales`` entry (OME-Zarr v0.4 top level or v0.5 under ``'ome'``)."""
    ms = attrs.get("multiscales")
    if ms is None and isinstance(attrs.get("ome"), dict):
        ms = attrs["ome"].get("multiscales")
    if isinstance(ms, list) and ms and isinstance(ms[0], dict):
        return ms[0]
    return None


def _ome_axes(ms: dict[str, Any], ndim: int, *, source: str) -> str:
    entries = ms.get("axes")
    if entries is None:
        # OME-Zarr <= 0.2: always 5-D t, c, z, y, x.
        return "TCZYX" if ndim == 5 else _axes_by_ndim(ndim, source=source)
    letters = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        kind = entry.get("type") if isinstance(entry, dict) else None
        letter = _OME_NAME_TO_LETTER.get(str(name).lower())
        if letter is None:
            letter = {"channel": "C", "time": "T"}.get(str(kind).lower())
        if letter is None:
            raise InputError(
                f"the OME-Zarr image {source} has axis {name!r} (type {kind!r}), which is not "
                f"supported; supported axes are t (singleton only), c, z, y, x"
            )
        letters.append(letter)
    return "".join(letters)


def _open_zarr_root(p: pathlib.Path, mode: str = "r") -> Any:
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


def _zarr_pick(
    p: pathlib.Path, key: str | None, mode: str = "r", *, infer: bool = True
) -> tuple[Any, str | None]:
    """Find the array to read in a Zarr store; return it with its axes (file order, may hold T).

    With ``infer=False`` the axes are not looked up and ``None`` is returned in their place.
    """
    root = _open_zarr_root(p, mode)
    node = root
    if key is not None:
        k = key.strip("/")
        if not _zarr_is_group(root):
            raise MissingFileError(
                f"key {key!r} not found: '{p}' is a single Zarr array, not a group; "
                f"read it without a key"
            )
        if k not in root:
            available = _keys_text(_zarr_array_keys(root))
            raise MissingFileError(f"key {key!r} not found in the Zarr store '{p}'; {available}")
        node = root[k]
    source = _source(p, key)
    if _zarr_is_group(node):
        ms = _ome_multiscale(_attrs_dict(node))
        if ms is not None:
            datasets = ms.get("datasets") or []
            if not datasets or "path" not in datasets[0]:
                raise InputError(f"the OME-Zarr image {source} lists no datasets in 'multiscales'")
            level0 = str(datasets[0]["path"])
            if level0 not in node:
                raise MissingFileError(
                    f"the OME-Zarr image {source} names dataset {level0!r}, which is missing; "
                    f"{_keys_text(_zarr_array_keys(node))}"
                )
            arr = node[level0]
            return arr, (_ome_axes(ms, arr.ndim, source=source) if infer else None)
        keys = _zarr_array_keys(node)
        if len(keys) != 1:
            where = f"the group {key!r} in '{p}'" if key else f"the Zarr group '{p}'"
            if not keys:
                raise MissingFileError(f"{where} contains no arrays")
            prefix = f"{key.strip('/')}/" if key else ""
            raise MissingFileError(
                f"{where} contains {len(keys)} arrays; choose one with key= or "
                f"'{p.name}:KEY'; {_keys_text([prefix + k for k in keys])}"
            )
        node = node[keys[0]]
        key = f"{key.strip('/')}/{keys[0]}" if key else keys[0]
    if not infer:
        return node, None
    stored = _attr_axes(_attrs_dict(node))
    if stored is None:
        names = getattr(getattr(node, "metadata", None), "dimension_names", None)
        if names and all(isinstance(n, str) and n for n in names):
            stored = "".join(names).upper()
    if stored is None and key is not None and "/" in key.strip("/"):
        # An array that is one level of an OME-Zarr multiscale image: use the parent's axes.
        parent_key, name = key.strip("/").rsplit("/", 1)
        ms = _ome_multiscale(_attrs_dict(root[parent_key]))
        if ms is not None and any(str(d.get("path")) == name for d in ms.get("datasets", [])):
            stored = _ome_axes(ms, node.ndim, source=source)
    elif stored is None and key is not None and _zarr_is_group(root):
        ms = _ome_multiscale(_attrs_dict(root))
        if ms is not None and any(
            str(d.get("path")) == key.strip("/") for d in ms.get("datasets", [])
        ):
            stored = _ome_axes(ms, node.ndim, source=source)
    return node, _infer_container_axes(stored, node.shape, source=source)


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def _read_raw(
    path: PathLike, axes: str | None, key: str | None
) -> tuple[np.ndarray, str, str]:
    """Load the array in file order; return (array, axes in file order (maybe T/S), source)."""
    p, k, fmt = _resolve(path, key)
    _require_exists(p)
    source = _source(p, k)
    if fmt == "tiff":
        data, inferred = _read_tiff(p, axes)
    elif fmt == "png":
        data, inferred = _read_png(p)
    elif fmt == "hdf5":
        with _open_h5(p) as f:
            ds = _h5_pick(f, p, k)
            data = ds[()]
            inferred = None if axes is not None else _infer_container_axes(
                _attr_axes(ds.attrs), ds.shape, source=source
            )
    else:  # zarr / ome-zarr
        arr, inferred = _zarr_pick(p, k, infer=axes is None)
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
    kept, drop = _parse_read_axes(file_axes, data.shape, source=source)
    if drop:
        data = data.reshape([n for i, n in enumerate(data.shape) if i not in drop])
    out, canon = _to_canonical(data, kept)
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
    name = f"labels in {_source(*_resolve(path, key)[:2])}"
    return _check_labels(labels, canon, name=name)


def _check_labels(labels: np.ndarray, axes: str, *, name: str) -> tuple[np.ndarray, str]:
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
                f"labels must be integers; got {labels.dtype} with {bad.size} non-finite "
                f"values, e.g. {float(bad[0])}"
            )
        frac = labels != np.round(labels)
        if frac.any():
            example = labels[frac][0]
            raise InputError(
                f"labels must be integers; got {labels.dtype} with non-integer values, "
                f"e.g. {example.item():g}"
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


class _DropAxes:
    """Lazy view of an array-like with some singleton dimensions removed (basic indexing only)."""

    def __init__(self, base: Any, drop: tuple[int, ...]) -> None:
        self.base = base
        self.drop = tuple(sorted(drop))
        self.shape = tuple(n for i, n in enumerate(base.shape) if i not in self.drop)
        self.dtype = base.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _expand(self, index: Any) -> tuple[Any, ...]:
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index):
            at = next(n for n, i in enumerate(index) if i is Ellipsis)
            fill = self.ndim - (len(index) - 1)
            index = index[:at] + (slice(None),) * fill + index[at + 1 :]
        index = index + (slice(None),) * (self.ndim - len(index))
        if len(index) != self.ndim:
            raise IndexError(f"too many indices for an array of shape {self.shape}")
        full: list[Any] = list(index)
        for pos in self.drop:
            full.insert(pos, 0)
        return tuple(full)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.base[self._expand(index)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)


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
    p, k, fmt = _resolve(path, key)
    _require_exists(p)
    source = _source(p, k)
    if fmt in ("tiff", "png"):
        if mode != "r":
            raise InputError(
                f"{fmt.upper()} files can be opened only with mode='r'; use write_image to write"
            )
        return read_image(p)
    if fmt == "hdf5":
        f = _open_h5(p, mode)
        try:
            arr = _h5_pick(f, p, k)
            axes = _infer_container_axes(_attr_axes(arr.attrs), arr.shape, source=source)
        except BaseException:
            f.close()
            raise
    else:
        arr, zaxes = _zarr_pick(p, k, mode)
        assert zaxes is not None
        axes = zaxes
    kept, drop = _parse_read_axes(axes, arr.shape, source=source)
    if drop:
        return _DropAxes(arr, drop), kept
    return arr, kept


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


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _temp_sibling(target: pathlib.Path) -> pathlib.Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def _remove(p: pathlib.Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def _atomic_target(target: pathlib.Path) -> Iterator[pathlib.Path]:
    """Yield a temporary sibling path; on success move it onto ``target``, on failure delete it.

    Files are swapped in with :func:`os.replace` (atomic). Directories (Zarr stores) cannot be
    replaced atomically; the old one is renamed aside first and restored if the move fails.
    """
    tmp = _temp_sibling(target)
    try:
        yield tmp
        if tmp.is_dir() and target.exists():
            backup = _temp_sibling(target)
            os.replace(target, backup)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(backup, target)
                raise
            _remove(backup)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def _write_tiff(tmp: pathlib.Path, data: np.ndarray, canon: str, compression: bool) -> None:
    import tifffile

    comp = "zlib" if compression else None
    # ImageJ hyperstacks hold only uint8/uint16/float32 and drop singleton axes on reading,
    # so they are used only when the axes survive the round trip.
    if data.dtype in _IMAGEJ_DTYPES and 1 not in data.shape:
        ij_axes = "".join(a for a in "ZCYX" if a in canon)  # ImageJ hyperstack order
        perm = [canon.index(a) for a in ij_axes]
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(data.transpose(perm)),
            imagej=True,
            metadata={"axes": ij_axes},
            photometric="minisblack",
            compression=comp,
        )
    else:
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(data),
            metadata={"axes": canon},
            photometric="minisblack",
            compression=comp,
        )


def _write_png(tmp: pathlib.Path, data: np.ndarray, canon: str, target: pathlib.Path) -> None:
    from PIL import Image

    ok_gray = canon == "YX" and data.dtype in (np.dtype(np.uint8), np.dtype(np.uint16))
    ok_rgb = canon == "CYX" and data.shape[0] in (3, 4) and data.dtype == np.uint8
    if not (ok_gray or ok_rgb):
        raise InputError(
            f"PNG cannot store this array ({target}): axes {canon!r} (canonical), shape "
            f"{data.shape}, dtype {data.dtype}. PNG holds 2-D 'YX' uint8/uint16 or RGB(A) "
            f"'CYX'/'YXC' uint8 with 3 or 4 channels; write a .tif (or .h5/.zarr) instead"
        )
    if ok_rgb:
        data = np.moveaxis(data, 0, -1)
    Image.fromarray(np.ascontiguousarray(data)).save(tmp, format="PNG")


def _write_h5(
    target: pathlib.Path,
    key: str | None,
    data: np.ndarray,
    canon: str,
    compression: bool,
    overwrite: bool,
) -> None:
    import h5py

    def create(f: Any, name: str) -> None:
        ds = f.create_dataset(
            name,
            data=data,
            chunks=True if compression else None,
            compression="gzip" if compression else None,
        )
        ds.attrs["axes"] = canon

    with _atomic_target(target) as tmp:
        if key is not None and target.exists():
            # Add to / replace inside an existing file: edit a copy, then swap it in.
            with _open_h5(target) as f:
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
                create(f, key or _DEFAULT_H5_KEY)


def _zarr_create_array(
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


def _zarr_open_group(store: pathlib.Path, mode: str, zarr_format: int | None = None) -> Any:
    import zarr

    kw = {"zarr_format": zarr_format} if (zarr_format and _is_zarr3()) else {}
    return zarr.open_group(str(store), mode=mode, **kw)


def _zarr_format_of(node: Any) -> int:
    meta = getattr(node, "metadata", None)
    return int(getattr(meta, "zarr_format", 2))


def _ome_attrs(canon: str, name: str) -> dict[str, Any]:
    kinds = {"C": "channel", "Z": "space", "Y": "space", "X": "space"}
    axes = [{"name": a.lower(), "type": kinds[a]} for a in canon]
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": axes,
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0] * len(canon)}
                        ],
                    }
                ],
            }
        ]
    }


def _write_zarr_into(
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
        _zarr_create_array(
            store, key, data, canon,
            compression=compression, zarr_format=zarr_format, nested=False,
        )
        return
    root = _zarr_open_group(store, "a", zarr_format)
    group = root
    if key is not None:
        if key in root:
            del root[key]
        group = root.require_group(key)
    if zarr_format == 3:  # an existing Zarr v3 store: OME-Zarr 0.5 layout
        multiscales = _ome_attrs(canon, image_name)["multiscales"]
        multiscales[0].pop("version", None)
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    else:
        group.attrs["multiscales"] = _ome_attrs(canon, image_name)["multiscales"]
    level0 = f"{key}/0" if key else "0"
    _zarr_create_array(
        store, level0, data, canon,
        compression=compression, zarr_format=zarr_format, nested=True,
    )


def _write_zarr(
    target: pathlib.Path,
    key: str | None,
    data: np.ndarray,
    canon: str,
    *,
    ome: bool,
    compression: bool,
    overwrite: bool,
) -> None:
    stem = target.name[: -len(_supported_suffix(target.name) or "")] or target.name
    if key is not None:
        key = key.strip("/") or None
    if key is not None and target.exists():
        # Add to / replace inside an existing store, in place (a store is a directory tree).
        root = _open_zarr_root(target, "r")
        if not _zarr_is_group(root):
            raise InputError(
                f"'{target}' is a single Zarr array, not a group, so key {key!r} cannot be "
                f"added; write to another store or without a key"
            )
        if key in root and not overwrite:
            raise InputError(
                f"key {key!r} already exists in '{target}' and overwrite=False; pass "
                f"overwrite=True or choose another key"
            )
        _write_zarr_into(
            target, key, data, canon, ome=ome, compression=compression,
            zarr_format=_zarr_format_of(root), image_name=stem,
        )
        return
    with _atomic_target(target) as tmp:
        if key is not None:
            _zarr_open_group(tmp, "w", 2)
        _write_zarr_into(
            tmp, key, data, canon, ome=ome, compression=compression,
            zarr_format=2, image_name=stem,
        )


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
    p, k, fmt = _resolve(path, key)
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"cannot write an array of dtype {arr.dtype} to {p}; use bool, integer or float data"
        )
    ax = _validate_axes(axes, arr.ndim, source=f"the array written to {_source(p, k)}")
    if arr.size == 0:
        raise InputError(f"cannot write an empty array (shape {arr.shape}) to {p}")
    data, canon = _to_canonical(arr, ax)
    if fmt in ("tiff", "png", "hdf5") and p.is_dir():
        raise InputError(f"cannot write {fmt.upper()} to '{p}': it is an existing directory")
    target_exists = p.exists()
    if target_exists and not overwrite and (k is None or fmt in ("tiff", "png")):
        raise InputError(
            f"'{p}' already exists and overwrite=False; pass overwrite=True or choose another path"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tiff":
        with _atomic_target(p) as tmp:
            _write_tiff(tmp, data, canon, compression)
    elif fmt == "png":
        with _atomic_target(p) as tmp:
            _write_png(tmp, data, canon, p)
    elif fmt == "hdf5":
        _write_h5(p, k, data, canon, compression, overwrite)
    else:
        _write_zarr(
            p, k, data, canon,
            ome=fmt == "ome-zarr", compression=compression, overwrite=overwrite,
        )
    return p


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def _stem(p: pathlib.Path) -> str:
    suffix = _supported_suffix(p.name)
    return p.name[: -len(suffix)] if suffix else p.stem


def list_images(folder: PathLike) -> list[pathlib.Path]:
    """Sorted paths in ``folder`` with a supported suffix (case-insensitive).

    ``.zarr`` / ``.ome.zarr`` directories count as images; other directories and hidden names
    (starting with '.', e.g. macOS '._x.tif' files and unfinished temporary writes) do not.
    """
    d = pathlib.Path(folder)
    if not d.exists():
        raise MissingFileError(f"no such folder: '{d}'")
    if not d.is_dir():
        raise InputError(f"'{d}' is a file, not a folder of images")
    found = []
    for entry in d.iterdir():
        if entry.name.startswith("."):
            continue
        suffix = _supported_suffix(entry.name)
        if suffix is None:
            continue
        if entry.is_dir() and not suffix.endswith(".zarr"):
            continue
        found.append(entry)
    if not found:
        raise InputError(
            f"the folder '{d}' contains no images; supported suffixes are {_suffixes_text()}"
        )
    return sorted(found)


def _by_stem(paths: list[pathlib.Path], folder: PathLike) -> dict[str, pathlib.Path]:
    out: dict[str, pathlib.Path] = {}
    for p in paths:
        s = _stem(p)
        if s in out:
            raise InputError(
                f"two files in '{folder}' share the name {s!r}: {out[s].name!r} and {p.name!r}; "
                f"keep one so that images and labels pair unambiguously"
            )
        out[s] = p
    return out


def pair_images_labels(
    image_dir: PathLike, label_dir: PathLike
) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """Pair images with labels by name without the suffix ('a.tif' pairs with 'a.png').

    Returns ``(image, label)`` pairs sorted by image path. Every image must have a label
    (:class:`InputError` lists up to 5 unmatched names); labels without an image are ignored.
    """
    images = _by_stem(list_images(image_dir), image_dir)
    labels = _by_stem(list_images(label_dir), label_dir)
    missing = sorted(s for s in images if s not in labels)
    if missing:
        shown = ", ".join(repr(images[s].name) for s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"{len(missing)} of {len(images)} images in '{image_dir}' have no label in "
            f"'{label_dir}': {shown}{more}; labels are matched by file name without the suffix"
        )
    return sorted(((p, labels[s]) for s, p in images.items()), key=lambda t: t[0])
