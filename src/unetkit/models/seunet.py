"""Scale-equivariant networks: the SEU-Net (Sangalli et al. 2022) and its SResNet baseline.

Both lift the image to a Gaussian scale space ``(N, C, S, *spatial)``
(:class:`~unetkit.layers.scale.GaussianLift`), work on it with scale cross-correlations and
project back to ``(N, C_out, *spatial)``; see :mod:`unetkit.layers.scale` for the layers and
their equivariance.

Sizes and tiling (the :class:`~unetkit.models.protocol.Tileable` protocol): padding is
``'same'`` (output shape = input shape) and the size rules are those of a same-padding U-Net
with ``depth`` subsamplings by 2 (:class:`~unetkit.models.geometry.UNetGeometry`): valid sizes are
multiples of 2^depth on every axis, and ``shift_period`` = 2^depth (lifting and scale
convolutions commute with every integer shift, each stride-2 step halves the shifts that still
commute). Tiling is never exact: the lifting's padding and the zero padding of the dilated
convolutions depend on where a tile's border is. ``halo`` is an upper bound of the receptive
field radius (every scale convolution counted at the coarsest scale's dilation 2^(S-1)), so
halo-crop tiling discards all the pixels whose context crosses a tile border; it grows as
2^(S-1) * 2^depth, so deep, many-scale models need large tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from unetkit.layers.factories import conv_nd
from unetkit.layers.scale import (
    SUBSAMPLINGS,
    GaussianLift,
    LiftPadding,
    Projection,
    ScaleBatchNorm,
    ScaleBoundary,
    ScaleConv,
    ScaleConvBlock,
    ScaleDropout,
    ScaleProjection,
    ScaleUpsample,
    Subsampling,
    UpsampleMode,
    lattice_upsample,
    scale_subsampling,
    subsampling_reach,
)
from unetkit.layers.scale_layout import check_image
from unetkit.models.geometry import SamePaddingSizes, UNetGeometry
from unetkit.models.protocol import CONV_WORKSPACE_FACTOR
from unetkit.models.registry import ModelConfig

TILING_INEXACT_REASON = (
    "Gaussian lifting pads the image (reflect) and the dilated scale convolutions zero-pad, with receptive "
    "fields of 2^(S-1) * 2^depth pixels, so outputs near a tile border depend on where the border is"
)


class ScaleNetConfig(ModelConfig):
    """Keys shared by the scale-equivariant models (see :class:`SEUNet` for their meaning)."""

    depth: int = Field(3, ge=1, le=6)
    base_features: int = Field(16, ge=1, le=1024)
    growth: int = Field(2, ge=1, le=4)
    scales: int = Field(4, ge=1, le=6)
    scale_depth: int = Field(1, ge=1, le=6)
    scale_boundary: Literal["truncate", "repeat"] = "truncate"
    scale_dropout: float = Field(0.0, ge=0, lt=1)
    sigma_base: float = Field(0.5, gt=0, le=4)
    lift_padding: Literal["reflect", "zeros"] = "reflect"
    norm: Literal["batch", "none"] = "batch"


class SEUNetConfig(ScaleNetConfig):
    """Config section of :class:`SEUNet` (``model.name: seunet``); keys are its constructor arguments."""

    name: Literal["seunet"] = "seunet"
    subsampling: Literal["strided", "quadratic", "maxpool"] = "strided"
    upsampling: Literal["linear", "nearest"] = "linear"
    projection: Literal["max", "mean"] = "max"

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"depth": 1, "base_features": 4, "scales": 2},
        {"depth": 1, "base_features": 3, "scales": 2, "scale_depth": 2, "subsampling": "quadratic",
         "upsampling": "nearest", "scale_dropout": 0.25, "out_channels": 3},
        {"depth": 1, "base_features": 2, "scales": 2, "subsampling": "maxpool", "scale_boundary": "repeat",
         "scale_depth": 2, "projection": "mean", "lift_padding": "zeros", "norm": "none"},
        # 3-D with one scale: the contract test's 3-D image (19, 45, 50) is too small for a multi-tile
        # plan with the halo of two scales (24 px); tests/models/test_seunet.py covers 3-D with S > 1
        {"ndim": 3, "depth": 1, "base_features": 2, "scales": 1, "in_channels": 2},
    )


class SResNetConfig(ScaleNetConfig):
    """Config section of :class:`SResNet` (``model.name: sresnet``); keys are its constructor arguments."""

    name: Literal["sresnet"] = "sresnet"
    upsampling: Literal["linear", "nearest"] = "linear"

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"depth": 1, "base_features": 4, "scales": 2},
        {"ndim": 3, "depth": 1, "base_features": 2, "scales": 2, "scale_depth": 2, "out_channels": 3},
    )


class _ScaleNet(SamePaddingSizes, nn.Module):
    """Size arithmetic and the Tileable members shared by :class:`SEUNet` and :class:`SResNet`
    (the size members from :class:`~unetkit.models.geometry.SamePaddingSizes`: inputs are multiples
    of 2^depth, output shape = input shape, shift period 2^depth).

    Subclasses set ``geometry`` (a same-padding :class:`UNetGeometry`), ``ndim``, ``in_channels``,
    ``out_channels``, ``scales`` and implement :meth:`_halo_terms` and :meth:`_level_channels`.
    """

    geometry: UNetGeometry
    ndim: int
    in_channels: int
    out_channels: int
    scales: int
    TILING_INEXACT_REASON = TILING_INEXACT_REASON

    def _halo_terms(self) -> list[tuple[int, int]]:
        """``(level, reach)`` of every layer on the longest path: reach pixels at resolution 2^-level."""
        raise NotImplementedError

    def _level_channels(self) -> list[float]:
        """Channels (per scale) alive at the same time at each level 0..depth, for the memory estimate."""
        raise NotImplementedError

    def _halo_radius(self) -> int:
        """Upper bound of the receptive-field radius: sum of 2^level * reach over the path."""
        return sum(2**level * reach for level, reach in self._halo_terms())

    def activation_bytes(self, input_shape: Sequence[int], batch_size: int = 1) -> int:
        """Upper estimate of the activation memory (bytes, float32) of one inference batch: the input,
        the lifted input, and per level the channels kept alive times S scales, at the level's voxel
        count, times :data:`~unetkit.models.protocol.CONV_WORKSPACE_FACTOR`."""
        voxels = float(np.prod(tuple(int(s) for s in input_shape)))
        per_level = sum(c / 2.0 ** (self.ndim * i) for i, c in enumerate(self._level_channels()))
        channels = self.in_channels * (1 + self.scales) + self.scales * per_level + self.out_channels
        return int(CONV_WORKSPACE_FACTOR * 4 * batch_size * voxels * channels)

    def _check_input(self, x: Tensor) -> None:
        check_image(x, self.ndim, channels=self.in_channels)
        self.geometry.output_shape(x.shape[2:])  # raises with the nearest valid shapes


class SEUNet(_ScaleNet):
    """Scale-equivariant U-Net (Sangalli, Blusseau, Velasco-Forero, Angulo 2022).

    Gaussian lifting to S scales, then a U-Net on lifted features: encoder level i applies a
    :class:`~unetkit.layers.scale.ScaleConvBlock` (2 x 3^d ScaleConv -> batch norm shared over
    scales -> ReLU) with ``base_features * growth**i`` channels and a subsampling by 2
    (``subsampling``); the bottleneck has ``base_features * growth**depth`` channels; each decoder
    level upsamples per scale keeping the even-lattice values (``upsampling``), concatenates the
    encoder features of its level and applies a block. Then scale dropout (``scale_dropout``, kept
    units rescaled by 1/(1-p)), a 1x1 ScaleConv to ``out_channels`` and the projection over
    scales (max by default). Raw logits, no activation.

    Args:
        in_channels: input channels C_in.
        out_channels: output channels C_out (classes).
        ndim: 2 or 3 spatial axes.
        depth: number of subsamplings by 2 (>= 1).
        base_features: channels of the first level.
        growth: channel multiplier per level.
        scales: S, scales of the lifting (k = 0..S-1, sigma_k = sigma_base sqrt(4^k - 1)).
        scale_depth: J, scales one ScaleConv reads.
        scale_boundary: ``"truncate"`` or ``"repeat"`` for the scales past S-1 when J > 1.
        scale_dropout: p of the scale dropout before the head.
        sigma_base: sigma_base of the lifting.
        lift_padding: ``"reflect"`` or ``"zeros"`` padding of the lifting.
        norm: ``"batch"`` (statistics shared over scales) or ``"none"``.
        subsampling: ``"strided"`` (stride-2 ScaleConv, default, exactly equivariant),
            ``"quadratic"`` (quadratic-dilation pooling) or ``"maxpool"`` (max pooling of size 2^k).
        upsampling: ``"linear"`` (bi-/trilinear, default) or ``"nearest"``; both with D_2 U_2 = id.
        projection: ``"max"`` (default) or ``"mean"`` over scales.

    Shapes:
        input ``(N, C_in, [D,] H, W)`` with every spatial size a multiple of 2^depth, output
        ``(N, C_out, [D,] H, W)``; internally ``(N, C, S, *spatial)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        depth: int = 4,
        base_features: int = 16,
        growth: int = 2,
        scales: int = 4,
        scale_depth: int = 1,
        scale_boundary: ScaleBoundary = "truncate",
        scale_dropout: float = 0.0,
        sigma_base: float = 0.5,
        lift_padding: LiftPadding = "reflect",
        norm: Literal["batch", "none"] = "batch",
        subsampling: Subsampling = "strided",
        upsampling: UpsampleMode = "linear",
        projection: Projection = "max",
    ) -> None:
        super().__init__()
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ndim=ndim, depth=depth, base_features=base_features,
            growth=growth, scales=scales, scale_depth=scale_depth, scale_boundary=scale_boundary,
            scale_dropout=scale_dropout, sigma_base=sigma_base, lift_padding=lift_padding, norm=norm,
            subsampling=subsampling, upsampling=upsampling, projection=projection,
        )
        self.geometry = UNetGeometry(ndim, depth, (2,) * ndim, padding="same", label=type(self).__name__)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.depth, self.scales, self.subsampling, self.upsampling = depth, scales, subsampling, upsampling
        self.features = [base_features * growth**i for i in range(depth + 1)]
        layer: dict[str, Any] = {"scale_depth": scale_depth, "scale_boundary": scale_boundary, "norm": norm == "batch"}

        self.lift = GaussianLift(ndim, scales, sigma_base, padding=lift_padding)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = in_channels
        for f in self.features[:-1]:
            self.encoders.append(ScaleConvBlock(channels, f, ndim, **layer))
            self.downs.append(scale_subsampling(subsampling, f, ndim, **layer))
            channels = f
        self.bottleneck = ScaleConvBlock(channels, self.features[-1], ndim, **layer)
        self.up = ScaleUpsample(ndim, 2, upsampling)
        self.decoders = nn.ModuleList()
        channels = self.features[-1]
        for f in reversed(self.features[:-1]):
            self.decoders.append(ScaleConvBlock(channels + f, f, ndim, **layer))
            channels = f
        self.dropout = ScaleDropout(scale_dropout)
        self.head = ScaleConv(self.features[0], out_channels, ndim, kernel_size=1)
        self.projection = ScaleProjection(projection)

    def _halo_terms(self) -> list[tuple[int, int]]:
        conv = 2 * 2 ** (self.scales - 1)  # two 3^d ScaleConvs per block at the coarsest dilation
        terms = [(0, self.lift.radius)]
        terms += [(i, conv + subsampling_reach(self.subsampling, self.scales)) for i in range(self.depth)]
        terms += [(self.depth, conv)]
        terms += [(i + 1, 1) for i in range(self.depth)]  # upsampling: one sample of the coarser level
        terms += [(i, conv) for i in range(self.depth)]
        return terms

    def _level_channels(self) -> list[float]:
        f = self.features
        top = 2 * (f[0] + f[1]) + 2 * f[0]  # the widest decoder stage: upsampled + concatenation + 2 convs
        return [f[0] + top] + [float(c) for c in f[1:]]

    def lifted_features(self, x: Tensor) -> Tensor:
        """Per-scale logits before the projection: ``(N, C_in, *S)`` -> ``(N, C_out, S_scales, *S)``."""
        self._check_input(x)
        h = self.lift(x)
        skips: list[Tensor] = []
        for enc, down in zip(self.encoders, self.downs):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for dec, skip in zip(self.decoders, reversed(skips)):
            h = dec(torch.cat([skip, self.up(h)], dim=1))
        return self.head(self.dropout(h))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C_out, *S)``."""
        return self.projection(self.lifted_features(x))


class _ResidualScaleBlock(nn.Module):
    """Residual stage of :class:`SResNet`: stride-2 ScaleConv -> BN -> ReLU -> ScaleConv -> BN, plus a
    stride-2 1x1 ScaleConv shortcut, then ReLU. ``(N, C_in, S, *sp)`` -> ``(N, C_out, S, *ceil(sp / 2))``."""

    def __init__(self, in_channels: int, out_channels: int, ndim: int, *, scale_depth: int,
                 scale_boundary: ScaleBoundary, norm: bool) -> None:
        super().__init__()
        conv: dict[str, Any] = {"scale_depth": scale_depth, "scale_boundary": scale_boundary, "bias": not norm}
        self.main = nn.Sequential(
            ScaleConv(in_channels, out_channels, ndim, 3, stride=2, **conv),
            ScaleBatchNorm(out_channels) if norm else nn.Identity(),
            nn.ReLU(inplace=True),
            ScaleConv(out_channels, out_channels, ndim, 3, **conv),
            ScaleBatchNorm(out_channels) if norm else nn.Identity(),
        )
        self.shortcut = ScaleConv(in_channels, out_channels, ndim, 1, stride=2, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, S, *sp)`` -> ``(N, C_out, S, *ceil(sp / 2))``."""
        return self.relu(self.main(x) + self.shortcut(x))


class SResNet(_ScaleNet):
    """Scale-equivariant residual network (DSS, Worrall & Welling 2019), the SEU-Net paper's baseline.

    Gaussian lifting, a ScaleConvBlock stem (one conv) with ``base_features`` channels, ``depth``
    residual stages that each halve the resolution (stride-2 ScaleConvs) and multiply the
    channels by ``growth``, scale dropout, the *mean* projection over scales, a 1x1 convolution
    to ``out_channels`` and ONE upsampling by 2^depth after the projection (``output[2^depth i] =
    input[i]``): no upsampling or skip connection inside the equivariant pipeline.

    Args: as :class:`SEUNet` (without ``subsampling`` and ``projection``).

    Shapes: input ``(N, C_in, [D,] H, W)`` with every spatial size a multiple of 2^depth, output
    ``(N, C_out, [D,] H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        depth: int = 3,
        base_features: int = 16,
        growth: int = 2,
        scales: int = 4,
        scale_depth: int = 1,
        scale_boundary: ScaleBoundary = "truncate",
        scale_dropout: float = 0.0,
        sigma_base: float = 0.5,
        lift_padding: LiftPadding = "reflect",
        norm: Literal["batch", "none"] = "batch",
        upsampling: UpsampleMode = "linear",
    ) -> None:
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        if upsampling not in ("linear", "nearest"):
            raise ValueError(f"upsampling must be 'linear' or 'nearest', got {upsampling!r}")
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ndim=ndim, depth=depth, base_features=base_features,
            growth=growth, scales=scales, scale_depth=scale_depth, scale_boundary=scale_boundary,
            scale_dropout=scale_dropout, sigma_base=sigma_base, lift_padding=lift_padding, norm=norm,
            upsampling=upsampling,
        )
        self.geometry = UNetGeometry(ndim, depth, (2,) * ndim, padding="same", label=type(self).__name__)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.depth, self.scales, self.upsampling = depth, scales, upsampling
        self.features = [base_features * growth**i for i in range(depth + 1)]
        layer: dict[str, Any] = {"scale_depth": scale_depth, "scale_boundary": scale_boundary, "norm": norm == "batch"}

        self.lift = GaussianLift(ndim, scales, sigma_base, padding=lift_padding)
        self.stem = ScaleConvBlock(in_channels, self.features[0], ndim, n_convs=1, **layer)
        self.stages = nn.Sequential(*(
            _ResidualScaleBlock(a, b, ndim, **layer) for a, b in zip(self.features[:-1], self.features[1:])
        ))
        self.dropout = ScaleDropout(scale_dropout)
        self.projection = ScaleProjection("mean")
        self.head = conv_nd(ndim)(self.features[-1], out_channels, kernel_size=1)

    def _halo_terms(self) -> list[tuple[int, int]]:
        conv = 2 ** (self.scales - 1)
        terms = [(0, self.lift.radius), (0, conv)]
        terms += [(i, conv) for i in range(self.depth)] + [(i + 1, conv) for i in range(self.depth)]
        terms += [(self.depth, 1)]  # the final upsampling: one sample of the coarsest level
        return terms

    def _level_channels(self) -> list[float]:
        f = self.features
        return [2.0 * f[0]] + [3.0 * c for c in f[1:]]

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C_out, *S)``."""
        self._check_input(x)
        h = self.stages(self.stem(self.lift(x)))
        h = self.head(self.projection(self.dropout(h)))
        return lattice_upsample(h, 2**self.depth, self.upsampling, self.ndim)

