"""Down- and upsampling by an integer factor per axis (kernel = stride = factor)."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from unetkit.layers.factories import max_pool_nd, transposed_conv_nd


class Downsample(nn.Module):
    """Max pooling with kernel = stride = ``factor`` (per-axis tuple).

    A spatial size that is not divisible by the factor raises ``ValueError``: silently
    dropping a remainder would break the size arithmetic and shift equivariance.
    """

    def __init__(self, factor: tuple[int, ...]) -> None:
        super().__init__()
        self.factor = tuple(factor)
        self.pool = max_pool_nd(len(self.factor))(kernel_size=self.factor, stride=self.factor)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, *S)`` -> ``(N, C, *S / factor)``."""
        spatial = x.shape[2:]
        if any(s % f for s, f in zip(spatial, self.factor)):
            raise ValueError(f"spatial shape {tuple(spatial)} is not divisible by pooling factor {self.factor}")
        return self.pool(x)


class Upsample(nn.Module):
    """Upsampling by ``factor``: nearest-neighbour ("fixed") or transposed convolution ("learnt").

    ``"transposed"`` uses kernel = stride = factor and maps ``in_channels`` to ``out_channels``;
    ``"nearest"`` keeps the channels (``out_channels`` is ignored and :attr:`out_channels`
    equals ``in_channels``).
    """

    def __init__(
        self,
        factor: tuple[int, ...],
        mode: Literal["nearest", "transposed"],
        in_channels: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        self.factor = tuple(factor)
        self.mode = mode
        if mode == "transposed":
            tconv = transposed_conv_nd(len(self.factor))
            self.conv: nn.Module | None = tconv(in_channels, out_channels, kernel_size=self.factor, stride=self.factor)
            self.out_channels = out_channels
        elif mode == "nearest":
            self.conv = None
            self.out_channels = in_channels
        else:
            raise ValueError(f"upsampling must be 'nearest' or 'transposed', got {mode!r}")

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C_out, *S * factor)``."""
        if self.conv is not None:
            return self.conv(x)
        return F.interpolate(x, scale_factor=self.factor, mode="nearest")
