"""Dimension-agnostic building blocks shared by every model (scale-space layers: :mod:`unetkit.layers.scale`)."""

from unetkit.layers.blocks import ConvBlock, make_norm
from unetkit.layers.crop import center_crop, center_crop_to
from unetkit.layers.factories import conv_nd, max_pool_nd, transposed_conv_nd
from unetkit.layers.sampling import Downsample, Upsample
from unetkit.layers.scale import (
    GaussianLift,
    QuadraticDilationPool,
    ScaleBatchNorm,
    ScaleConv,
    ScaleConvBlock,
    ScaleDropout,
    ScaleMaxPool,
    ScaleProjection,
    ScaleUpsample,
)

__all__ = [
    "ConvBlock",
    "Downsample",
    "GaussianLift",
    "QuadraticDilationPool",
    "ScaleBatchNorm",
    "ScaleConv",
    "ScaleConvBlock",
    "ScaleDropout",
    "ScaleMaxPool",
    "ScaleProjection",
    "ScaleUpsample",
    "Upsample",
    "center_crop",
    "center_crop_to",
    "conv_nd",
    "make_norm",
    "max_pool_nd",
    "transposed_conv_nd",
]
