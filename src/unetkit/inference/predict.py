"""Whole-image prediction with a U-Net on an array of any spatial size.

The model only accepts valid sizes (see :class:`unetkit.models.UNetGeometry`). For an image of
spatial shape S we choose the smallest achievable output shape O >= S, the input shape
I = input_shape_for(O), mirror-pad the image to I so that output pixel i sits on image pixel i,
run the network once and crop the output back to S. Border context is therefore mirrored
image content, never zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from unetkit.errors import InputError


def _geometry(model: nn.Module):  # noqa: ANN202  (returns a UNetGeometry-like object)
    geo = getattr(model, "geometry", None)
    if geo is None:
        raise InputError(f"{type(model).__name__} exposes no size arithmetic (.geometry); use a unetkit model")
    return geo


def pad_for_model(model: nn.Module, spatial_shape: Sequence[int]) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
    """Output shape O >= ``spatial_shape`` and the per-axis (before, after) padding of the input.

    Returns:
        (O, pads) where padding the image by ``pads`` gives a valid input whose output, cropped
        to ``out[:S]`` on each axis, is aligned with the image.
    """
    geo = _geometry(model)
    shape = tuple(int(s) for s in spatial_shape)
    candidates = [s for s in geo.valid_output_shapes(shape) if all(o >= n for o, n in zip(s, shape))]
    out_shape = min(candidates, key=lambda s: np.prod(s)) if candidates else tuple(
        max(o) for o in zip(*geo.valid_output_shapes(shape))
    )
    in_shape = geo.input_shape_for(out_shape)
    pads = []
    for n, o, i in zip(shape, out_shape, in_shape):
        before = (i - o) // 2
        pads.append((before, i - n - before))
    return out_shape, pads


@torch.no_grad()
def predict(model: nn.Module, array: np.ndarray, *, batch_size: int = 1, device: str | torch.device | None = None) -> np.ndarray:
    """Predict one image (or a stack) with a unetkit U-Net.

    Args:
        model: a model with ``.geometry``, ``.in_channels`` and ``.ndim`` (e.g. :class:`UNet`).
        array: ``([C,] [Z,] Y, X)`` image, or ``(N, C, *S)`` for a stack of N images. The channel
            axis may be omitted when the model has one input channel.
        batch_size: images per forward pass for stacks.
        device: where to run; default: the model's device.

    Returns:
        float32 ``(C_out, *S)`` raw network outputs (logits / embeddings), or ``(N, C_out, *S)``
        for a stack.
    """
    ndim = int(model.ndim)
    c_in = int(model.in_channels)
    x = np.asarray(array)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"image of shape {x.shape} has dtype {x.dtype}, which is not a real numeric type")
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
    out_shape, pads = pad_for_model(model, spatial)
    padded = np.pad(x.astype(np.float32, copy=False), [(0, 0), (0, 0), *pads], mode="reflect" if min(spatial) > 1 else "edge")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outs = []
        for start in range(0, padded.shape[0], batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(padded[start : start + batch_size])).to(dev)
            y = model(batch)
            crop = tuple(slice(0, n) for n in spatial)
            outs.append(y[(slice(None), slice(None), *crop)].float().cpu().numpy())
    finally:
        model.train(was_training)
    result = np.concatenate(outs, axis=0)
    return result if stacked else result[0]
