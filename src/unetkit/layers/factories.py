"""Factories that pick the 2-D or 3-D variant of a torch layer from ``ndim``."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_TCONV = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAXPOOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCHNORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCENORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_CONV_FN: dict[int, Callable[..., object]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def check_ndim(ndim: int) -> int:
    """Return ``ndim`` if it is 2 or 3, else raise ``ValueError``."""
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    return ndim


def conv_nd(ndim: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return _CONV[check_ndim(ndim)]


def transposed_conv_nd(ndim: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return _TCONV[check_ndim(ndim)]


def max_pool_nd(ndim: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``."""
    return _MAXPOOL[check_ndim(ndim)]


def batch_norm_nd(ndim: int) -> type[nn.Module]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d``."""
    return _BATCHNORM[check_ndim(ndim)]


def instance_norm_nd(ndim: int) -> type[nn.Module]:
    """``nn.InstanceNorm2d`` or ``nn.InstanceNorm3d`` (affine)."""
    return _INSTANCENORM[check_ndim(ndim)]


def conv_fn_nd(ndim: int) -> Callable[..., object]:
    """``torch.nn.functional.conv1d``, ``conv2d`` or ``conv3d`` (for layers that hold their own weights)."""
    if ndim not in _CONV_FN:
        raise ValueError(f"ndim must be 1, 2 or 3 for a functional convolution, got {ndim!r}")
    return _CONV_FN[ndim]
