"""Instance segmentation metrics on label images (0 = background, objects = positive ids).

* :func:`adapted_rand_error`: 1 - F-score of pixel pairs, ground-truth background excluded
  (the SNEMI3D / CREMI "adapted Rand error").
* :func:`dic`: difference in object count, ``#pred - #gt`` (``absolute=True``: |DiC|).
* :func:`matching` (one-to-one object matching at an IoU threshold: TP/FP/FN, precision,
  recall, F1), :func:`segmentation_accuracy` (TP / (TP + FP + FN), the DSB-2018 "AP") and
  :func:`mean_segmentation_accuracy` (over IoU 0.5, 0.55, ..., 0.95).
* :func:`symmetric_best_dice` (SBD, CVPPP) and :func:`variation_of_information` (split, merge).

Inputs are integer arrays of the same shape (any number of axes); ids need not be consecutive.
Everything is computed from a contingency table of (gt id, predicted id) pairs built with
``np.unique``, with no loop over pixels or objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def dic(pred: ArrayLike, gt: ArrayLike, *, absolute: bool = False) -> int:
    """Difference in count: number of predicted objects minus ground-truth objects (ids > 0).

    The CVPPP "DiC" is this signed value; ``absolute=True`` gives "|DiC|" (its mean over images
    is the challenge's |DiC|). Both images empty: 0.

    Args:
        pred, gt: (*S) integer label images of the same shape, 0 = background.
    """
    p, g = _pair(pred, gt)
    d = count_objects(p) - count_objects(g)
    return abs(d) if absolute else d



# ---------------------------------------------------------------------------------------------
# Object-level metrics: matching, segmentation accuracy, SBD, VI.
# ---------------------------------------------------------------------------------------------

RULES = (">=", ">")
CRITERIA = ("iou", "dice")
DSB_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.5, 0.951, 0.05), 2))
"""The DSB-2018 IoU thresholds 0.5, 0.55, ..., 0.95 of :func:`mean_segmentation_accuracy`."""


def _labels(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_pair` plus: no negative ids (0 = background, objects = positive ids)."""
    p, g = _pair(pred, gt)
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.dtype.kind == "i" and a.size and a.min() < 0:
            raise InputError(f"{name} holds negative label id {int(a.min())}; ids must be >= 0 (0 = background)")
    return p, g


class _Overlap:
    """Pixel counts of a pair of label images.

    ``inter`` (P, G): pixels in predicted object i and gt object j (objects = ids > 0, in the
    sorted order of ``pred_ids`` (P,) and ``gt_ids`` (G,)); ``pred_area`` (P,), ``gt_area`` (G,).
    Built from one ``np.unique`` per image and one ``np.bincount`` over paired indices: no loop
    over objects. Memory: P * G counts.
    """

    def __init__(self, p: np.ndarray, g: np.ndarray) -> None:
        pu, pi = np.unique(p.ravel(), return_inverse=True)
        gu, gi = np.unique(g.ravel(), return_inverse=True)
        table = np.bincount(pi.astype(np.int64) * len(gu) + gi, minlength=len(pu) * len(gu))
        table = table.reshape(len(pu), len(gu))
        rows, cols = pu > 0, gu > 0
        self.pred_ids, self.gt_ids = pu[rows], gu[cols]
        self.pred_area = table.sum(axis=1)[rows]
        self.gt_area = table.sum(axis=0)[cols]
        self.inter = table[np.ix_(rows, cols)]

    def scores(self, criterion: str) -> np.ndarray:
        """(P, G) IoU ``|p & g| / |p | g|`` or Dice ``2 |p & g| / (|p| + |g|)``."""
        n = self.inter.astype(np.float64)
        total = self.pred_area[:, None] + self.gt_area[None, :]
        if criterion == "iou":
            return n / np.maximum(total - n, 1)
        return 2 * n / np.maximum(total, 1)


def _check_options(threshold: float, criterion: str, rule: str) -> None:
    if criterion not in CRITERIA:
        raise InputError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if rule not in RULES:
        raise InputError(f"rule must be '>=' or '>', got {rule!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}")


def _match(scores: np.ndarray, threshold: float, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of (P, G) scores: indices (rows, cols) of the matched pairs.

    Pairs qualify when ``score >= threshold`` (or ``>``), with a positive overlap. When every
    row and column has at most one qualifying pair (always so for IoU > 0.5) those pairs are
    the matching; otherwise ``scipy.optimize.linear_sum_assignment`` maximises the number of
    matches, and among those the summed score, over the qualifying rows and columns.
    """
    ok = (scores >= threshold) if rule == ">=" else (scores > threshold)
    ok &= scores > 0
    if not ok.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if ok.sum(axis=0).max() <= 1 and ok.sum(axis=1).max() <= 1:
        r, c = np.nonzero(ok)
        return r, c
    from scipy.optimize import linear_sum_assignment

    rows, cols = np.nonzero(ok.any(axis=1))[0], np.nonzero(ok.any(axis=0))[0]
    sub_ok, sub = ok[np.ix_(rows, cols)], scores[np.ix_(rows, cols)]
    # a qualifying match is worth 1 plus less than 1 / min(P, G) of tie-breaking score: more matches always win
    cost = -(sub_ok.astype(np.float64) + sub_ok * sub / (2 * min(sub.shape)))
    r, c = linear_sum_assignment(cost)
    keep = sub_ok[r, c]
    return rows[r[keep]], cols[c[keep]]


def _ratio(num: float, den: float, empty: float, both_empty: bool) -> float:
    if den > 0:
        return num / den
    return empty if both_empty else 0.0


@dataclass(frozen=True)
class Matching:
    """Result of :func:`matching` at one threshold.

    Attributes:
        scores: (P, G) criterion values (IoU or Dice) between predicted object i and gt object j.
        pred_ids: (P,) predicted object ids (sorted, > 0); gt_ids: (G,) ground-truth ids.
        matched: (K, 2) matched ``(pred id, gt id)`` pairs; ``matched_scores``: their (K,) scores.
        tp: matched pairs K; fp: unmatched predicted objects P - K; fn: unmatched gt objects G - K.
        precision ``tp / (tp + fp)``, recall ``tp / (tp + fn)``, f1 ``2 tp / (2 tp + fp + fn)``,
        accuracy ``tp / (tp + fp + fn)`` (segmentation accuracy, the DSB-2018 "AP").
        threshold, criterion, rule: the arguments used.
    """

    scores: np.ndarray
    pred_ids: np.ndarray
    gt_ids: np.ndarray
    matched: np.ndarray
    matched_scores: np.ndarray
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    threshold: float
    criterion: str
    rule: str

    @property
    def iou(self) -> np.ndarray:
        """The (P, G) score matrix (IoU unless ``criterion="dice"``)."""
        return self.scores


def _matching(ov: _Overlap, scores: np.ndarray, threshold: float, criterion: str, rule: str,
              empty: float) -> Matching:
    r, c = _match(scores, threshold, rule)
    n_pred, n_gt = len(ov.pred_ids), len(ov.gt_ids)
    tp = len(r)
    fp, fn = n_pred - tp, n_gt - tp
    both = n_pred == 0 and n_gt == 0
    return Matching(
        scores=scores, pred_ids=ov.pred_ids, gt_ids=ov.gt_ids,
        matched=np.stack([ov.pred_ids[r], ov.gt_ids[c]], axis=1).reshape(-1, 2),
        matched_scores=scores[r, c], tp=tp, fp=fp, fn=fn,
        precision=_ratio(tp, tp + fp, empty, both), recall=_ratio(tp, tp + fn, empty, both),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, empty, both), accuracy=_ratio(tp, tp + fp + fn, empty, both),
        threshold=float(threshold), criterion=criterion, rule=rule,
    )


def matching(pred: ArrayLike, gt: ArrayLike, threshold: float = 0.5, *, criterion: str = "iou",
             rule: str = ">=", empty: float = 1.0) -> Matching:
    """Match predicted to ground-truth objects one-to-one at a score threshold.

    A predicted object i and a gt object j may be matched when ``score_ij >= threshold``
    (``rule=">="``, the default) or ``score_ij > threshold`` (``rule=">"``), and they overlap.
    For IoU above 0.5 (and ``>= 0.5`` except for an object split exactly in halves) each object
    has at most one such partner, so the matching is unique; otherwise an optimal assignment
    (``scipy.optimize.linear_sum_assignment``) maximises the number of matches, then their
    summed score.

    Empty-set convention: a ratio whose denominator is 0 (no objects on the side it divides
    by) is ``empty`` (default 1.0; pass ``float("nan")`` to skip such images in a mean) when
    both images have no object, and 0.0 otherwise (e.g. precision of an empty prediction).

    Args:
        pred: (*S) predicted integer labels, 2-D or 3-D (any number of axes works), 0 = background.
        gt: (*S) ground-truth labels, same shape; ids need not be consecutive.
        threshold: in [0, 1].
        criterion: ``"iou"`` (default) or ``"dice"``.
        rule: ``">="`` or ``">"``.
        empty: value of precision / recall / F1 / accuracy when neither image has an object.

    Returns:
        a :class:`Matching` with the (P, G) score matrix, TP/FP/FN, precision, recall, F1, accuracy.

    Raises:
        InputError: shapes differ, non-integer labels, negative ids, bad threshold / criterion / rule.
    """
    _check_options(threshold, criterion, rule)
    ov = _Overlap(*_labels(pred, gt))
    return _matching(ov, ov.scores(criterion), threshold, criterion, rule, empty)


def segmentation_accuracy(pred: ArrayLike, gt: ArrayLike, threshold: float = 0.5, *, criterion: str = "iou",
                          rule: str = ">=", empty: float = 1.0) -> float:
    """Segmentation accuracy ``TP / (TP + FP + FN)`` of the one-to-one matching at ``threshold``.

    This is the DSB-2018 quantity that several tools (StarDist, Cellpose, the Kaggle Data
    Science Bowl) call "average precision" (AP); it is not the area under a precision-recall
    curve. Threshold rule, criterion and the empty-set convention (``empty`` when neither image
    has an object, 0.0 when only one has none) are those of :func:`matching`.

    Args:
        pred, gt: (*S) integer label images of the same shape, 0 = background.

    Returns:
        the accuracy in [0, 1] (or ``empty``).
    """
    return matching(pred, gt, threshold, criterion=criterion, rule=rule, empty=empty).accuracy


def mean_segmentation_accuracy(pred: ArrayLike, gt: ArrayLike, thresholds: Sequence[float] = DSB_THRESHOLDS, *,
                               criterion: str = "iou", rule: str = ">=", empty: float = 1.0) -> float:
    """Mean of :func:`segmentation_accuracy` over ``thresholds`` (default 0.5, 0.55, ..., 0.95).

    The DSB-2018 score of one image ("mAP" in several tools). The overlap table is computed once.

    Args:
        pred, gt: (*S) integer label images of the same shape, 0 = background.
        thresholds: non-empty sequence of thresholds in [0, 1].

    Returns:
        the mean accuracy in [0, 1] (``empty`` when neither image has an object).
    """
    ts = [float(t) for t in thresholds]
    if not ts:
        raise InputError("thresholds is empty; give at least one threshold such as 0.5")
    for t in ts:
        _check_options(t, criterion, rule)
    ov = _Overlap(*_labels(pred, gt))
    s = ov.scores(criterion)
    return float(np.mean([_matching(ov, s, t, criterion, rule, empty).accuracy for t in ts]))


def symmetric_best_dice(pred: ArrayLike, gt: ArrayLike, *, empty: float = 1.0) -> float:
    """Symmetric best Dice (SBD) of the CVPPP leaf segmentation challenge (used by SPOCO).

    ``BD(A, B) = mean over objects a of A of max over objects b of B of 2 |a & b| / (|a| + |b|)``
    and ``SBD = min(BD(pred, gt), BD(gt, pred))``; objects are ids > 0 (background left out).

    Empty-set convention: ``empty`` (default 1.0) when neither image has an object; 0.0 when
    exactly one has none (its partner's best Dice values are all 0).

    Args:
        pred, gt: (*S) integer label images of the same shape, 0 = background.

    Returns:
        SBD in [0, 1].
    """
    ov = _Overlap(*_labels(pred, gt))
    n_pred, n_gt = len(ov.pred_ids), len(ov.gt_ids)
    if n_pred == 0 and n_gt == 0:
        return empty
    if n_pred == 0 or n_gt == 0:
        return 0.0
    d = ov.scores("dice")
    return float(min(d.max(axis=1).mean(), d.max(axis=0).mean()))


def variation_of_information(pred: ArrayLike, gt: ArrayLike, *, ignore_background: bool = False
                             ) -> tuple[float, float]:
    """Variation of information split into ``(split, merge)`` conditional entropies, in bits.

    * ``split = H(pred | gt)``: how much the prediction splits gt segments (over-segmentation);
    * ``merge = H(gt | pred)``: how much it merges them (under-segmentation);

    ``VI = split + merge``. This is scikit-image's convention:
    ``skimage.metrics.variation_of_information(gt, pred)`` returns ``[split, merge]`` (log base 2).
    By default every pixel counts and the background 0 is one more segment (as in scikit-image);
    ``ignore_background=True`` leaves out pixels where ``gt == 0`` (scikit-image's
    ``ignore_labels=[0]`` with the ground truth first; the CREMI convention). With no pixel
    left, both are 0.0.

    Args:
        pred, gt: (*S) integer label images of the same shape.

    Returns:
        ``(split, merge)``, each >= 0.
    """
    p, g = _labels(pred, gt)
    if ignore_background:
        keep = g > 0
        p, g = p[keep], g[keep]
    if p.size == 0:
        return 0.0, 0.0
    _, pi = np.unique(p.ravel(), return_inverse=True)
    gu, gi = np.unique(g.ravel(), return_inverse=True)
    _, n_ij = np.unique(pi.astype(np.int64) * len(gu) + gi, return_counts=True)
    total = float(p.size)

    def entropy(counts: np.ndarray) -> float:
        q = counts / total
        return float(-np.sum(q * np.log2(q)))

    h_joint = entropy(n_ij)
    h_pred, h_gt = entropy(np.bincount(pi.ravel())), entropy(np.bincount(gi.ravel()))
    return max(h_joint - h_gt, 0.0), max(h_joint - h_pred, 0.0)

__all__ = ["DSB_THRESHOLDS", "Matching", "adapted_rand_error", "count_objects", "dic", "matching",
           "mean_segmentation_accuracy", "segmentation_accuracy", "symmetric_best_dice", "variation_of_information"]
