"""Gaussian scale-space lifting: images ``(N, C, *spatial)`` -> lifted features ``(N, C, S, *spatial)``.

F(k, x) = (G_{sigma_k} * f)(x) with sigma_0 = 0 (identity) and
sigma_k = sigma_base * sqrt(4^k - 1) (base gamma = 2; the semigroup property of Gaussians:
sigma_{k+1}^2 = 4 sigma_k^2 + 3 sigma_base^2, i.e. one level coarser is the 2x-downscaled level
plus a fixed anti-aliasing blur of sigma_base * sqrt(3)).

Kernels are separable, truncated at ``truncate * sigma_k`` pixels (radius
``ceil(truncate * sigma_k)``, default 4 sigma) and renormalised to sum 1 after truncation.

Padding: ``"reflect"`` (default) mirrors the image at its border without repeating the edge
pixel (numpy's ``reflect``), for any kernel radius (also radii larger than the image, by
folding repeatedly). ``"zeros"`` pads with 0, which darkens coarse scales near the border.
Neither is shift equivariant near the border: shifting the image moves the border relative to
its content, so equivariance holds exactly only at pixels farther than the radius
(:attr:`GaussianLift.radius`) from the border. Reflect keeps the image statistics near the border
(no artificial edge), so it is the better choice for segmentation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from unetkit.layers.factories import conv_fn_nd
from unetkit.layers.scale_layout import check_image

LiftPadding = Literal["reflect", "zeros"]


def gaussian_sigmas(scales: int, sigma_base: float = 0.5) -> list[float]:
    """Widths sigma_k = sigma_base * sqrt(4^k - 1) for k = 0..scales-1 (sigma_0 = 0)."""
    if scales < 1:
        raise ValueError(f"scales must be >= 1, got {scales!r}")
    if sigma_base <= 0:
        raise ValueError(f"sigma_base must be > 0, got {sigma_base!r}")
    return [sigma_base * math.sqrt(4.0**k - 1.0) for k in range(scales)]


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> Tensor:
    """Normalised 1-D Gaussian of width ``sigma``, radius ``ceil(truncate * sigma)``; ``[1.]`` for sigma 0.

    Returns a float64 tensor of length ``2 * radius + 1``.
    """
    radius = math.ceil(truncate * sigma)
    if sigma == 0 or radius == 0:
        return torch.ones(1, dtype=torch.float64)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def mirror_indices(n: int, pad: int, device: torch.device | None = None) -> Tensor:
    """Indices ``-pad .. n + pad - 1`` folded into ``0 .. n-1`` by reflection without edge repeat
    (numpy ``reflect``), valid for any ``pad`` (folds repeatedly when ``pad >= n``)."""
    idx = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def pad_axis(x: Tensor, axis: int, pad: int, mode: LiftPadding) -> Tensor:
    """Pad ``x`` by ``pad`` on both sides of ``axis`` with ``mode`` (``"reflect"`` or ``"zeros"``)."""
    if pad == 0:
        return x
    if mode == "reflect":
        return x.index_select(axis, mirror_indices(x.shape[axis], pad, x.device))
    shape = list(x.shape)
    shape[axis] = pad
    z = x.new_zeros(shape)
    return torch.cat([z, x, z], dim=axis)


def gaussian_blur(x: Tensor, sigma: float, ndim: int, *, truncate: float = 4.0,
                  padding: LiftPadding = "reflect") -> Tensor:
    """Separable Gaussian blur of the trailing ``ndim`` axes of ``x`` ``(N, C, *spatial)``; same shape."""
    kernel = gaussian_kernel1d(sigma, truncate).to(dtype=x.dtype, device=x.device)
    radius = (kernel.numel() - 1) // 2
    if radius == 0:
        return x
    c = x.shape[1]
    conv = conv_fn_nd(ndim)
    for axis in range(2, 2 + ndim):
        shape = [1] * ndim
        shape[axis - 2] = kernel.numel()
        w = kernel.reshape(1, 1, *shape).expand(c, 1, *shape)
        x = conv(pad_axis(x, axis, radius, padding), w, groups=c)
    return x


class GaussianLift(nn.Module):
    """Lift images to a Gaussian scale space.

    Args:
        ndim: spatial axes (2 or 3).
        scales: number of scales S (k = 0..S-1).
        sigma_base: sigma_base of sigma_k = sigma_base * sqrt(4^k - 1).
        truncate: kernel radius in units of sigma (``ceil(truncate * sigma_k)`` pixels).
        padding: ``"reflect"`` (default) or ``"zeros"``; see the module docstring.

    Shapes:
        input ``(N, C, *spatial)``, output ``(N, C, S, *spatial)`` with output[:, :, k] the image
        blurred by sigma_k (output[:, :, 0] is the input itself).
    """

    def __init__(self, ndim: int, scales: int = 4, sigma_base: float = 0.5, truncate: float = 4.0,
                 padding: LiftPadding = "reflect") -> None:
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' or 'zeros', got {padding!r}")
        self.ndim = ndim
        self.scales = scales
        self.sigmas = gaussian_sigmas(scales, sigma_base)
        self.truncate = truncate
        self.padding: LiftPadding = padding

    @property
    def radius(self) -> int:
        """Kernel radius of the coarsest scale in pixels: the context one output pixel depends on."""
        return math.ceil(self.truncate * self.sigmas[-1])

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, *spatial)`` -> ``(N, C, S, *spatial)``."""
        check_image(x, self.ndim)
        levels = [gaussian_blur(x, s, self.ndim, truncate=self.truncate, padding=self.padding) for s in self.sigmas]
        return torch.stack(levels, dim=2)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, scales={self.scales}, sigmas={[round(s, 3) for s in self.sigmas]}, padding={self.padding!r}"
