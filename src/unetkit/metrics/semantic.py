"""Semantic segmentation metrics: IoU (Jaccard index) and Dice (F1) per class.

Both are computed from a confusion matrix (``np.bincount``, no loops over pixels). A class
that is absent from both prediction and ground truth has an undefined score; the
``empty`` argument says what it counts as: ``1.0`` (a correctly predicted absence is
perfect; the LIDC convention) or ``nan`` (skipped by the mean).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from unetkit.errors import InputError

MAX_CLASSES = 4096
"""Largest number of classes K scored per class (the confusion matrix holds K * K counts).
Larger label ids are almost always instance ids: score them as foreground instead."""


def _too_many_classes(top: int, where: str = "") -> InputError:
    return InputError(
        f"{where}class id {top} is too large: IoU and Dice are computed per class for class ids "
        f"0..{MAX_CLASSES - 1}; label ids this large are usually instance ids, so score foreground vs "
        "background instead (--foreground, or binarise the labels)"
    )


def confusion_matrix(
    pred: ArrayLike, target: ArrayLike, num_classes: int, *, ignore_index: int | None = None
) -> np.ndarray:
    """``(K, K)`` counts, rows = ground-truth class, columns = predicted class.

    ``pred`` and ``target`` are integer arrays of the same shape (any axes). Pixels whose
    target equals ``ignore_index`` are skipped. Values outside ``0..K-1`` raise ``InputError``.
    """
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise InputError(f"prediction shape {p.shape} differs from ground-truth shape {t.shape}")
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    _check_k(num_classes)
    p = p.ravel().astype(np.int64, copy=False)
    t = t.ravel().astype(np.int64, copy=False)
    for name, a in (("prediction", p), ("ground truth", t)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise InputError(f"{name} has class ids in [{a.min()}, {a.max()}], expected 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _scores(cm: np.ndarray, kind: str, empty: float) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    denom = tp + fp + fn if kind == "iou" else 2 * tp + fp + fn
    num = tp if kind == "iou" else 2 * tp
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, num / np.maximum(denom, 1), empty)
    return out


def _reduce(scores: np.ndarray, include_background: bool, per_class: bool) -> float | np.ndarray:
    if per_class:
        return scores
    sel = scores if include_background or scores.size == 1 else scores[1:]
    return float(np.nanmean(sel)) if np.isfinite(sel).any() else float("nan")


def _num_classes(pred: np.ndarray, target: np.ndarray, ignore_index: int | None) -> int:
    t = target if ignore_index is None else target[target != ignore_index]
    top = max(int(pred.max(initial=0)), int(t.max(initial=0)))
    if top >= MAX_CLASSES:
        raise _too_many_classes(top)
    return max(top + 1, 2)


def _check_k(num_classes: int) -> int:
    if num_classes < 1:
        raise InputError(f"num_classes must be >= 1, got {num_classes}")
    if num_classes > MAX_CLASSES:
        raise InputError(f"num_classes {num_classes} is too large: at most {MAX_CLASSES} classes are scored per class")
    return num_classes


def _score(kind: str, pred: ArrayLike, target: ArrayLike, num_classes: int | None, ignore_index: int | None,
           include_background: bool, per_class: bool, empty: float) -> float | np.ndarray:
    p, t = np.asarray(pred), np.asarray(target)
    k = _num_classes(p, t, ignore_index) if num_classes is None else _check_k(num_classes)
    scores = _scores(confusion_matrix(p, t, k, ignore_index=ignore_index), kind, empty)
    return _reduce(scores, include_background, per_class)


def iou(pred: ArrayLike, target: ArrayLike, *, num_classes: int | None = None, ignore_index: int | None = None,
        include_background: bool = False, per_class: bool = False, empty: float = 1.0) -> float | np.ndarray:
    """Intersection over union TP / (TP + FP + FN) per class, averaged.

    Args:
        pred, target: integer class maps of equal shape.
        num_classes: K; inferred from the data when None (at least 2).
        ignore_index: ground-truth value to skip.
        include_background: include class 0 in the mean (default: foreground classes only).
        per_class: return the ``(K,)`` array of per-class scores instead of the mean.
        empty: score of a class absent from both (1.0, or ``nan`` to skip it).
    """
    return _score("iou", pred, target, num_classes, ignore_index, include_background, per_class, empty)


def dice(pred: ArrayLike, target: ArrayLike, *, num_classes: int | None = None, ignore_index: int | None = None,
         include_background: bool = False, per_class: bool = False, empty: float = 1.0) -> float | np.ndarray:
    """Dice coefficient 2 TP / (2 TP + FP + FN) per class, averaged (arguments as :func:`iou`)."""
    return _score("dice", pred, target, num_classes, ignore_index, include_background, per_class, empty)


class ConfusionMatrix:
    """Accumulates a confusion matrix over many images; dataset-level IoU and Dice.

    Example::

        cm = ConfusionMatrix(num_classes=2)
        for pred, gt in pairs:
            cm.update(pred, gt)
        cm.compute()  # {"iou": ..., "dice": ...}
    """

    def __init__(self, num_classes: int, *, ignore_index: int | None = None, empty: float = 1.0,
                 include_background: bool = False) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.empty = empty
        self.include_background = include_background
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one prediction / ground-truth pair."""
        self.matrix += confusion_matrix(pred, target, self.num_classes, ignore_index=self.ignore_index)

    def iou(self, per_class: bool = False) -> float | np.ndarray:
        return _reduce(_scores(self.matrix, "iou", self.empty), self.include_background, per_class)

    def dice(self, per_class: bool = False) -> float | np.ndarray:
        return _reduce(_scores(self.matrix, "dice", self.empty), self.include_background, per_class)

    def compute(self) -> dict[str, float]:
        """``{"iou": mean IoU, "dice": mean Dice}`` over the included classes."""
        return {"iou": float(self.iou()), "dice": float(self.dice())}
