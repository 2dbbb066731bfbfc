"""Sparse object labels: the positive-unlabelled setting of SPOCO (Wolny et al., 2022).

In SPOCO@p a fraction p of the objects of every training image is labelled; every other pixel,
the background included, is *unlabelled* (label 0), never a negative. Two ways to get there:

* from fully labelled data (experiments): :func:`keep_fraction_of_objects` keeps
  ``round(p * n)`` of the ``n`` objects of an image (at least one when the image has any),
  chosen by a seeded generator; the choice depends only on the seed and the label image, not
  on the order images are loaded in (:func:`object_rng`);
* from data sparsely labelled on disk: 0 already means unlabelled; an optional background mask
  (:func:`with_background`) adds the annotated background as one more labelled object.

Label images are integer arrays ``([Z,] Y, X)``; ids need not be consecutive.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from unetkit.errors import InputError


def _check_labels(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise InputError(f"instance labels must be an integer array, got dtype {lab.dtype}")
    if lab.size and lab.min() < 0:
        raise InputError(f"instance labels must be >= 0 (0 = unlabelled), found {lab.min()}")
    return lab


def objects_to_keep(n_objects: int, fraction: float) -> int:
    """``round(fraction * n_objects)`` with halves rounded up, at least 1 when ``n_objects > 0``."""
    if not 0 < fraction <= 1 or not math.isfinite(fraction):
        raise InputError(f"the labelled fraction p must be in (0, 1], got {fraction!r}")
    if n_objects <= 0:
        return 0
    return min(n_objects, max(1, math.floor(fraction * n_objects + 0.5)))


def object_rng(labels: np.ndarray, seed: int) -> np.random.Generator:
    """A generator seeded by ``seed`` and the label image's content (CRC-32 of its bytes), so the
    same image gets the same objects whatever order the data are read in."""
    lab = np.ascontiguousarray(labels)
    digest = zlib.crc32(lab.tobytes()) ^ zlib.crc32(str((lab.shape, lab.dtype.str)).encode())
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])


def keep_fraction_of_objects(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """SPOCO@p: keep ``objects_to_keep(n, fraction)`` objects (ids > 0) at random, set all else to 0.

    Args:
        labels: instance labels ``([Z,] Y, X)``, 0 = background.
        fraction: p in (0, 1]; 1 keeps every object.
        rng: where the choice comes from (e.g. :func:`object_rng`).

    Returns:
        labels of the same shape and dtype: the kept objects with their ids, 0 elsewhere
        (background and dropped objects alike: unlabelled).
    """
    lab = _check_labels(labels)
    ids = np.unique(lab[lab > 0])
    k = objects_to_keep(ids.size, fraction)
    if k == ids.size:
        return lab.copy()
    kept = rng.choice(ids, size=k, replace=False)
    return np.where(np.isin(lab, kept), lab, 0).astype(lab.dtype, copy=False)


def with_background(labels: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, int]:
    """Add an annotated background mask as one more labelled object.

    Args:
        labels: sparse instance labels ``([Z,] Y, X)`` (0 = unlabelled).
        background: bool mask of the same shape, True where background was annotated; it must
            not overlap a labelled object.

    Returns:
        ``(labels, background_id)``: labels with the background pixels set to ``background_id``
        (one above the largest id), and that id.
    """
    lab = _check_labels(labels)
    mask = np.asarray(background)
    if mask.shape != lab.shape:
        raise InputError(f"background mask of shape {mask.shape} does not match labels of shape {lab.shape}")
    mask = mask.astype(bool)
    clash = int(np.count_nonzero(mask & (lab > 0)))
    if clash:
        raise InputError(f"the background mask covers {clash} pixel(s) of labelled objects; "
                         "background and objects must not overlap")
    bg_id = int(lab.max(initial=0)) + 1
    out = lab.astype(np.int64, copy=True)
    out[mask] = bg_id
    return out, bg_id
