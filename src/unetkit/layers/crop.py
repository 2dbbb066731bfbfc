"""Centre cropping of ``(N, C, *spatial)`` tensors (skip connections of valid U-Nets)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def center_crop(x: Tensor, spatial_shape: Sequence[int]) -> Tensor:
    """Crop the trailing ``len(spatial_shape)`` axes of ``x`` to ``spatial_shape``, centred.

    The margin removed on each axis must be even (the U-Net arithmetic guarantees this for
    odd kernels); otherwise a ``ValueError`` is raised instead of silently shifting by half a
    pixel, which would break shift equivariance.
    """
    nd = len(spatial_shape)
    src = tuple(x.shape[-nd:])
    slices = []
    for axis, (have, want) in enumerate(zip(src, spatial_shape)):
        margin = have - want
        if margin < 0 or margin % 2:
            raise ValueError(
                f"cannot centre-crop spatial axis {axis} from {have} to {want}: "
                "the margin must be non-negative and even"
            )
        slices.append(slice(margin // 2, margin // 2 + want))
    return x[(..., *slices)]


def center_crop_to(x: Tensor, like: Tensor) -> Tensor:
    """Centre-crop ``x`` to the spatial shape of ``like`` (same number of spatial axes)."""
    nd = like.dim() - 2
    return center_crop(x, tuple(like.shape[-nd:]))
