"""How inference runs a batch of tiles fast: memory layout and autograd settings, in one place.

Both :func:`unetkit.inference.predict.run_plan` (in-process) and the dask workers
(:mod:`unetkit.inference.dask`) run every batch through :func:`forward_batch` with the model
prepared by :func:`fast_layout` (in-process: for the duration of one prediction, then restored)
or :func:`to_fast_layout` (dask: once, on the worker's private cached copy), so the two paths run
the same kernels and their outputs stay bitwise equal.

What is used, and why (measured with ``benchmarks/unet_throughput.py``, see
``benchmarks/README.md``; a depth-3 2-D U-Net, batch 4 x 252^2, CPU, PyTorch 2.13):

* **channels-last memory format** (``torch.channels_last``, ``torch.channels_last_3d`` for 3-D)
  for the convolution weights and the input batch. oneDNN (CPU) and cuDNN (CUDA) convolutions run
  natively in NHWC; in NCHW they reorder every activation before and after each convolution. This
  is the main gain (about 1.5-2x in 2-D, less in 3-D). Results change only by float rounding
  (a different summation order, ~1e-7 relative). Not used on other devices (MPS).
* **``torch.inference_mode``** instead of ``torch.no_grad``: no version counters or views
  tracking; a few percent.

Tried and left out: folding batch normalisation into the preceding convolution (within the
noise of a shared CPU once the layout is channels-last, and it would need a rewritten copy of
the model, which a task's predictor wrapping the model would not see).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

FAST_DEVICES = ("cpu", "cuda")
"""Device types on which the channels-last layout is used."""


def channels_last_format(ndim: int) -> torch.memory_format:
    """``torch.channels_last`` for 2-D (4-D tensors ``(N, C, H, W)``), ``torch.channels_last_3d``
    for 3-D (5-D tensors ``(N, C, D, H, W)``)."""
    if ndim == 2:
        return torch.channels_last
    if ndim == 3:
        return torch.channels_last_3d
    raise ValueError(f"ndim must be 2 or 3 for a channels-last layout, got {ndim!r}")


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def uses_fast_layout(model: nn.Module, ndim: int) -> bool:
    """Whether :func:`to_fast_layout` changes anything for ``model`` (a 2-/3-D model on CPU or CUDA)."""
    return ndim in (2, 3) and _device_of(model).type in FAST_DEVICES


def to_fast_layout(model: nn.Module, ndim: int) -> nn.Module:
    """Put ``model``'s ``ndim + 2``-dimensional parameters and buffers (convolution weights
    ``(C_out, C_in, *k)``) into channels-last memory format, in place; values are unchanged.
    Returns ``model``."""
    if uses_fast_layout(model, ndim):
        fmt = channels_last_format(ndim)
        rank = ndim + 2
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if tensor.dim() == rank:
                    tensor.data = tensor.data.contiguous(memory_format=fmt)
    return model


@contextlib.contextmanager
def fast_layout(model: nn.Module, ndim: int) -> Iterator[nn.Module]:
    """Within the block: ``model`` in eval mode with the fast layout (:func:`to_fast_layout`).

    On exit (errors included) every parameter and buffer gets back its original tensor (same
    values, same strides) and the train/eval mode is restored, so the caller's model (and an
    optimizer holding its parameters) is left as it was.
    """
    tensors = [*model.parameters(), *model.buffers()]
    saved = [t.data for t in tensors]
    was_training = model.training
    model.eval()
    try:
        yield to_fast_layout(model, ndim)
    finally:
        for t, data in zip(tensors, saved):
            t.data = data
        model.train(was_training)


def forward_batch(run: Callable[[Tensor], Tensor], batch: np.ndarray, device: torch.device, ndim: int) -> np.ndarray:
    """Run ``run`` (the model, or a task's predictor) on one batch of tiles.

    Args:
        run: maps ``(N, C_in, *I)`` to ``(N, C_out, *O)``.
        batch: ``(N, C_in, *I)`` float32 NumPy array.
        device: where the model lives.
        ndim: number of spatial axes of the tiles.

    Returns:
        ``(N, C_out, *O)`` float32 NumPy array (possibly not C-contiguous: channels-last strides).
    """
    x = torch.from_numpy(batch).to(device)
    if device.type in FAST_DEVICES and ndim in (2, 3):
        x = x.contiguous(memory_format=channels_last_format(ndim))
    with torch.inference_mode():
        return run(x).float().cpu().numpy()
