"""PNG: 2-D grayscale (uint8/uint16) or RGB(A) uint8 images."""

from __future__ import annotations

import pathlib

import numpy as np

from unetkit.errors import InputError


def read_png(p: pathlib.Path) -> tuple[np.ndarray, str]:
    """The image in file order with its axes, ``'YX'`` or ``'YXC'``."""
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


def write_png(tmp: pathlib.Path, data: np.ndarray, canon: str, target: pathlib.Path) -> None:
    """Write ``data`` (canonical axes ``canon``) to ``tmp``; ``target`` names it in errors."""
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
