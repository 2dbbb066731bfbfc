"""Metrics for distributions of segmentations: sets of model samples against sets of graders.

Definitions follow the HPU-Net paper (Kohl et al. 2019, appendix B) as summarised in the
project's method notes (``shared/notes/method-notes.md``, section 4, "Metrics"):

* :func:`ged`: the generalized energy distance ``GED^2 = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]``
  with ``d = 1 - IoU`` over the chosen (stochastic foreground) classes;
* :func:`hungarian_matched_iou`: duplicate both sets up to the least common multiple of their
  sizes, match 1:1 with the Hungarian algorithm on IoU, average the matched IoUs;
* :func:`iou_rec`: IoU of a reconstruction (from the posterior mean) with its ground truth.
* :func:`iou_matrix`: the (N, M) IoU of every pair of two sets, which all three are built on.

IoU of a pair of segmentations (paper, B.2: "with respect to the stochastic foreground classes
only", "across the pixels of each image"): per class ``c`` in ``classes``,
``|a == c & b == c| / |a == c | b == c|``; a class absent from both counts as ``empty``; the
pair's IoU is the mean over the classes, NaN values skipped (a "NaN-mean"). ``empty=1.0`` (the
default) is the LIDC convention (a correctly predicted absence is IoU 1); ``empty=nan`` is the
instance-task convention (correct absences are skipped, wrong absences count 0); a pair where
every class is absent from both then has IoU NaN, and is skipped by the means below.

Inputs are integer class maps: ``samples`` (N, *S) and ``graders`` (M, *S), always in this
(prediction, ground truth) order. All pairwise intersections come from one batched matrix
product of flattened one-hot masks (K, N + M, P) with no loop over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from unetkit.errors import InputError

PAIRS = ("all", "distinct")


def _maps(a: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(a)
    if x.dtype.kind not in "biu":
        raise InputError(f"{name} must be integer class maps, got dtype {x.dtype}")
    if x.ndim < 2:
        raise InputError(f"{name} must have shape (n, *spatial) with at least one spatial axis, got {x.shape}")
    if x.shape[0] < 1:
        raise InputError(f"{name} is an empty set: shape {x.shape}; give at least one segmentation")
    return x


def _classes(classes: Sequence[int] | int) -> np.ndarray:
    c = np.atleast_1d(np.asarray(classes))
    if c.ndim != 1 or c.size == 0 or c.dtype.kind not in "iu":
        raise InputError(f"classes must be a non-empty sequence of integer class ids, got {classes!r}")
    if np.unique(c).size != c.size:
        raise InputError(f"classes must not repeat a class id, got {list(c.tolist())}")
    return c


def _empty(empty: float) -> float:
    try:
        e = float(empty)
    except (TypeError, ValueError):
        raise InputError(f"empty must be a number in [0, 1] or nan, got {empty!r}") from None
    if not (math.isnan(e) or 0.0 <= e <= 1.0):
        raise InputError(f"empty must be a number in [0, 1] or nan, got {empty!r}")
    return e


def _nanmean(x: np.ndarray, axis=None) -> np.ndarray | float:
    """Mean skipping NaN; NaN (without a warning) where nothing is left."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=axis)
    s = np.where(ok, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _onehot(x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n, *S) class maps -> (K, n, P) float masks (float64: exact counts for any image size)."""
    flat = x.reshape(x.shape[0], -1)
    return (flat[None, :, :] == classes[:, None, None]).astype(np.float64)


def _iou_from_masks(a: np.ndarray, b: np.ndarray, empty: float) -> np.ndarray:
    """(K, N, P) and (K, M, P) masks -> (N, M) class-averaged IoU (one batched matmul)."""
    inter = np.matmul(a, b.transpose(0, 2, 1))  # (K, N, M)
    union = a.sum(-1)[:, :, None] + b.sum(-1)[:, None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(union > 0, inter / np.maximum(union, 1), empty)
    return _nanmean(per_class, axis=0)


def iou_matrix(samples: ArrayLike, graders: ArrayLike, *, classes: Sequence[int] | int = (1,),
               empty: float = 1.0) -> np.ndarray:
    """(N, M) IoU of every (sample, grader) pair over ``classes`` (module docstring: the mean
    over classes, a class absent from both counts ``empty``, NaN-mean).

    Args:
        samples: (N, *S) integer class maps.
        graders: (M, *S) integer class maps, same spatial shape.
        classes: class ids scored (default: foreground class 1 of a binary map).
        empty: IoU of a class absent from both (1.0, or ``nan`` to skip it).
    """
    s, g = _maps(samples, "samples"), _maps(graders, "graders")
    _same_shape(s, g)
    c, e = _classes(classes), _empty(empty)
    return _iou_from_masks(_onehot(s, c), _onehot(g, c), e)


def _same_shape(s: np.ndarray, g: np.ndarray) -> None:
    if s.shape[1:] != g.shape[1:]:
        raise InputError(f"samples have spatial shape {s.shape[1:]} but graders {g.shape[1:]}")


def ged(samples: ArrayLike, graders: ArrayLike, *, classes: Sequence[int] | int = (1,), empty: float = 1.0,
        pairs: str = "all", return_terms: bool = False) -> float | tuple[float, float, float, float]:
    """Generalized energy distance ``GED^2 = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]``, d = 1 - IoU.

    As in the HPU-Net paper's appendix B (method notes, section 4): ``d(a, b) = 1 - IoU(a, b)``
    with the IoU over the stochastic foreground classes ``classes`` (mean over the classes; a
    class absent from both counts ``empty``: 1.0 on LIDC, ``nan`` skips it). The expectations
    are means over pairs; pairs with an undefined distance (``empty=nan`` and every class absent
    from both) are skipped. Lower is better; 0 for identical sets (``pairs="all"``).

    Pairs for the within-set terms ``E[d(S, S')]`` and ``E[d(Y, Y')]`` (neither the paper nor
    the notes fix this): ``"all"`` (default) averages over all N^2 (M^2) ordered pairs, the
    diagonal included (the "V-statistic"; the probabilistic U-Net's LIDC evaluation code,
    ``get_energy_distance_components``, likewise fills the full matrices with their diagonal;
    identical sets give exactly 0); ``"distinct"`` over the N (N - 1) pairs ``i != j`` only
    (the unbiased "U-statistic"; needs N, M >= 2). The cross term always uses all N M pairs.

    Args:
        samples: (N, *S) integer class maps drawn from the model.
        graders: (M, *S) integer class maps of the graders, same spatial shape.
        classes: class ids scored.
        empty: IoU of a class absent from both segmentations of a pair.
        pairs: ``"all"`` or ``"distinct"``, see above.
        return_terms: also return the three expectations.

    Returns:
        ``GED^2``, or ``(GED^2, E[d(S, Y)], E[d(S, S')], E[d(Y, Y')])``.
    """
    s, g = _maps(samples, "samples"), _maps(graders, "graders")
    _same_shape(s, g)
    c, e = _classes(classes), _empty(empty)
    if pairs not in PAIRS:
        raise InputError(f"pairs must be 'all' or 'distinct', got {pairs!r}")
    n, m = s.shape[0], g.shape[0]
    if pairs == "distinct" and min(n, m) < 2:
        raise InputError(f"pairs='distinct' needs at least 2 samples and 2 graders, got {n} and {m}")
    z = _onehot(np.concatenate([s.reshape(n, -1), g.reshape(m, -1)]), c)
    d = 1.0 - _iou_from_masks(z, z, e)  # (N + M, N + M): one matmul for all three terms
    d_sy, d_ss, d_yy = d[:n, n:], d[:n, :n].copy(), d[n:, n:].copy()
    if pairs == "distinct":
        np.fill_diagonal(d_ss, np.nan)
        np.fill_diagonal(d_yy, np.nan)
    sy, ss, yy = (float(_nanmean(t)) for t in (d_sy, d_ss, d_yy))
    value = 2.0 * sy - ss - yy
    return (value, sy, ss, yy) if return_terms else value


def hungarian_matched_iou(samples: ArrayLike, graders: ArrayLike, *, classes: Sequence[int] | int = (1,),
                          empty: float = 1.0, return_matching: bool = False
                          ) -> float | tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian-matched IoU: mean IoU of an optimal 1:1 matching of samples and graders.

    As in the HPU-Net paper's appendix B (method notes, section 4): both sets are duplicated up
    to ``L = lcm(N, M)`` elements (sample ``i`` appears ``L / N`` times, grader ``j`` ``L / M``
    times), ``scipy.optimize.linear_sum_assignment`` maximises the summed IoU of an L x L
    matching, and the result is the mean IoU of the L matched pairs. E.g. 2 samples and 3
    graders: a 6 x 6 assignment, every sample matched 3 times and every grader twice.
    IoU over ``classes`` and ``empty`` as in :func:`ged`; with ``empty=nan`` a pair where every
    class is absent from both is matched as a perfect pair (IoU 1) and left out of the mean
    (NaN if every matched pair is such a pair). Higher is better; 1 for identical sets.

    The assignment costs O(L^3): fine for the usual 16 samples x 4 graders (L = 16) but slow
    for large coprime set sizes.

    Args:
        samples: (N, *S) integer class maps drawn from the model.
        graders: (M, *S) integer class maps, same spatial shape.
        classes: class ids scored.
        empty: IoU of a class absent from both segmentations of a pair.
        return_matching: also return the matched pairs.

    Returns:
        the mean matched IoU, or ``(mean, sample_index (L,), grader_index (L,), iou (L,))``.
    """
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(samples, graders, classes=classes, empty=empty)
    n, m = iou.shape
    lcm = n * m // math.gcd(n, m)
    tiled = np.tile(iou, (lcm // n, lcm // m))  # row r is sample r % n, column k grader k % m
    rows, cols = linear_sum_assignment(np.nan_to_num(tiled, nan=1.0), maximize=True)
    si, gi = rows % n, cols % m
    matched = iou[si, gi]
    value = float(_nanmean(matched))
    return (value, si, gi, matched) if return_matching else value


def iou_rec(reconstruction: ArrayLike, target: ArrayLike, *, classes: Sequence[int] | int = (1,),
            empty: float = 1.0, batch: bool = False) -> float:
    """Reconstruction IoU: IoU of a posterior reconstruction with the segmentation it encodes.

    ``IoU_rec(Y, Y')`` with ``Y' = S(X, mu_post(X, Y))`` (HPU-Net paper, B.2; method notes,
    section 4): the caller passes the reconstruction ``Y'`` (e.g. ``model.reconstruct(x, y)``)
    and the target ``Y``. IoU over ``classes`` with the ``empty`` convention of :func:`ged`,
    computed per image and, with ``batch=True``, averaged over images (first axis; NaN skipped).

    Args:
        reconstruction: (*S) integer class map, or (B, *S) with ``batch=True``.
        target: same shape.
    """
    r, t = np.asarray(reconstruction), np.asarray(target)
    if r.shape != t.shape:
        raise InputError(f"reconstruction shape {r.shape} differs from target shape {t.shape}")
    if not batch:
        r, t = r[None], t[None]
    r, t = _maps(r, "reconstruction"), _maps(t, "target")
    c, e = _classes(classes), _empty(empty)
    a, b = _onehot(r, c), _onehot(t, c)
    inter = (a * b).sum(-1)  # (K, B): only the diagonal pairs, no (B, B) product
    union = a.sum(-1) + b.sum(-1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(union > 0, inter / np.maximum(union, 1), e)
    return float(_nanmean(_nanmean(per_class, axis=0)))
