"""Segmentation on unseen scales: mean IoU and scale consistency per zoom factor, and their curves.

The protocol of the SEU-Net paper (method notes, section 1): a model trained at one scale is
tested on the test images rescaled by factors ``s`` (default
:data:`unetkit.data.rescale.DEFAULT_SCALE_FACTORS`, ``2 ** linspace(-2, 2, 17)``); images bilinear
(antialiased when shrinking), labels nearest. Per factor:

* **IoU**: the task's semantic IoU (confusion matrix over all images, mean over the foreground
  classes, ignore value :data:`unetkit.tasks.IGNORE` skipped) of the prediction on the rescaled
  image against the rescaled labels;
* **consistency**: the fraction of pixels (over all images) where the prediction on the original
  image ``argmax F(I)`` equals ``argmax resize(F(resize(I, s)), size of I)``: the logits of the
  rescaled image are resized back (linearly) *before* the argmax (:func:`scale_consistency`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from unetkit.data.rescale import (
    DEFAULT_SCALE_FACTORS,
    check_factors,
    rescale_image,
    rescale_labels,
    resize_to,
    scaled_shape,
)
from unetkit.errors import InputError
from unetkit.tasks.base import Task, predict_labels

__all__ = ["class_map", "evaluate_scales", "plot_scale_curves", "scale_consistency"]


def class_map(logits: np.ndarray) -> np.ndarray:
    """Class ids ``(*S)`` of logits ``(C, *S)``: argmax over C, or ``logit > 0`` for one channel
    (a binary model with a sigmoid), as the semantic task's post-processing."""
    a = np.asarray(logits)
    return (a[0] > 0).astype(np.int64) if a.shape[0] == 1 else a.argmax(axis=0)


def scale_consistency(pred_logits_whole: np.ndarray, pred_logits_rescaled_back: np.ndarray) -> float:
    """Fraction of pixels whose predicted class agrees between two logit maps ``(C, *S)``.

    Args:
        pred_logits_whole: logits of the original image, ``(C, [Z,] Y, X)``.
        pred_logits_rescaled_back: logits of the rescaled image, resized back to the same shape
            (with :func:`unetkit.data.rescale.resize_to`) before this call.

    Returns:
        in [0, 1]: 1 when both give the same class (:func:`class_map`) everywhere.
    """
    a, b = np.asarray(pred_logits_whole), np.asarray(pred_logits_rescaled_back)
    if a.shape != b.shape or a.ndim < 2:
        raise InputError(f"logit shapes {a.shape} and {b.shape} must be equal (C, *spatial); resize the "
                         "rescaled image's logits back to the original size first")
    return _agreeing(a, b) / float(np.prod(a.shape[1:]))


def _agreeing(a: np.ndarray, b: np.ndarray) -> int:
    """Number of pixels where the class maps of logits ``a`` and ``b`` ``(C, *S)`` agree."""
    return int(np.count_nonzero(class_map(a) == class_map(b)))


def _logits(model: nn.Module, predictor: Any, image: np.ndarray, has_c: bool, cfg: Any, name: str,
            memory_budget: int | None) -> np.ndarray:
    from unetkit.inference import predict
    from unetkit.inference.files import normalizer_for

    normalizer = normalizer_for(image, has_c, cfg, name=name)
    return np.asarray(predict(model, image, transform=normalizer, predictor=predictor, memory_budget=memory_budget))


def evaluate_scales(
    model: nn.Module,
    task: Task,
    cfg: Any,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
    *,
    names: Sequence[str] | None = None,
    memory_budget: int | None = 1 << 30,
) -> dict[str, Any]:
    """Mean IoU and scale consistency of a trained semantic model for each zoom factor.

    Every image is rescaled (:func:`~unetkit.data.rescale.rescale_image`), normalised as in
    training (``cfg.data.normalize``, statistics of the rescaled image, as ``predict`` on that file
    would) and predicted through :func:`unetkit.inference.predict` with ``task.predictor(model)``
    (any size; the model's size rules are handled by the tiling). Labels are rescaled by nearest
    neighbour and prepared by the task (``task.prepare_labels``).

    Args:
        model, task, cfg: as returned by :func:`unetkit.runs.load_run` (a task with an ``iou``
            metric, i.e. semantic segmentation).
        images: ``([C,] [Z,] Y, X)`` arrays (C may be left out for one input channel).
        labels: ``([Z,] Y, X)`` integer class maps, one per image, of the same spatial shape.
        factors: zoom factors (> 0, no duplicates), e.g. ``(0.5, 1, 2)``.
        names: image names for messages (default ``image 0``, ...).
        memory_budget: bytes of activations per batch of tiles (see ``predict``).

    Returns:
        ``{"factors": [...], "rows": [{"factor", "iou", "dice", "consistency"}...], "images": n}``;
        one row per factor, in the given order.
    """
    fs = check_factors(factors)
    if len(images) != len(labels) or not len(images):
        raise InputError(f"got {len(images)} image(s) and {len(labels)} label image(s); give one label image "
                         "per image (at least one)")
    names = [f"image {i}" for i in range(len(images))] if names is None else list(names)
    ndim, c_in = int(cfg.model.ndim), int(cfg.model.in_channels)
    metrics = task.new_metrics()
    if "iou" not in metrics.compute():
        raise InputError(f"task {task.name!r} has no IoU; evaluation on scales needs a semantic task")
    predictor = task.predictor(model)
    prepared = []
    for img, lab, name in zip(images, labels, names):
        img = np.asarray(img)
        has_c = img.ndim == ndim + 1
        spatial = img.shape[1:] if has_c else img.shape
        if img.ndim not in (ndim, ndim + 1) or (has_c and img.shape[0] != c_in) or (not has_c and c_in != 1):
            raise InputError(f"{name}: image shape {img.shape} does not fit a {ndim}-D model with {c_in} input "
                             f"channel(s); expected ({'C, ' if c_in > 1 else '[C, ]'}{'Z, ' if ndim == 3 else ''}Y, X)")
        if np.shape(lab) != spatial:
            raise InputError(f"{name}: labels shape {np.shape(lab)} differs from the image's spatial shape {spatial}")
        for f in fs:  # every factor must give at least one pixel before any prediction runs
            try:
                scaled_shape(spatial, f)
            except InputError as exc:
                raise InputError(f"{name}: {exc}") from None
        whole = _logits(model, predictor, img, has_c, cfg, name, memory_budget)
        prepared.append((img, has_c, task.prepare_labels(np.asarray(lab)), whole, spatial, name))
    rows = []
    for f in fs:
        metrics = task.new_metrics()
        agree = total = 0
        for img, has_c, lab, whole, spatial, name in prepared:
            small = rescale_image(img, f, ndim=ndim)
            logits = whole if f == 1.0 else _logits(model, predictor, small, has_c, cfg, name, memory_budget)
            metrics.update(predict_labels(task, logits), rescale_labels(lab, f))
            back = resize_to(logits, spatial)
            agree += _agreeing(whole, back)
            total += int(np.prod(spatial))
        scores = metrics.compute()
        rows.append({"factor": f, **{k: float(v) for k, v in scores.items()}, "consistency": agree / total})
    return {"factors": list(fs), "rows": rows, "images": len(prepared)}


def plot_scale_curves(results_by_model: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """Plot IoU and consistency against the zoom factor (log2 x-axis), one line per model.

    Args:
        results_by_model: model name -> the dict returned by :func:`evaluate_scales`.
        path: image file to write (PNG, PDF, SVG: by suffix).

    Returns:
        the path written.
    """
    if not results_by_model:
        raise InputError("nothing to plot: results_by_model is empty")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), constrained_layout=True)  # Agg canvas: no display, no global pyplot state
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for name, result in results_by_model.items():
        rows = result.get("rows") if isinstance(result, Mapping) else None
        if not rows:
            raise InputError(f"results of {name!r} have no rows; pass the dicts returned by evaluate_scales")
        x = [float(r["factor"]) for r in rows]
        for ax, key in zip(axes, ("iou", "consistency")):
            ax.plot(x, [r[key] for r in rows], marker="o", label=str(name))
    for ax, title in zip(axes, ("mean IoU", "scale consistency")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("scale factor")
        ax.set_title(title)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].legend()
    out = Path(path)
    fig.savefig(out, dpi=100)
    return out
