"""Scale-space layers (SEU-Net, SResNet): one import point for the scale-equivariant building blocks.

Layout: lifted features are ``(N, C, S, *spatial)`` (batch, channels, scales k = 0 finest ..
S-1 coarsest, then ``[D,] H, W``); see :mod:`unetkit.layers.scale_layout`. The pieces:

* :class:`GaussianLift` (:mod:`~unetkit.layers.scale_lift`): images -> Gaussian scale space.
* :class:`ScaleConv`, :class:`ScaleBatchNorm`, :class:`ScaleConvBlock`
  (:mod:`~unetkit.layers.scale_conv`): the scale cross-correlation, batch norm shared over scales.
* :class:`ScaleUpsample`, :func:`lattice_upsample`, :class:`QuadraticDilationPool`,
  :class:`ScaleMaxPool`, :func:`scale_subsampling` (:mod:`~unetkit.layers.scale_sampling`).
* :class:`ScaleProjection`, :class:`ScaleDropout` (:mod:`~unetkit.layers.scale_projection`).

Equivariance (interior pixels, away from padding): every layer is exactly equivariant to
integer shifts (stride-2 layers: shifts by multiples of 2, the output shifting by half;
upsampling by f: the output shifting by f times). For the scale action
(R F)(k, x) = F(k + 1, 2 x): ScaleConv (within the truncated range), batch norm, ReLU and the
strided subsampling are exact; lifting is exact only for band-limited images (up to the
anti-aliasing blur sigma_base * sqrt(3)); quadratic / max pooling, upsampling and the projection
are approximate.
"""

from unetkit.layers.scale_conv import (
    ScaleBatchNorm,
    ScaleBoundary,
    ScaleConv,
    ScaleConvBlock,
)
from unetkit.layers.scale_layout import SCALE_AXIS, check_lifted
from unetkit.layers.scale_lift import (
    GaussianLift,
    LiftPadding,
    gaussian_blur,
    gaussian_kernel1d,
    gaussian_sigmas,
)
from unetkit.layers.scale_projection import Projection, ScaleDropout, ScaleProjection
from unetkit.layers.scale_sampling import (
    SUBSAMPLINGS,
    QuadraticDilationPool,
    ScaleMaxPool,
    ScaleUpsample,
    Subsampling,
    UpsampleMode,
    lattice_upsample,
    scale_subsampling,
    subsampling_reach,
)

__all__ = [
    "SCALE_AXIS", "SUBSAMPLINGS", "GaussianLift", "LiftPadding", "Projection", "QuadraticDilationPool",
    "ScaleBatchNorm", "ScaleBoundary", "ScaleConv", "ScaleConvBlock", "ScaleDropout", "ScaleMaxPool",
    "ScaleProjection", "ScaleUpsample", "Subsampling", "UpsampleMode", "check_lifted", "gaussian_blur",
    "gaussian_kernel1d", "gaussian_sigmas", "lattice_upsample", "scale_subsampling", "subsampling_reach",
]
