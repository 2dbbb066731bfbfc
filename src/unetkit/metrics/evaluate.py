"""Evaluate prediction files against ground-truth files (the ``unetkit evaluate`` command)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.data.io import pair_images_labels, read_labels
from unetkit.errors import InputError
from unetkit.metrics.semantic import MAX_CLASSES, _too_many_classes, dice, iou

METRICS = {"iou": iou, "dice": dice}
"""Per-image metric functions by name; each takes (pred, gt, num_classes=...)."""


def evaluate_arrays(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    metrics: Sequence[str] = ("iou", "dice"),
    foreground: bool = False,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Score ``(name, prediction, ground_truth)`` label arrays.

    Returns:
        ``{"images": [{"name", <metric>: value}...], "mean": {<metric>: mean over images},
        "metrics": [...], "foreground": bool}``.
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
    if num_classes is None and not foreground:
        tops = [(int(max(p.max(initial=0), g.max(initial=0))), name) for name, p, g in pairs]
        top, where = max(tops)
        if top >= MAX_CLASSES:
            raise _too_many_classes(top, f"{where}: ")
        num_classes = max(2, top + 1)
    rows = []
    for name, pred, gt in pairs:
        if pred.shape != gt.shape:
            raise InputError(f"{name}: prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
        if foreground:
            pred, gt = (pred > 0).astype(np.int64), (gt > 0).astype(np.int64)
        k = 2 if foreground else num_classes
        try:
            rows.append({"name": name, **{m: float(METRICS[m](pred, gt, num_classes=k)) for m in metrics}})
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
    mean = {m: float(np.nanmean([r[m] for r in rows])) for m in metrics}
    return {"images": rows, "mean": mean, "metrics": list(metrics), "foreground": foreground}


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
