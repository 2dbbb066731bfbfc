"""Evaluate prediction files against ground-truth files (the ``unetkit evaluate`` command)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.data.io import pair_images_labels, read_labels
from unetkit.errors import InputError
from unetkit.metrics import instance as _inst
from unetkit.metrics.semantic import MAX_CLASSES, _too_many_classes, dice, iou

SEMANTIC = {"iou": iou, "dice": dice}
"""Semantic metrics by name; each takes (pred, gt, num_classes=...) on class-id images."""


def _voi(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    split, merge = _inst.variation_of_information(pred, gt)
    return {"voi_split": split, "voi_merge": merge}


INSTANCE: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    "sbd": lambda p, g: {"sbd": _inst.symmetric_best_dice(p, g)},
    "dic": lambda p, g: {"dic": float(_inst.dic(p, g))},
    "abs_dic": lambda p, g: {"abs_dic": float(_inst.dic(p, g, absolute=True))},
    "seg_acc": lambda p, g: {"seg_acc": _inst.segmentation_accuracy(p, g)},
    "mean_seg_acc": lambda p, g: {"mean_seg_acc": _inst.mean_segmentation_accuracy(p, g)},
    "arand": lambda p, g: {"arand": float(_inst.adapted_rand_error(p, g))},  # type: ignore[arg-type]
    "voi": _voi,
}
"""Instance metrics by name, on label images as they are (0 = background); each returns its
output keys: ``sbd``; ``dic`` (#pred - #gt) and ``abs_dic``; ``seg_acc`` (TP / (TP + FP + FN)
at IoU >= 0.5) and ``mean_seg_acc`` (over IoU 0.5:0.05:0.95); ``arand`` (adapted Rand error,
NaN for an image without gt objects, skipped in the mean); ``voi`` -> ``voi_split``,
``voi_merge`` (bits, all pixels)."""

METRICS: dict[str, Any] = {**SEMANTIC, **INSTANCE}
"""Every metric name ``evaluate`` accepts."""


def metric_keys(metrics: Sequence[str]) -> list[str]:
    """The output keys (table columns) of ``metrics``, in order: ``voi`` gives two."""
    return [k for m in metrics for k in (("voi_split", "voi_merge") if m == "voi" else (m,))]


def evaluate_arrays(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    metrics: Sequence[str] = ("iou", "dice"),
    foreground: bool = False,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Score ``(name, prediction, ground_truth)`` label arrays.

    Semantic metrics (``iou``, ``dice``) score class ids (``foreground`` binarises both,
    ``num_classes`` is inferred when not given); instance metrics (see :data:`INSTANCE`) score
    the label images as they are, ignoring ``foreground`` and ``num_classes``.

    Returns:
        ``{"images": [{"name", <key>: value}...], "mean": {<key>: mean over images (NaN values
        skipped)}, "metrics": [...], "keys": [...], "foreground": bool}``; ``keys`` are the
        output names (``voi`` gives ``voi_split`` and ``voi_merge``).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    if not pairs:
        raise InputError("nothing to evaluate: no prediction / ground-truth pairs")
    if num_classes is not None and num_classes < 1:
        raise InputError(f"num_classes must be >= 1, got {num_classes}")
    if num_classes is not None and num_classes > MAX_CLASSES:
        raise InputError(f"num_classes {num_classes} is too large: at most {MAX_CLASSES} classes are scored per class")
    semantic = [m for m in metrics if m in SEMANTIC]
    if num_classes is None and not foreground and semantic:
        tops = [(int(max(p.max(initial=0), g.max(initial=0))), name) for name, p, g in pairs]
        top, where = max(tops)
        if top >= MAX_CLASSES:
            raise _too_many_classes(top, f"{where}: ")
        num_classes = max(2, top + 1)
    rows = []
    for name, pred, gt in pairs:
        if pred.shape != gt.shape:
            raise InputError(f"{name}: prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
        row: dict[str, Any] = {"name": name}
        try:
            sp, sg, k = pred, gt, num_classes
            if semantic and foreground:
                sp, sg, k = (pred > 0).astype(np.int64), (gt > 0).astype(np.int64), 2
            for m in metrics:
                if m in SEMANTIC:
                    row[m] = float(SEMANTIC[m](sp, sg, num_classes=k))
                else:
                    row.update({key: float(v) for key, v in INSTANCE[m](pred, gt).items()})
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
        rows.append(row)
    keys = metric_keys(metrics)
    mean = {key: _nanmean([r[key] for r in rows]) for key in keys}
    return {"images": rows, "mean": mean, "metrics": list(metrics), "keys": keys, "foreground": foreground}


def _nanmean(values: list[float]) -> float:
    """Mean without NaN values; NaN (and no warning) when all are NaN."""
    a = np.asarray(values, dtype=np.float64)
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def evaluate_paths(
    pred: str | Path,
    gt: str | Path,
    *,
    metrics: Sequence[str] = ("iou", "dice"),
    foreground: bool = False,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Like :func:`evaluate_arrays` for two files or two folders (paired by file name)."""
    pred, gt = Path(pred), Path(gt)
    if pred.is_dir() and not pred.name.endswith(".zarr"):
        files = [(p, g) for p, g in pair_images_labels(pred, gt)]
    else:
        files = [(pred, gt)]
    pairs = [(p.name, read_labels(p)[0], read_labels(g)[0]) for p, g in files]
    return evaluate_arrays(pairs, metrics=metrics, foreground=foreground, num_classes=num_classes)
