"""Sparse object labels: the positive-unlabelled setting of SPOCO (Wolny et al., 2022).

In SPOCO@p a fraction p of the objects of every training image is labelled; every other pixel,
the background included, is *unlabelled* (label 0), never a negative. Two ways to get there:

* from fully labelled data (experiments): :func:`keep_fraction_of_objects` keeps
  ``round(p * n)`` of the ``n`` objects of an image (at least one when the image has any),
  chosen by a seeded generator; the choice depends only on the seed and the label image, not
  on the order images are loaded in (:func:`object_rng`);
* from data sparsely labelled on disk: 0 already means unlabelled; an optional annotated
  background mask (bool ``([Z,] Y, X)``, True = background painted by the annotator; read from
  ``data.train.background``) adds the annotated background as one more *labelled* cluster:
  :func:`check_background` checks a mask against its label image (same shape, no overlap with
  labelled objects) and :func:`with_background` writes it into the labels, either with an id
  one above the image's largest (``background_id=None``) or with the run-wide reserved
  :data:`BACKGROUND_ID` the spoco task uses, so that one loss (``background=BACKGROUND_ID,
  unlabelled=0``) serves every image and every patch of a batch. An image without a mask
  simply has no labelled background pixels.

Label images are integer arrays ``([Z,] Y, X)``; ids need not be consecutive.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from unetkit.errors import InputError

BACKGROUND_ID = 2**31 - 1
"""Id of the annotated background in the spoco task's sparse training labels (the largest int32,
exact in float64 so nearest-neighbour augmentations keep it); object ids must stay below it."""


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


def check_background(labels: np.ndarray, background: np.ndarray, *, name: str = "background mask") -> np.ndarray:
    """Check an annotated background mask against its label image; return it as bool.

    Args:
        labels: sparse instance labels ``([Z,] Y, X)`` (0 = unlabelled, ids > 0 objects).
        background: mask ``([Z,] Y, X)`` of any integer or bool dtype; nonzero = background.
        name: how messages name the mask (e.g. its file).

    Returns:
        bool mask ``([Z,] Y, X)``, True on the annotated background.

    Raises:
        InputError: shapes differ, or the mask covers pixels of labelled objects.
    """
    lab = _check_labels(labels)
    mask = np.asarray(background)
    if mask.shape != lab.shape:
        raise InputError(f"{name}: background mask of shape {mask.shape} does not match labels of shape {lab.shape}; "
                         "give a mask of the label image's shape (nonzero = annotated background)")
    mask = mask != 0
    clash = int(np.count_nonzero(mask & (lab > 0)))
    if clash:
        raise InputError(f"{name}: the background mask covers {clash} pixel(s) of labelled objects; "
                         "background and objects must not overlap")
    return mask


def with_background(labels: np.ndarray, background: np.ndarray, *, background_id: int | None = None,
                    name: str = "background mask") -> tuple[np.ndarray, int]:
    """Add an annotated background mask as one more labelled object.

    Args:
        labels: sparse instance labels ``([Z,] Y, X)`` (0 = unlabelled).
        background: mask of the same shape, nonzero (True) where background was annotated; it
            must not overlap a labelled object (:func:`check_background`).
        background_id: id to give the background; None: one above the largest id of this image.
            A fixed id (e.g. :data:`BACKGROUND_ID`) must be above every object id.
        name: how messages name the mask.

    Returns:
        ``(labels, background_id)``: int64 labels ``([Z,] Y, X)`` (a new array; the input is not
        modified) with the background pixels set to ``background_id``, and that id.
    """
    lab = _check_labels(labels)
    mask = check_background(lab, background, name=name)
    top = int(lab.max(initial=0))
    if background_id is None:
        background_id = top + 1
    elif background_id <= top:
        raise InputError(f"{name}: object id {top} is not below the background id {background_id}; "
                         f"object ids must be below {background_id}")
    out = lab.astype(np.int64, copy=True)
    out[mask] = background_id
    return out, int(background_id)
