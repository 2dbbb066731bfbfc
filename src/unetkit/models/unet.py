"""The U-Net: 2-D/3-D, valid or same padding, nearest or transposed upsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from unetkit.errors import ShapeError
from unetkit.layers import ConvBlock, Downsample, Upsample, center_crop_to, conv_nd
from unetkit.layers.blocks import NORMS, Norm
from unetkit.models.geometry import GeometrySizes, UNetGeometry, as_tuple
from unetkit.models.protocol import CONV_WORKSPACE_FACTOR
from unetkit.models.registry import ModelConfig

PER_TILE_STATISTICS = {"group": "group normalisation", "instance": "instance normalisation"}
"""Norms that compute statistics over each input (each tile), so tiling is not exact with them."""


class UNetConfig(ModelConfig):
    """Config section of :class:`UNet` (``model.name: unet``); keys are its constructor arguments."""

    name: Literal["unet"] = "unet"
    depth: int = Field(3, ge=1, le=8)
    factor: int | list[int] = 2
    base_features: int = Field(16, ge=1, le=1024)
    growth: int = Field(2, ge=1, le=4)
    convs_per_level: int = Field(2, ge=1, le=8)
    padding: Literal["valid", "same"] = "valid"
    upsampling: Literal["nearest", "transposed"] = "nearest"
    norm: Literal["batch", "group", "instance", "none"] | None = "batch"

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"depth": 2, "base_features": 4, "norm": "batch"},
        {"depth": 1, "base_features": 3, "norm": "none", "upsampling": "transposed", "out_channels": 3},
        {"ndim": 3, "depth": 2, "factor": [1, 2, 2], "base_features": 3, "norm": "group", "in_channels": 2},
        {"depth": 2, "base_features": 4, "padding": "same", "norm": "instance"},
    )

    def kwargs(self) -> dict[str, Any]:
        out = super().kwargs()
        if out["norm"] == "none":
            out["norm"] = None
        return out


class UNet(GeometrySizes, nn.Module):
    """U-Net (Ronneberger et al. 2015) with exact size arithmetic.

    Encoder level i (i = 0..depth-1) applies a conv block with ``base_features * growth**i``
    channels, then max pooling by ``factor`` (kernel = stride). The bottleneck has
    ``base_features * growth**depth`` channels. Each decoder level upsamples (nearest, or a
    transposed conv with kernel = stride = factor and half the channels), concatenates the
    centre-cropped encoder features of the same level and applies a conv block. A final 1x1
    convolution maps to ``out_channels`` (raw logits / embeddings; no activation).

    Args:
        in_channels: input channels C_in.
        out_channels: output channels C_out.
        ndim: 2 or 3 spatial axes.
        depth: number of pooling steps l >= 1.
        factor: pooling factor f, an int or one per spatial axis (anisotropic, e.g. ``(1, 2, 2)``).
        base_features: channels of the first level.
        growth: channel multiplier per level.
        convs_per_level: 3x3 convolutions per conv block.
        padding: ``"valid"`` (no padding; output smaller than input; exactly shift-equivariant
            for shifts by multiples of f^l) or ``"same"`` (zero padding; output = input).
        upsampling: ``"nearest"`` ("fixed") or ``"transposed"`` ("learnt").
        norm: ``None``, ``"batch"``, ``"group"`` or ``"instance"``.

    Shapes:
        input ``(N, C_in, [D,] H, W)`` with a valid spatial shape (see :meth:`valid_input_shapes`),
        output ``(N, C_out, *output_shape(spatial))``.

    Implements :class:`unetkit.models.protocol.Tileable`: tiled prediction equals whole-image
    prediction (``tiling_exact``) for valid padding without per-tile statistics (``norm`` None or
    ``"batch"``, in eval mode).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        depth: int = 4,
        factor: int | Sequence[int] = 2,
        base_features: int = 16,
        growth: int = 2,
        convs_per_level: int = 2,
        padding: Literal["valid", "same"] = "valid",
        upsampling: Literal["nearest", "transposed"] = "nearest",
        norm: Norm = None,
    ) -> None:
        super().__init__()
        if norm == "none":
            norm = None
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if upsampling not in ("nearest", "transposed"):
            raise ValueError(f"upsampling must be 'nearest' or 'transposed', got {upsampling!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("base_features", base_features), ("growth", growth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        fac = as_tuple(factor, ndim, "factor")
        self.geometry = UNetGeometry(ndim, depth, fac, convs_per_level, 3, padding)
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ndim=ndim, depth=depth,
            factor=list(fac) if not isinstance(factor, int) else factor, base_features=base_features,
            growth=growth, convs_per_level=convs_per_level, padding=padding, upsampling=upsampling, norm=norm,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ndim = ndim
        self.depth = depth
        self.norm = norm
        features = [base_features * growth**i for i in range(depth + 1)]
        self.features = features
        block = dict(n_convs=convs_per_level, padding=padding, norm=norm)

        self.encoders = nn.ModuleList()
        channels = in_channels
        for i in range(depth):
            self.encoders.append(ConvBlock(channels, features[i], ndim, **block))
            channels = features[i]
        self.pools = nn.ModuleList(Downsample(fac) for _ in range(depth))
        self.bottleneck = ConvBlock(features[depth - 1], features[depth], ndim, **block)

        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        channels = features[depth]
        for i in reversed(range(depth)):
            up = Upsample(fac, upsampling, channels, features[i])
            self.upsamplers.append(up)
            self.decoders.append(ConvBlock(up.out_channels + features[i], features[i], ndim, **block))
            channels = features[i]
        self.head = conv_nd(ndim)(features[0], out_channels, kernel_size=1)

    # ------------------------------------------------------------------ size arithmetic
    @property
    def padding(self) -> str:
        return self.geometry.padding

    @property
    def halo(self) -> tuple[int, ...]:
        """Context per side, ``(input - output) / 2`` per axis (see :class:`UNetGeometry`)."""
        return self.geometry.halo

    # ------------------------------------------------------------------ tiling (Tileable protocol)
    @property
    def tiling_inexact_reason(self) -> str:
        """Why stitched tiles differ from the whole-image prediction; ``""`` when they do not."""
        reasons = []
        if self.padding == "same":
            reasons.append("zero padding makes the network location-aware near tile borders")
        if self.norm in PER_TILE_STATISTICS:
            reasons.append(f"{PER_TILE_STATISTICS[self.norm]} computes statistics per tile")
        return "; ".join(reasons)

    @property
    def tiling_exact(self) -> bool:
        """Valid padding and no per-tile statistics (batch norm uses running statistics in eval mode)."""
        return not self.tiling_inexact_reason

    def activation_bytes(self, input_shape: Sequence[int], batch_size: int = 1) -> int:
        """Upper estimate of the activation memory (bytes, float32) of one inference batch
        ``(batch_size, C_in, *input_shape)``.

        Counts the input, every skip connection kept alive, the bottleneck, and the working set of
        the widest decoder stage (upsampled features + concatenation + two conv outputs), all at
        the input's voxel count divided by the pooling factor per level, times
        :data:`~unetkit.models.protocol.CONV_WORKSPACE_FACTOR` for the convolution buffers
        (unfolded inputs, workspaces) that the tensors alone do not show.
        """
        voxels = float(np.prod(tuple(int(s) for s in input_shape)))
        pool = float(np.prod(self.geometry.factor))
        features = self.features
        skips = sum(f / pool**i for i, f in enumerate(features[:-1]))
        bottleneck = features[-1] / pool ** (len(features) - 1)
        top = 2 * (features[0] + features[1]) + 2 * features[0]
        channels = self.in_channels + skips + bottleneck + top + self.out_channels
        return int(CONV_WORKSPACE_FACTOR * 4 * batch_size * voxels * channels)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C_out, *output_shape(S))``."""
        if x.dim() != self.ndim + 2:
            raise ShapeError(
                f"expected a {self.ndim + 2}-D tensor (N, C, {'D, ' if self.ndim == 3 else ''}H, W), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ShapeError(f"expected {self.in_channels} input channels, got {x.shape[1]} (shape {tuple(x.shape)})")
        self.geometry.output_shape(x.shape[2:])  # raises with the nearest valid shapes
        skips: list[Tensor] = []
        for enc, pool in zip(self.encoders, self.pools):
            x = enc(x)
            skips.append(x)
            x = pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            x = up(x)
            x = dec(torch.cat([center_crop_to(skip, x), x], dim=1))
        return self.head(x)
