"""What instance tasks share: clustering every image of a batch, and the validation metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from unetkit.errors import InputError
from unetkit.metrics.instance import (
    adapted_rand_error,
    count_objects,
    mean_segmentation_accuracy,
    symmetric_best_dice,
)
from unetkit.tasks.base import MetricAccumulator


def instance_labels(labels: np.ndarray) -> np.ndarray:
    """Check an instance label image as read (integers, or floats with integral values; all
    ``>= 0``, 0 = background / unlabelled) and return it as int64 ``(*S)``."""
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or not np.array_equal(lab, np.round(lab)):
            raise InputError(f"instance labels must be integers, got non-integral {lab.dtype} values")
    elif lab.dtype.kind not in "biu":
        raise InputError(f"instance labels must be integers, got dtype {lab.dtype}")
    low = lab.min(initial=0)
    if low < 0:
        raise InputError(f"instance labels must be >= 0 (0 = background), found {low}")
    return lab.astype(np.int64, copy=False)


def cluster_each(output: Tensor, cluster: Callable[[Tensor], Tensor]) -> Tensor:
    """Cluster every image of ``output`` ``(N, E, *S)`` with ``cluster`` (``(E, *S)`` -> labels
    ``(*S)``, e.g. a :mod:`unetkit.clustering` method with its background rule) -> ``(N, *S)`` int64."""
    out = [cluster(emb).long() for emb in output.detach()]
    if not out:
        return torch.zeros((0, *output.shape[2:]), dtype=torch.long, device=output.device)
    return torch.stack(out)


class InstanceAccumulator(MetricAccumulator):
    """Per-image instance metrics, averaged over images (target pixels < 0 are left out).

    ``arand``: adapted Rand error (gt background excluded; images without gt objects skipped);
    ``dic``: mean ``|#pred - #gt|`` (objects = ids > 0); ``sbd``: symmetric best Dice;
    ``mean_seg_acc``: TP/(TP+FP+FN) averaged over IoU thresholds 0.5:0.05:0.95 (see
    :mod:`unetkit.metrics.instance`).
    """

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"arand": [], "dic": [], "sbd": [], "mean_seg_acc": []}

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        pred, tgt = np.asarray(prediction), np.asarray(target)
        labelled = tgt >= 0
        pred, tgt = pred[labelled].astype(np.int64), tgt[labelled].astype(np.int64)
        self.values["arand"].append(float(adapted_rand_error(pred, tgt)))
        self.values["dic"].append(float(abs(count_objects(pred) - count_objects(tgt))))
        self.values["sbd"].append(float(symmetric_best_dice(pred, tgt)))
        self.values["mean_seg_acc"].append(float(mean_segmentation_accuracy(pred, tgt)))

    def compute(self) -> dict[str, float]:
        out = {}
        for key, vals in self.values.items():
            arr = np.asarray(vals, dtype=np.float64)
            out[key] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
        return out
