"""Prediction of images of any size, tile by tile, in memory or out of core.

``predict`` follows a :class:`~unetkit.inference.tiling.TilePlan`: for a model that tiles
exactly (``tiling_exact``: valid padding, no per-tile statistics) the stitched result equals the
whole-image prediction (tiles on the f^l grid, cores of n * f^l pixels, mirrored context only at
the image border); otherwise a plan with several tiles warns (:class:`InexactTilingWarning`).
Only one batch of tiles is in memory at a time, so a Zarr or HDF5 source can be far larger than
RAM when the result also goes to an on-disk ``out`` array. The model is read only through the
:class:`~unetkit.models.protocol.Tileable` protocol; batches run in the fast layout of
:mod:`unetkit.inference.fast`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from unetkit.data.io import check_image
from unetkit.data.windows import read_window
from unetkit.errors import InputError
from unetkit.inference.fast import fast_layout, forward_batch
from unetkit.inference.tiling import (
    DEFAULT_MEMORY_BUDGET,
    Mode,
    Tile,
    TilePlan,
    blend_weights,
    plan_tiles,
    warn_if_inexact,
)
from unetkit.models.protocol import Tileable, as_tileable

Transform = Callable[[np.ndarray], np.ndarray]
Predictor = Callable[[torch.Tensor], torch.Tensor]
"""Maps a batch of input tiles ``(N, C_in, *I)`` to raw outputs ``(N, C, *O)`` (default: the model).
A predictor whose channel count differs from ``model.out_channels`` says so in an ``out_channels``
attribute."""


def _layout(model: Tileable, shape: tuple[int, ...]) -> tuple[bool, bool]:
    """(is_stack, has_channel_axis) of an input of ``shape`` for ``model``; InputError if it fits no layout."""
    net = as_tileable(model)
    ndim, c_in = int(net.ndim), int(net.in_channels)
    if len(shape) == ndim + 2 and shape[1] == c_in:
        return True, True
    if len(shape) == ndim + 1 and shape[0] == c_in:
        return False, True
    if len(shape) == ndim and c_in == 1:
        return False, False
    raise InputError(
        f"image of shape {shape} does not fit a {ndim}-D model with {c_in} input channel(s); expected "
        f"({'C, ' if c_in > 1 else '[C, ]'}{'Z, ' if ndim == 3 else ''}Y, X) with C = {c_in}, or a stack (N, C, ...)"
    )


def _check_dtype(array: Any) -> None:
    dtype = np.dtype(array.dtype)
    if dtype == np.bool_:
        return
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"image of shape {tuple(array.shape)} has dtype {dtype}, which is not a real numeric type")


def predict(
    model: nn.Module,
    array: Any,
    tile_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    *,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    mode: Mode | None = None,
    overlap: float = 0.25,
    out: Any = None,
    transform: Transform | None = None,
    progress: bool = False,
    predictor: Predictor | None = None,
) -> Any:
    """Predict an image of any size with a unetkit U-Net, tile by tile.

    Args:
        model: a :class:`~unetkit.models.protocol.Tileable` ``nn.Module`` (a unetkit U-Net).
        array: ``([C,] [Z,] Y, X)`` image (C may be omitted for one input channel), or a stack
            ``(N, C, *S)``. NumPy, or a lazy ``zarr.Array`` / ``h5py.Dataset`` (read tile by tile).
        tile_shape: network input tile shape; default: one tile covering the image if its
            activations fit ``memory_budget``, else the largest tile whose batch fits (see
            :func:`~unetkit.inference.tiling.plan_tiles`).
        batch_size: tiles per forward pass.
        memory_budget: bytes for one batch of tiles; ``None``: the whole image in one tile.
        mode: ``"exact"`` (valid padding), ``"halo-crop"`` or ``"blend"`` (same padding; not
            exact, see the module :mod:`~unetkit.inference.tiling`). A plan of several tiles for
            a model that does not tile exactly warns (:class:`InexactTilingWarning`).
        overlap: tile overlap for ``"blend"``.
        out: optional ``(C_out, *S)`` array (NumPy, Zarr, HDF5) to write into; returned.
        transform: applied to every ``(C, *tile)`` float32 input window before the network, e.g.
            an intensity normalisation. It must act pixel by pixel, or tiling is no longer exact.
        progress: show a progress bar over tiles (on a terminal).
        predictor: what runs on each batch of tiles instead of ``model`` (e.g. a task's sampler,
            :meth:`unetkit.tasks.Task.predictor`); ``model`` still gives the size geometry.

    Returns:
        float32 ``(C_out, *S)`` raw outputs (logits / embeddings), ``(N, C_out, *S)`` for a
        stack, or ``out``. Runs on the model's device in eval mode and the fast layout of
        :mod:`~unetkit.inference.fast`; the model's train/eval mode and parameters are restored.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    shape = tuple(int(s) for s in array.shape)
    stacked, channels = _layout(model, shape)
    _check_dtype(array)
    if stacked:
        if out is not None:
            raise InputError("out= is not supported for stacks; predict the images one by one")
        return np.stack([
            predict(model, array[i], tile_shape, batch_size, memory_budget=memory_budget, mode=mode,
                    overlap=overlap, transform=transform, progress=progress, predictor=predictor)
            for i in range(shape[0])
        ])
    spatial = shape[1:] if channels else shape
    plan = plan_tiles(model, spatial, tile_shape=tile_shape, memory_budget=memory_budget,
                      batch_size=batch_size, mode=mode, overlap=overlap)
    return run_plan(model, array, plan, channels=channels, batch_size=batch_size, out=out,
                    transform=transform, progress=progress, predictor=predictor)


def read_tile(array: Any, plan: TilePlan, tile: Tile, *, channels: bool, transform: Transform | None) -> np.ndarray:
    """The ``(C, *I)`` float32 network input of one tile (mirrored beyond the image border)."""
    window = read_window(array, tile.input_start, plan.input_shape)
    if not channels:
        window = window[None]
    window = window.astype(np.float32, copy=False)
    check_image(window, name=f"tile at {tile.input_start}")
    return transform(window) if transform is not None else window


def run_plan(
    model: nn.Module,
    array: Any,
    plan: TilePlan,
    *,
    channels: bool,
    batch_size: int = 1,
    out: Any = None,
    transform: Transform | None = None,
    progress: bool = False,
    predictor: Predictor | None = None,
) -> Any:
    """Execute a :class:`TilePlan`: read tiles, run ``predictor`` (default: the model) in batches
    (:func:`~unetkit.inference.fast.forward_batch`, the model rewritten by
    :func:`~unetkit.inference.fast.fast_layout` meanwhile), stitch into ``out``. Warns
    (:class:`InexactTilingWarning`) when the plan stitches several tiles of a model that does not
    tile exactly."""
    net = as_tileable(model)
    run = model if predictor is None else predictor
    c_out = int(getattr(run, "out_channels", net.out_channels))
    full = (c_out, *plan.image_shape)
    if out is not None and tuple(out.shape) != full:
        raise InputError(f"out has shape {tuple(out.shape)}, expected {full}")
    warn_if_inexact(net, plan, stacklevel=3)
    blend = plan.mode == "blend"
    if blend:
        acc = np.zeros(full, dtype=np.float32)
        wsum = np.zeros(plan.image_shape, dtype=np.float32)
        weights = blend_weights(plan.output_shape)
        target = acc
    else:
        target = out if out is not None else np.zeros(full, dtype=np.float32)
    device = next(model.parameters()).device
    from tqdm.auto import tqdm

    bar = tqdm(total=plan.n_tiles, desc="tiles", unit="tile", disable=not (progress and sys.stderr.isatty()))
    try:
        with fast_layout(model, net.ndim) as memory_format:
            tiles = list(plan.tiles())
            for start in range(0, len(tiles), batch_size):
                chunk = tiles[start : start + batch_size]
                batch = np.stack([read_tile(array, plan, t, channels=channels, transform=transform) for t in chunk])
                result = forward_batch(run, batch, device, memory_format)
                for t, y in zip(chunk, result):
                    kept = y[(slice(None), *t.keep)]
                    if blend:
                        w = weights[t.keep]
                        acc[(slice(None), *t.target)] += kept * w
                        wsum[t.target] += w
                    else:
                        target[(slice(None), *t.target)] = kept
                bar.update(len(chunk))
    finally:
        bar.close()
    if blend:
        acc /= wsum
        if out is not None:
            out[...] = acc
            return out
        return acc
    return target
