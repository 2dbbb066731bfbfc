"""TIFF (``.tif``/``.tiff``): axes from the ImageJ or tifffile "shaped" description."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

from unetkit.data.io.axes import axes_by_ndim, parse_read_axes
from unetkit.errors import InputError

_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def read_tiff(p: pathlib.Path, axes: str | None) -> tuple[np.ndarray, str]:
    """The first series in file order, with ``axes`` or the axes read from the file."""
    import tifffile

    try:
        tif = tifffile.TiffFile(p)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad input file
        raise InputError(f"cannot read '{p}' as TIFF: {exc}") from exc
    with tif:
        if not tif.series:
            raise InputError(f"the TIFF file '{p}' contains no image data")
        series = tif.series[0]
        try:
            data = series.asarray()
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
            detail = " ".join(str(exc).split())[:200]
            raise InputError(f"cannot read the pixel data of '{p}' ({type(exc).__name__}: {detail}); the file is "
                             "truncated or corrupted") from None
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
        parse_read_axes(mapped, shape, source=source)
    except InputError:
        return axes_by_ndim(len(shape), source=source)
    return mapped


def write_tiff(tmp: pathlib.Path, data: np.ndarray, canon: str, compression: bool) -> None:
    """Write ``data`` (canonical axes ``canon``) to ``tmp``, zlib-compressed if ``compression``."""
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
