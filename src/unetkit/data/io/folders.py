"""Folders of images: listing them, and pairing images with labels (or optional masks) by name."""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Sequence

from unetkit.data.io.paths import (
    PathLike,
    require_exists,
    suffixes_text,
    supported_suffix,
)
from unetkit.errors import InputError, MissingFileError


class SkippedFilesWarning(UserWarning):
    """Files in a data folder that are not used (unsupported type, or a label without an image)."""


def _names(paths: list[pathlib.Path], limit: int = 5) -> str:
    shown = ", ".join(repr(p.name) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _stem(p: pathlib.Path) -> str:
    suffix = supported_suffix(p.name)
    return p.name[: -len(suffix)] if suffix else p.stem


def list_images(folder: PathLike) -> list[pathlib.Path]:
    """Sorted paths in ``folder`` with a supported suffix (case-insensitive).

    ``.zarr`` / ``.ome.zarr`` directories count as images; other directories and hidden names
    (starting with '.', e.g. macOS '._x.tif' files and unfinished temporary writes) do not.
    Other files (unsupported types) are skipped with a :class:`SkippedFilesWarning` naming them.
    """
    d = pathlib.Path(folder)
    if not d.exists():
        raise MissingFileError(f"no such folder: '{d}'")
    if not d.is_dir():
        raise InputError(f"'{d}' is a file, not a folder of images")
    found, skipped = [], []
    for entry in d.iterdir():
        if entry.name.startswith("."):
            continue
        suffix = supported_suffix(entry.name)
        if suffix is None:
            if not entry.is_dir():
                skipped.append(entry)
            continue
        if entry.is_dir() and not suffix.endswith(".zarr"):
            continue
        found.append(entry)
    skipped.sort()
    if not found:
        also = f" (unsupported: {_names(skipped)})" if skipped else ""
        raise InputError(
            f"the folder '{d}' contains no images{also}; supported suffixes are {suffixes_text()}"
        )
    if skipped:
        warnings.warn(
            f"skipping {len(skipped)} file(s) of unsupported type in '{d}': {_names(skipped)}; "
            f"supported suffixes are {suffixes_text()}",
            SkippedFilesWarning,
            stacklevel=2,
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
    (:class:`InputError` lists up to 5 unmatched names); labels without an image are not used
    (a :class:`SkippedFilesWarning` names them).
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
    unused = sorted(p for s, p in labels.items() if s not in images)
    if unused:
        warnings.warn(
            f"{len(unused)} label file(s) in '{label_dir}' have no image in '{image_dir}' and are not used: "
            f"{_names(unused)}",
            SkippedFilesWarning,
            stacklevel=2,
        )
    return sorted(((p, labels[s]) for s, p in images.items()), key=lambda t: t[0])


def pair_masks(images: Sequence[pathlib.Path], mask: PathLike) -> dict[pathlib.Path, pathlib.Path]:
    """Optional per-image masks (e.g. an annotated background), paired with ``images`` by name
    without the suffix as :func:`pair_images_labels` pairs labels.

    Args:
        images: the image paths of one split (e.g. the first items of :func:`pair_images_labels`).
        mask: a folder of masks, or a single mask file when ``images`` holds exactly one image.

    Returns:
        ``{image path: mask path}`` for the images that have a mask; an image without one is
        absent. A mask without an image is not used (:class:`SkippedFilesWarning`); a folder in
        which no mask pairs with any image is an :class:`InputError` (wrong folder).
    """
    m = pathlib.Path(mask)
    require_exists(m)
    suffix = supported_suffix(m.name)
    if suffix is not None and (m.is_file() or suffix.endswith(".zarr")):  # one mask file
        if len(images) != 1:
            raise InputError(f"the mask '{m}' is a single file but there are {len(images)} images; give a folder of "
                             "masks named like the images, or a single file only for a single image")
        return {images[0]: m}
    masks = _by_stem(list_images(m), m)
    stems = {_stem(p): p for p in images}
    unused = sorted(p for s, p in masks.items() if s not in stems)
    if len(unused) == len(masks):
        raise InputError(f"none of the {len(masks)} mask(s) in '{m}' is named like an image ({_names(unused)}); "
                         "masks are matched to images by file name without the suffix")
    if unused:
        warnings.warn(f"{len(unused)} mask file(s) in '{m}' have no image and are not used: {_names(unused)}",
                      SkippedFilesWarning, stacklevel=2)
    return {p: masks[s] for s, p in stems.items() if s in masks}
