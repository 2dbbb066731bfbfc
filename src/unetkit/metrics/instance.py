"""Instance segmentation metrics on label images (0 = background, objects = positive ids).

* :func:`adapted_rand_error`: 1 - F-score of pixel pairs, ground-truth background excluded
  (the SNEMI3D / CREMI "adapted Rand error").
* :func:`dic`: difference in object count, ``#pred - #gt`` (|DiC| is its absolute value).

Inputs are integer arrays of the same shape (any number of axes); ids need not be consecutive.
Everything is computed from a contingency table of (gt id, predicted id) pairs built with
``np.unique``, with no loop over pixels or objects.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from unetkit.errors import InputError


def _pair(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise InputError(f"prediction shape {p.shape} differs from ground-truth shape {g.shape}")
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.dtype.kind not in "biu":
            raise InputError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return p, g


def adapted_rand_error(pred: ArrayLike, gt: ArrayLike, *, empty: float = float("nan"),
                       return_prec_rec: bool = False) -> float | tuple[float, float, float]:
    """Adapted Rand error: ``1 - F``, F the F-score of pixel pairs, gt background excluded.

    Only pixels with a ground-truth object (``gt > 0``; 0 = background and negative values =
    unlabelled are left out) are considered. Over the unordered pairs of distinct such pixels:

    * ``TP`` = pairs in the same object in both, ``sum_ij C(n_ij, 2)`` with ``n_ij`` the
      contingency table of (gt object i, predicted label j);
    * ``precision = TP / sum_j C(b_j, 2)`` (pairs the prediction puts together; ``b_j = sum_i n_ij``),
      ``recall = TP / sum_i C(a_i, 2)`` (pairs the ground truth puts together);
    * ``F = 2 TP / (sum_j C(b_j, 2) + sum_i C(a_i, 2))``.

    A predicted label 0 inside a gt object counts as one more predicted segment (as in
    ``skimage.metrics.adapted_rand_error``, with which the error agrees; precision and recall
    follow the CREMI definitions above, which scikit-image's code returns in the other
    order: its "precision" is ``TP / gt pairs``). When there are no
    pairs at all (every considered pixel alone in both) the segmentations agree: error 0,
    precision = recall = 1 (scikit-image returns NaN there).

    Args:
        pred: predicted labels, integer array.
        gt: ground-truth labels, same shape.
        empty: value returned when the ground truth has no object pixel.
        return_prec_rec: also return precision and recall.

    Returns:
        the error in [0, 1], or ``(error, precision, recall)``.
    """
    p, g = _pair(pred, gt)
    fg = g > 0
    if not fg.any():
        return (empty, empty, empty) if return_prec_rec else empty
    _, gi = np.unique(g[fg], return_inverse=True)
    pu, pi = np.unique(p[fg], return_inverse=True)
    key = gi.astype(np.int64).ravel() * len(pu) + pi.astype(np.int64).ravel()
    _, n_ij = np.unique(key, return_counts=True)
    a_i = np.bincount(gi.ravel()).astype(np.float64)
    b_j = np.bincount(pi.ravel()).astype(np.float64)
    n = n_ij.astype(np.float64)
    tp = float(np.sum(n * (n - 1)) / 2)
    gt_pairs = float(np.sum(a_i * (a_i - 1)) / 2)
    pred_pairs = float(np.sum(b_j * (b_j - 1)) / 2)
    precision = tp / pred_pairs if pred_pairs > 0 else 1.0
    recall = tp / gt_pairs if gt_pairs > 0 else 1.0
    total = pred_pairs + gt_pairs
    error = 1.0 - (2.0 * tp / total if total > 0 else 1.0)
    return (error, precision, recall) if return_prec_rec else error


def count_objects(labels: ArrayLike) -> int:
    """Number of distinct positive ids in a label image."""
    a = np.asarray(labels)
    return int(np.unique(a[a > 0]).size)


def dic(pred: ArrayLike, gt: ArrayLike) -> int:
    """Difference in count: number of predicted objects minus ground-truth objects (ids > 0).

    The CVPPP "DiC" is this signed value; "|DiC|" is ``abs(dic(pred, gt))``.
    """
    p, g = _pair(pred, gt)
    return count_objects(p) - count_objects(g)


__all__ = ["adapted_rand_error", "count_objects", "dic"]
