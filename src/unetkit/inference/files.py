"""Predict image files with a trained run: read, normalise as in training, predict, write.

Sources in HDF5 or Zarr are read tile by tile and targets in HDF5 or Zarr are written tile by
tile, so such images may be larger than memory: peak memory is bounded by the tile budget.
Normalisation statistics are computed once (on a bounded, regular subsample when the image is
large) and applied to every tile, so tiled and whole-image predictions stay identical.

Post-processing that acts pixel by pixel (``task.pointwise``: argmax, softmax) runs on each
tile's output as it is written. Post-processing that needs the whole image (clustering
embeddings into instances, :class:`~unetkit.tasks.EmbeddingTask`) never runs tile by tile: the
raw output is stitched in memory first and post-processed once, so an object cut by a tile
border keeps one id. That needs the raw ``(C_out, *S)`` float32 output in memory; above
``max_whole_output_bytes`` (:data:`WHOLE_OUTPUT_LIMIT`) it is refused (write logits and
post-process them separately, or use ``unetkit segment`` (:mod:`unetkit.inference.segment`), which
clusters blockwise when the embeddings exceed its memory budget).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from unetkit.data.io import (check_image, is_chunked_target, new_array, open_array, parse_location, target_exists,
                             validate_axes, write_image)
from unetkit.data.normalize import make_normalizer, strided_sample
from unetkit.errors import InputError
from unetkit.inference.predict import predict
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET, plan_tiles
from unetkit.tasks.base import predict_labels

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.tasks import Task

OutputType = Literal["labels", "probabilities", "logits"]
OUTPUT_TYPES = ("labels", "probabilities", "logits")
WHOLE_OUTPUT_LIMIT = 2 << 30
"""Default largest raw output (bytes, float32) held in memory for whole-image post-processing."""


class PointwiseSink:
    """Looks like a ``(C_out, *S)`` array to :func:`~unetkit.inference.predict` but stores
    ``fn(value)`` of every written block into ``target`` (e.g. argmax labels ``(*S)``)."""

    def __init__(self, target: Any, fn: Any, shape: tuple[int, ...], *, drops_channels: bool) -> None:
        self.target, self.fn, self.shape, self.drops_channels = target, fn, shape, drops_channels

    def __setitem__(self, key: tuple[slice, ...], value: np.ndarray) -> None:
        self.target[key[1:] if self.drops_channels else key] = self.fn(value)


def labels_of(output: np.ndarray, task: Task) -> np.ndarray:
    """The task's post-processing of one raw output ``(C, *S)``: labels ``(*S)`` uint16."""
    return predict_labels(task, output).astype(np.uint16)


def probabilities_of(output: np.ndarray) -> np.ndarray:
    """Softmax over the channels of ``(C, *S)`` raw outputs (sigmoid for C = 1), float32."""
    t = torch.from_numpy(np.ascontiguousarray(output))
    return (torch.sigmoid(t) if t.shape[0] == 1 else torch.softmax(t, dim=0)).numpy()


def _identity(output: np.ndarray) -> np.ndarray:
    return output


def _postprocess(task: Task, output_type: str) -> tuple[Any, bool, Any]:
    """(function on ``(C, *tile)`` raw outputs, whether it drops the channel axis, output dtype)."""
    if output_type == "labels":
        return functools.partial(labels_of, task=task), True, np.uint16
    if output_type == "probabilities":
        return probabilities_of, False, np.float32
    if output_type == "logits":
        return _identity, False, np.float32
    raise InputError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")


def needs_whole_output(task: Task, output_type: str) -> bool:
    """True when ``output_type`` asks for the task's post-processing and that is not pixel-wise."""
    return output_type == "labels" and not task.pointwise


def check_whole_output(task: Task, shape: tuple[int, ...], limit: int) -> None:
    """Refuse (``InputError``) whole-image post-processing of a raw output of ``shape``
    ``(C_out, *S)`` float32 larger than ``limit`` bytes."""
    size = 4 * int(np.prod(shape))
    if size > limit:
        name = getattr(task, "name", type(task).__name__)
        raise InputError(
            f"labels of task {name!r} need the whole image at once (its post-processing, e.g. clustering, is not "
            f"pixel-wise and never runs tile by tile), i.e. the raw output {shape} float32 in memory: "
            f"{size / 2**30:.2f} GiB > the limit {limit / 2**30:.2f} GiB (max_whole_output_bytes). Write logits "
            "(output type 'logits') and post-process them separately, raise the limit, or predict a smaller "
            "region; or use `unetkit segment`, which clusters blockwise when the embeddings exceed its memory budget"
        )


def open_source(source: str | os.PathLike, axes: str | None, *, ndim: int, channels: int) -> tuple[Any, bool]:
    """Open an image lazily (HDF5 / Zarr) or in memory (TIFF / PNG); returns ``(array, has_channel_axis)``.

    The array has canonical axis order ``[C][Z]YX``; files stored in another order are loaded
    into memory and transposed.
    """
    array, file_axes = open_array(source)
    if axes is not None:
        file_axes = validate_axes(axes, len(array.shape))
    canon = "".join(a for a in "CZYX" if a in file_axes)
    if file_axes != canon:
        array = np.transpose(np.asarray(array), [file_axes.index(a) for a in canon])
    spatial = canon.replace("C", "")
    if len(spatial) != ndim:
        raise InputError(f"{source}: axes {canon!r} give a {len(spatial)}-D image but the model is {ndim}-D "
                         f"(expected {'ZYX' if ndim == 3 else 'YX'} spatial axes); pass --axes or check the file")
    has_c = "C" in canon
    n_ch = array.shape[0] if has_c else 1
    if n_ch != channels:
        raise InputError(f"{source}: image has {n_ch} channel(s) but model.in_channels is {channels}")
    return array, has_c


def normalizer_for(array: Any, has_c: bool, cfg: Any, *, name: str) -> Any:
    """The run's normalisation (``cfg.data.normalize``) with statistics of ``array`` (an image
    from :func:`open_source`; a bounded regular subsample when it is large), after checking
    the dtype and finiteness of that sample. Applied to every tile, so tiled = whole."""
    sample = strided_sample(array, channel_axis=0 if has_c else None)  # the whole image when it is small
    check_image(sample, name=name)  # dtype, NaN / inf (every tile is checked again when read)
    return make_normalizer(sample if has_c else sample[None], cfg.data.normalize.mode, channel_axis=0,
                           **cfg.data.normalize.kwargs())


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
    tile_shape: tuple[int, ...] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    batch_size: int = 1,
    progress: bool = False,
    max_whole_output_bytes: int = WHOLE_OUTPUT_LIMIT,
) -> Path:
    """Predict one image file and write the result.

    Args:
        model, task, cfg: as returned by :func:`unetkit.runs.load_run`; each batch of tiles runs
            through ``task.predictor(model)``.
        source: image path (``file.h5:key`` for a dataset inside a container).
        target: output path; its suffix picks the format. HDF5 / Zarr / OME-Zarr targets are
            written tile by tile (out of core); TIFF / PNG are assembled in memory.
        axes: axes of the source file (inferred when None).
        output_type: ``"labels"`` (``[Z]YX`` class or instance ids), ``"probabilities"``
            (``C[Z]YX`` softmax, sigmoid for a single-channel model) or ``"logits"`` (``C[Z]YX``
            raw outputs).
        overwrite: replace an existing target; otherwise an existing target is an error.
        tile_shape, memory_budget, batch_size: tiling (see :func:`unetkit.inference.predict`).
        progress: progress bar over tiles.
        max_whole_output_bytes: labels of a task whose post-processing is not pixel-wise
            (``task.pointwise`` False, e.g. clustering embeddings) are computed once on the whole
            stitched raw output, held in memory (also for HDF5 / Zarr targets); a raw output
            ``(C_out, *S)`` float32 larger than this is refused with an ``InputError``.

    Returns:
        the path written.
    """
    out_path, out_key = parse_location(target)
    if not overwrite and target_exists(target):  # with a key: that dataset (other keys may be added)
        raise InputError(f"output {out_path}{':' + out_key if out_key else ''} already exists; pass --overwrite to "
                         "replace it")
    fn, drops_channels, dtype = _postprocess(task, output_type)
    ndim = cfg.model.ndim
    array, has_c = open_source(source, axes, ndim=ndim, channels=cfg.model.in_channels)
    spatial = tuple(array.shape[1:] if has_c else array.shape)
    predictor = task.predictor(model)
    c_out = int(getattr(predictor, "out_channels", model.out_channels))
    full = (c_out, *spatial)
    whole = needs_whole_output(task, output_type)
    if whole:
        check_whole_output(task, full, max_whole_output_bytes)
    normalizer = normalizer_for(array, has_c, cfg, name=str(source))
    result_axes = ("" if drops_channels else "C") + "ZYX"[3 - ndim :]
    result_shape = spatial if drops_channels else full
    options = dict(tile_shape=tile_shape, memory_budget=memory_budget, batch_size=batch_size,
                   transform=normalizer, progress=progress, predictor=predictor)
    if is_chunked_target(target):
        plan = plan_tiles(model, spatial, tile_shape=tile_shape, memory_budget=memory_budget, batch_size=batch_size)
        core = plan.core_shape
        chunks = core if drops_channels else (1 if c_out > 16 else c_out, *core)
        with new_array(target, shape=result_shape, dtype=dtype, axes=result_axes, chunks=chunks,
                       overwrite=overwrite) as out:
            if whole:  # stitch the raw output in memory, post-process the whole image once
                out[...] = fn(predict(model, array, **options))
            else:
                predict(model, array, out=PointwiseSink(out, fn, full, drops_channels=drops_channels), **options)
        return out_path
    if whole:
        result = fn(predict(model, array, **options))
    else:
        result = np.zeros(result_shape, dtype=dtype)
        predict(model, array, out=PointwiseSink(result, fn, full, drops_channels=drops_channels), **options)
    if output_type == "labels" and result.max(initial=0) <= 255:
        result = result.astype(np.uint8)
    return write_image(target, result, axes=result_axes, overwrite=True)
