"""Scale cross-correlation (the scale-equivariant linear layer), batch norm shared over scales, and
their conv block, on lifted features ``(N, C, S, *spatial)`` (see :mod:`unetkit.layers.scale_layout`).

ScaleConv:  (F * h)(k, x) = sum_j sum_y F(k + j, x + 2^k y) h(j, y),   j = 0..J-1,
i.e. at scale k an ordinary convolution dilated by 2^k whose input channels are the J scales
k..k+J-1 of F; the weights h are shared over k.

Scales past S-1 (``scale_boundary``), needed at scales k > S-J when J > 1:

* ``"truncate"`` (default, as in the DSS reference): missing scales contribute nothing (the terms
  with k + j > S-1 are dropped; equivalently F is zero there). The output at scales
  k <= S-J is exact; at the coarser ones it uses fewer taps.
* ``"repeat"`` (as in the SEU-Net authors' code, without their 1/8^j tap weights): the coarsest
  scale F(S-1) stands in for the missing ones.

Either way, scale equivariance holds only for the scales whose taps all exist: after L layers of
scale depth J, scales k <= S-1 - L (J-1) (and one scale less for each scale shift tested).

Padding is ``'same'``: zeros, ``2^k * (kernel_size // 2)`` per side at scale k, so the spatial
shape is kept (stride 1) or halved rounding up (stride 2, the subsampling D_2 on the even lattice:
output[i] = full-resolution output[2 i]). Zero padding breaks exact shift and scale equivariance
within ``2^k * (kernel_size // 2)`` pixels of the border; the interior is exact.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from unetkit.layers.factories import conv_fn_nd
from unetkit.layers.scale_layout import SCALE_AXIS, check_lifted

ScaleBoundary = Literal["truncate", "repeat"]


class ScaleConv(nn.Module):
    """Scale cross-correlation with scale depth J, dilation 2^k at scale k, optional stride 2.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        ndim: spatial axes (2 or 3).
        kernel_size: odd spatial kernel size K (per axis).
        scale_depth: J >= 1, the number of scales one output scale reads (k..k+J-1).
        stride: 1, or 2 to subsample the result on the even lattice (D_2).
        bias: add a learnt bias per output channel (shared over scales).
        scale_boundary: ``"truncate"`` or ``"repeat"`` for scales past S-1 (module docstring).

    Shapes:
        input ``(N, C_in, S, *spatial)``, output ``(N, C_out, S, *spatial')`` with
        ``spatial' = spatial`` (stride 1) or ``ceil(spatial / 2)`` (stride 2).

    Weight: ``(C_out, C_in * J, K, ..., K)``, input channel index ``c * J + j``.
    """

    def __init__(self, in_channels: int, out_channels: int, ndim: int, kernel_size: int = 3, *,
                 scale_depth: int = 1, stride: int = 1, bias: bool = True,
                 scale_boundary: ScaleBoundary = "truncate") -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size!r}")
        if scale_depth < 1:
            raise ValueError(f"scale_depth must be >= 1, got {scale_depth!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if scale_boundary not in ("truncate", "repeat"):
            raise ValueError(f"scale_boundary must be 'truncate' or 'repeat', got {scale_boundary!r}")
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.kernel_size, self.scale_depth, self.stride = kernel_size, scale_depth, stride
        self.scale_boundary: ScaleBoundary = scale_boundary
        self._conv = conv_fn_nd(ndim)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels * scale_depth, *(kernel_size,) * ndim))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv*d`` (Kaiming uniform, fan-in over C_in * J * K^ndim)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def reach(self, scales: int) -> int:
        """Context per side in pixels of this layer's input resolution: 2^(S-1) * (K // 2)."""
        return 2 ** (scales - 1) * (self.kernel_size // 2)

    def _pad_scales(self, x: Tensor) -> Tensor:
        extra = self.scale_depth - 1
        if extra == 0:
            return x
        if self.scale_boundary == "repeat":
            tail = x.narrow(SCALE_AXIS, x.shape[SCALE_AXIS] - 1, 1).expand(*x.shape[:2], extra, *x.shape[3:])
        else:
            tail = x.new_zeros(*x.shape[:2], extra, *x.shape[3:])
        return torch.cat([x, tail], dim=SCALE_AXIS)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, S, *spatial)`` -> ``(N, C_out, S, *spatial')``."""
        check_lifted(x, self.ndim, channels=self.in_channels)
        n, c, s = x.shape[:3]
        spatial = x.shape[3:]
        padded = self._pad_scales(x)
        j = self.scale_depth
        outs = []
        for k in range(s):
            window = padded[:, :, k:k + j].reshape(n, c * j, *spatial)
            d = 2**k
            outs.append(self._conv(window, self.weight, self.bias, stride=self.stride,
                                   padding=d * (self.kernel_size // 2), dilation=d))
        return torch.stack(outs, dim=SCALE_AXIS)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, ndim={self.ndim}, kernel_size={self.kernel_size}, "
                f"scale_depth={self.scale_depth}, stride={self.stride}, scale_boundary={self.scale_boundary!r}, "
                f"bias={self.bias is not None}")


class ScaleBatchNorm(nn.BatchNorm1d):
    """Batch norm with one set of statistics and affine parameters per channel, shared over scales.

    Folds the scale and spatial axes into one: ``(N, C, S, *spatial)`` -> ``(N, C, S * prod(spatial))``
    for ``nn.BatchNorm1d`` and back. Equivariant to shifts and scalings (statistics over all of
    N, S and space; in eval mode the running statistics make it pointwise).
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """``(N, C, S, *spatial)`` -> same shape."""
        shape = x.shape
        return super().forward(x.reshape(shape[0], shape[1], -1)).reshape(shape)


class ScaleConvBlock(nn.Sequential):
    """``n_convs`` times (ScaleConv -> ScaleBatchNorm (or nothing) -> ReLU), spatial shape kept.

    Shapes: input ``(N, in_channels, S, *spatial)``, output ``(N, out_channels, S, *spatial)``.
    """

    def __init__(self, in_channels: int, out_channels: int, ndim: int, *, n_convs: int = 2, kernel_size: int = 3,
                 scale_depth: int = 1, scale_boundary: ScaleBoundary = "truncate", norm: bool = True) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_convs):
            layers.append(ScaleConv(channels, out_channels, ndim, kernel_size, scale_depth=scale_depth,
                                    bias=not norm, scale_boundary=scale_boundary))
            layers.append(ScaleBatchNorm(out_channels) if norm else nn.Identity())
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, S, *spatial)`` -> ``(N, C_out, S, *spatial)``."""
        return super().forward(x)
