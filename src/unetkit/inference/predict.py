"""Whole-image prediction with a U-Net on an array of any spatial size.

The model only accepts valid sizes (see :class:`unetkit.models.UNetGeometry`). For an image of
spatial shape S we mirror-pad it into a valid input whose pooling grid starts at image pixel 0
(see :class:`PaddingPlan`), run the network once and crop the output back to S. Border context
is therefore mirrored image content, never zeros, and the result on the image interior equals
the direct forward pass of any valid-size crop that starts on the f^l grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unetkit.data.io import check_image
from unetkit.errors import InputError


def _geometry(model: nn.Module):  # noqa: ANN202  (returns a UNetGeometry-like object)
    geo = getattr(model, "geometry", None)
    if geo is None:
        raise InputError(f"{type(model).__name__} exposes no size arithmetic (.geometry); use a unetkit model")
    return geo


@dataclass(frozen=True)
class PaddingPlan:
    """How to run a U-Net once on a whole image of spatial shape S.

    Attributes:
        output_shape: network output shape O (valid and >= S + offset on every axis).
        pads: per-axis ``(before, after)`` padding that turns the image into the input of shape
            ``input_shape_for(O)``.
        offset: per-axis index of the output pixel that sits on image pixel 0; the prediction
            for the image is ``out[offset : offset + S]``.

    The padding before the image is a multiple of the shift period f^l, so the pooling grid is
    anchored at image pixel 0, exactly as in a direct forward pass of a valid-size image: the
    prediction is one fixed function of the image, whatever its size (and tiles cut on the f^l
    grid reproduce it).
    """

    output_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    offset: tuple[int, ...]


def pad_for_model(model: nn.Module, spatial_shape: Sequence[int]) -> PaddingPlan:
    """The :class:`PaddingPlan` for predicting an image of ``spatial_shape`` in one pass."""
    geo = _geometry(model)
    shape = tuple(int(s) for s in spatial_shape)
    period = geo.shift_period
    margin = geo.halo if geo.padding == "valid" else (0,) * len(shape)  # (input - output) / 2
    before = tuple(-(-h // p) * p for h, p in zip(margin, period))  # halo rounded up to a multiple of f^l
    offset = tuple(b - h for b, h in zip(before, margin))
    need = tuple(n + d for n, d in zip(shape, offset))
    candidates = [s for s in geo.valid_output_shapes(need) if all(o >= n for o, n in zip(s, need))]
    if candidates:
        out_shape = min(candidates, key=lambda s: int(np.prod(s)))
    else:  # `need` is below the smallest output on some axis: take the largest neighbour per axis
        out_shape = tuple(max(o) for o in zip(*geo.valid_output_shapes(need)))
    in_shape = geo.input_shape_for(out_shape)
    pads = tuple((b, i - n - b) for n, b, i in zip(shape, before, in_shape))
    return PaddingPlan(tuple(out_shape), pads, offset)


@torch.no_grad()
def predict(model: nn.Module, array: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
    """Predict one image (or a stack) with a unetkit U-Net.

    Args:
        model: a model with ``.geometry``, ``.in_channels`` and ``.ndim`` (e.g. :class:`UNet`).
        array: ``([C,] [Z,] Y, X)`` image, or ``(N, C, *S)`` for a stack of N images. The channel
            axis may be omitted when the model has one input channel.
        batch_size: images per forward pass for stacks.

    The computation runs on the model's device.

    Returns:
        float32 ``(C_out, *S)`` raw network outputs (logits / embeddings), or ``(N, C_out, *S)``
        for a stack.
    """
    ndim = int(model.ndim)
    c_in = int(model.in_channels)
    x = np.asarray(array)
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"image of shape {x.shape} has dtype {x.dtype}, which is not a real numeric type")
    check_image(x)
    stacked = x.ndim == ndim + 2
    if x.ndim == ndim and c_in == 1:
        x = x[None]
    if x.ndim == ndim + 1:
        x = x[None]
    if x.ndim != ndim + 2 or x.shape[1] != c_in:
        raise InputError(
            f"image of shape {np.asarray(array).shape} does not fit a {ndim}-D model with {c_in} input channel(s); "
            f"expected ({'C, ' if c_in > 1 else '[C, ]'}{'Z, ' if ndim == 3 else ''}Y, X) with C = {c_in}"
        )
    spatial = x.shape[2:]
    plan = pad_for_model(model, spatial)
    padded = np.pad(x.astype(np.float32, copy=False), [(0, 0), (0, 0), *plan.pads], mode="reflect")
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outs = []
        for start in range(0, padded.shape[0], batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(padded[start : start + batch_size])).to(dev)
            y = model(batch)
            crop = tuple(slice(d, d + n) for d, n in zip(plan.offset, spatial))
            outs.append(y[(slice(None), slice(None), *crop)].float().cpu().numpy())
    finally:
        model.train(was_training)
    result = np.concatenate(outs, axis=0)
    return result if stacked else result[0]
