"""OME-Zarr metadata: finding the ``multiscales`` entry, its axes, and writing one (v0.4)."""

from __future__ import annotations

from typing import Any

from unetkit.data.io.axes import axes_by_ndim
from unetkit.errors import InputError

_OME_NAME_TO_LETTER = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}


def ome_multiscale(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``multiscales`` entry (OME-Zarr v0.4 top level or v0.5 under ``'ome'``)."""
    ms = attrs.get("multiscales")
    if ms is None and isinstance(attrs.get("ome"), dict):
        ms = attrs["ome"].get("multiscales")
    if isinstance(ms, list) and ms and isinstance(ms[0], dict):
        return ms[0]
    return None


def ome_axes(ms: dict[str, Any], ndim: int, *, source: str) -> str:
    """The axes letters (file order, may hold T) of a ``multiscales`` entry."""
    entries = ms.get("axes")
    if entries is None:
        # OME-Zarr <= 0.2: always 5-D t, c, z, y, x.
        return "TCZYX" if ndim == 5 else axes_by_ndim(ndim, source=source)
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


def ome_attrs(canon: str, name: str) -> dict[str, Any]:
    """Group attributes of a single-level v0.4 image: dataset ``'0'``, unit scale."""
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
