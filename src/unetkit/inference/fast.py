"""How inference runs a batch of tiles fast: model rewrites, memory layout and autograd mode, in one place.

Both :func:`unetkit.inference.predict.run_plan` (in-process) and the dask workers
(:mod:`unetkit.inference.dask`) run every batch through :func:`forward_batch`, with the model
prepared by :func:`fast_layout` (in-process: for the duration of one prediction, then restored)
or :func:`to_fast_layout` (dask: once, on the worker's private cached copy). The two paths run
the same kernels on the same weights, so their outputs stay bitwise equal.

What is used, and why (measured with ``benchmarks/unet_throughput.py``; numbers in
``benchmarks/README.md``):

* **channels-last memory format** (``torch.channels_last``, ``torch.channels_last_3d`` in 3-D)
  for the convolution weights and the input batch, so every activation stays channels-last.
  oneDNN (CPU) and cuDNN (CUDA) convolutions run natively in NHWC; in NCHW they reorder the
  activations around every convolution. The main gain in 2-D (~1.4x on one core), less in 3-D.
  Not used on other devices (MPS), nor for models with group or instance normalisation: PyTorch's
  channels-last instance norm is slower than NCHW, and its channels-last group norm rounds
  differently (up to 6e-5 on outputs of std 1, max 10, against 1e-5 between NCHW float32 and
  float64), so those models run as before (bitwise the same outputs).
* **batch-norm folding**: a convolution followed by a batch normalisation in eval mode (running
  statistics) is one affine map; its weight becomes ``w * gamma / sqrt(var + eps)`` per output
  channel, its bias ``(b - mean) * gamma / sqrt(var + eps) + beta``, and the norm layer is
  skipped. Saves one pass over every feature map (~1.2x on top of channels-last in 2-D).
  Only pairs that sit next to each other in an ``nn.Sequential`` (unetkit's conv blocks) are
  folded; group and instance norms compute statistics of the input and cannot be folded.
* **``torch.inference_mode``** instead of ``torch.no_grad``: no autograd bookkeeping at all
  (within the noise here, free).

Both rewrites change results only by float rounding (a different summation order, and the
scale multiplied into the weights once): ~1e-7 relative, checked to stay within 1e-5 of the
plain model in ``tests/inference/test_fast.py``.

In-process, the caller's model is rewritten *in place* for the duration of the prediction (as
``model.eval()`` already was), so a task's predictor that wraps the model runs fast too; on exit
the original parameter objects, strides, modules and train/eval mode are put back. Predictions
with the same model are serialised by a per-model lock; do not train or call the model from
another thread while it predicts.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

FAST_DEVICES = ("cpu", "cuda")
"""Device types on which the channels-last layout is used."""

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()

Undo = list[Callable[[], None]]


def channels_last_format(ndim: int) -> torch.memory_format:
    """``torch.channels_last`` for 2-D (4-D tensors ``(N, C, H, W)``), ``torch.channels_last_3d``
    for 3-D (5-D tensors ``(N, C, D, H, W)``)."""
    if ndim == 2:
        return torch.channels_last
    if ndim == 3:
        return torch.channels_last_3d
    raise ValueError(f"ndim must be 2 or 3 for a channels-last layout, got {ndim!r}")


_PER_SAMPLE_NORMS = (nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def input_format(model: nn.Module, ndim: int) -> torch.memory_format:
    """Memory format in which ``model`` takes its input batches on the fast path: channels-last for a
    2-/3-D model on CPU or CUDA without group or instance normalisation, else contiguous (NCHW)."""
    if (ndim in (2, 3) and _device_of(model).type in FAST_DEVICES
            and not any(isinstance(m, _PER_SAMPLE_NORMS) for m in model.modules())):
        return channels_last_format(ndim)
    return torch.contiguous_format


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (
        isinstance(conv, _CONVS) and isinstance(norm, _BATCH_NORMS) and not norm.training
        and norm.track_running_stats and norm.running_mean is not None and norm.running_var is not None
        and norm.num_features == conv.out_channels
    )


def _fold_batch_norms(model: nn.Module, undo: Undo | None) -> int:
    """Fold every eval-mode batch norm into the convolution right before it in an ``nn.Sequential``;
    returns how many were folded. ``undo`` collects the callables that reverse it."""
    folded = 0
    with torch.no_grad():
        for block in list(model.modules()):
            if not isinstance(block, nn.Sequential):
                continue
            for i in range(len(block) - 1):
                conv, norm = block[i], block[i + 1]
                if not _foldable(conv, norm):
                    continue
                weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var,
                                                    norm.eps, norm.weight, norm.bias)
                if undo is not None:
                    undo.append(_restorer(block, i + 1, norm))
                    undo.append(_restorer(conv, "weight", conv.weight))
                    undo.append(_restorer(conv, "bias", conv.bias))
                conv.weight = nn.Parameter(weight.detach(), requires_grad=False)
                conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
                block[i + 1] = nn.Identity()
                folded += 1
    return folded


def _restorer(owner: nn.Module, key: int | str, value: object) -> Callable[[], None]:
    def restore() -> None:
        if isinstance(key, int):
            owner[key] = value  # type: ignore[index]
        else:
            setattr(owner, key, value)

    return restore


def _to_format(model: nn.Module, ndim: int, fmt: torch.memory_format, undo: Undo | None) -> None:
    rank = ndim + 2
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.dim() == rank:
            old = tensor.data
            if undo is not None:
                undo.append(lambda t=tensor, d=old: setattr(t, "data", d))
            tensor.data = old.contiguous(memory_format=fmt)


def _apply(model: nn.Module, ndim: int, undo: Undo | None) -> torch.memory_format:
    model.eval()
    _fold_batch_norms(model, undo)
    fmt = input_format(model, ndim)
    if fmt != torch.contiguous_format:
        _to_format(model, ndim, fmt, undo)
    return fmt


def to_fast_layout(model: nn.Module, ndim: int) -> torch.memory_format:
    """Rewrite ``model`` for inference, in place and for good: eval mode, batch norms folded into
    their convolutions, ``ndim + 2``-dimensional weights in :func:`input_format`. For a private
    copy (a dask worker's cached model). Returns the memory format for :func:`forward_batch`."""
    return _apply(model, ndim, None)


def _lock_of(model: nn.Module) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def fast_layout(model: nn.Module, ndim: int) -> Iterator[torch.memory_format]:
    """Within the block, ``model`` is rewritten as by :func:`to_fast_layout`; yields the input
    memory format for :func:`forward_batch`.

    On exit (errors included) everything is put back: the original parameter objects (so an
    optimizer holding them is unaffected) with their original strides, the batch-norm modules
    and the train/eval mode.
    """
    with _lock_of(model):
        undo: Undo = []
        was_training = model.training
        try:
            yield _apply(model, ndim, undo)
        finally:
            for step in reversed(undo):
                step()
            model.train(was_training)


def forward_batch(run: Callable[[Tensor], Tensor], batch: np.ndarray, device: torch.device,
                  memory_format: torch.memory_format = torch.contiguous_format) -> np.ndarray:
    """Run ``run`` (the model, or a task's predictor) on one batch of tiles under ``torch.inference_mode``.

    Args:
        run: maps ``(N, C_in, *I)`` to ``(N, C_out, *O)``.
        batch: ``(N, C_in, *I)`` float32 NumPy array.
        device: where the model lives.
        memory_format: of the input tensor (from :func:`fast_layout` / :func:`to_fast_layout`).

    Returns:
        ``(N, C_out, *O)`` float32 NumPy array (possibly not C-contiguous: channels-last strides).
    """
    x = torch.from_numpy(batch).to(device).contiguous(memory_format=memory_format)
    with torch.inference_mode():
        return run(x).float().cpu().numpy()
