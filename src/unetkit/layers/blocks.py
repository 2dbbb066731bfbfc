"""Convolution blocks: (conv -> norm -> ReLU) x n."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from unetkit.layers.factories import batch_norm_nd, conv_nd, instance_norm_nd

Norm = Literal["batch", "group", "instance"] | None
NORMS: tuple[str | None, ...] = (None, "batch", "group", "instance")


def group_count(channels: int, max_groups: int = 8) -> int:
    """Largest number of groups <= ``max_groups`` that divides ``channels``."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


def make_norm(norm: Norm, channels: int, ndim: int) -> nn.Module:
    """Normalisation layer for ``(N, C, *spatial)`` tensors.

    Args:
        norm: ``None`` (identity), ``"batch"``, ``"group"`` (up to 8 groups) or ``"instance"``.
        channels: number of channels C.
        ndim: spatial dimensionality (2 or 3).
    """
    if norm is None or norm == "none":
        return nn.Identity()
    if norm == "batch":
        return batch_norm_nd(ndim)(channels)
    if norm == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if norm == "instance":
        return instance_norm_nd(ndim)(channels, affine=True)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class ConvBlock(nn.Sequential):
    """``n_convs`` times (k^d convolution -> norm -> ReLU).

    With ``padding="valid"`` every convolution shrinks each spatial axis by ``kernel_size - 1``;
    with ``"same"`` the shape is kept (zero padding). Input ``(N, in_channels, *spatial)``,
    output ``(N, out_channels, *spatial')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int,
        *,
        n_convs: int = 2,
        kernel_size: int = 3,
        padding: Literal["valid", "same"] = "valid",
        norm: Norm = None,
    ) -> None:
        conv = conv_nd(ndim)
        pad = 0 if padding == "valid" else kernel_size // 2
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_convs):
            layers.append(
                conv(channels, out_channels, kernel_size, padding=pad, bias=norm is None or norm == "none")
            )
            layers.append(make_norm(norm, out_channels, ndim))
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 (documented on the class)
        return super().forward(x)
