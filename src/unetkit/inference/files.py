"""Predict image files with a trained run: read, normalise as in training, predict, write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from unetkit.data.datasets import to_channels_first
from unetkit.data.io import check_image, parse_location, read_image, write_image
from unetkit.data.normalize import normalize
from unetkit.errors import InputError
from unetkit.inference.predict import predict
from unetkit.training.tasks import Task, predict_labels

OutputType = Literal["labels", "probabilities", "logits"]


def predict_file(
    model: nn.Module,
    task: Task,
    cfg: Any,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    axes: str | None = None,
    output_type: OutputType = "labels",
    overwrite: bool = False,
) -> Path:
    """Predict one image file and write the result.

    Args:
        model, task, cfg: as returned by :func:`unetkit.training.checkpoint.load_run`.
        source: image path (``file.h5:key`` for a dataset inside a container).
        target: output path; its suffix picks the format (TIFF, PNG, HDF5, Zarr, OME-Zarr).
        axes: axes of the source file (inferred when None).
        output_type: ``"labels"`` (``[Z]YX`` class ids), ``"probabilities"`` (``C[Z]YX`` softmax,
            sigmoid for a single-channel model) or ``"logits"`` (``C[Z]YX`` raw outputs).
        overwrite: replace an existing target; otherwise an existing target is an error.

    Returns:
        the path written.
    """
    out_path, out_key = parse_location(target)
    if out_path.exists() and not overwrite and out_key is None:
        raise InputError(f"output {out_path} already exists; pass --overwrite to replace it")
    array, file_axes = read_image(source, axes=axes)
    ndim = cfg.model.ndim
    image = to_channels_first(array, file_axes, ndim=ndim, channels=cfg.model.in_channels, name=str(source))
    check_image(image, name=str(source))
    image = normalize(image.astype(np.float32, copy=False), cfg.data.normalize.mode, channel_axis=0,
                      **cfg.data.normalize.kwargs())
    raw = predict(model, image)
    spatial = "ZYX"[3 - ndim :]
    if output_type == "labels":
        labels = predict_labels(task, raw)
        result, result_axes = labels.astype(np.uint16 if labels.max(initial=0) > 255 else np.uint8), spatial
    elif output_type == "probabilities":
        t = torch.from_numpy(raw)
        probs = torch.sigmoid(t) if t.shape[0] == 1 else torch.softmax(t, dim=0)
        result, result_axes = probs.numpy().astype(np.float32), "C" + spatial
    elif output_type == "logits":
        result, result_axes = raw.astype(np.float32), "C" + spatial
    else:
        raise InputError(f"output_type must be labels, probabilities or logits, got {output_type!r}")
    return write_image(target, result, axes=result_axes, overwrite=True)
