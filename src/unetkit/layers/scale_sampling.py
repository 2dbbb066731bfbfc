"""Sub- and upsampling of lifted features ``(N, C, S, *spatial)``, scale by scale.

Upsampling U_f keeps the lattice values: ``output[f i] = input[i]`` on every spatial axis, so
D_f U_f = identity exactly (D_f: keep every f-th sample starting at 0). ``"nearest"`` repeats each
sample f times; ``"linear"`` interpolates linearly between ``input[i]`` and ``input[i + 1]`` (bi- /
trilinear, separable), replicating the last sample past the end. Both act on the spatial axes
only and treat every scale alike (the dilation of each scale is unchanged). Shifting the input by
t shifts the output by f t exactly (away from the far border, where the last sample is replicated).

Subsampling by 2 (stride 2 on the even lattice, ``output[i]`` centred on ``input[2 i]``):

* ``"strided"``: a stride-2 :class:`~unetkit.layers.scale_conv.ScaleConv`, D_2 (F * h). Exactly
  equivariant: shifts by multiples of 2 and the scale action (D_2 commutes with it), up to the
  zero padding at the border.
* ``"quadratic"``: quadratic-dilation pooling (paper appendix B): at scale k a morphological
  dilation max_y F(k, x + y) - |y|^2 / (4 t 4^k) over the window |y_i| <= 2^k, then D_2. Shift
  equivariant for shifts by multiples of 2; scale equivariant only in the continuous setting (the
  discrete window at scale k+1 has odd offsets that D_2 of scale k never sees): approximate.
* ``"maxpool"``: per-scale max pooling of size 2^k (window ``[2 i, 2 i + 2^k - 1]`` per axis; plain
  subsampling at scale 0, the usual 2x2 max pooling at scale 1), stride 2. Shift equivariant for
  shifts by multiples of 2; scale equivariance approximate, as for ``"quadratic"``.

Max-type windows pad with -inf (outside pixels never win), so all three keep the ``'same'`` size
rule: ``spatial -> ceil(spatial / 2)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unetkit.layers.factories import max_pool_nd
from unetkit.layers.scale_conv import ScaleBatchNorm, ScaleBoundary, ScaleConv
from unetkit.layers.scale_layout import SCALE_AXIS, check_lifted

UpsampleMode = Literal["nearest", "linear"]
Subsampling = Literal["strided", "quadratic", "maxpool"]
SUBSAMPLINGS: tuple[str, ...] = ("strided", "quadratic", "maxpool")


def lattice_upsample(x: Tensor, factor: int, mode: UpsampleMode, ndim: int) -> Tensor:
    """Upsample the trailing ``ndim`` axes of ``x`` by ``factor`` with ``output[f i] = input[i]``.

    Works on images ``(N, C, *spatial)`` and lifted features ``(N, C, S, *spatial)`` alike (every
    leading axis is left as it is). Output spatial shape: ``factor * spatial``.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    if mode not in ("nearest", "linear"):
        raise ValueError(f"upsampling mode must be 'nearest' or 'linear', got {mode!r}")
    if factor == 1:
        return x
    for axis in range(x.dim() - ndim, x.dim()):
        if mode == "nearest":
            x = x.repeat_interleave(factor, dim=axis)
            continue
        n = x.shape[axis]
        nxt = torch.cat([x.narrow(axis, 1, n - 1), x.narrow(axis, n - 1, 1)], dim=axis)  # x[i + 1], last repeated
        # phase r = 0 is x itself (not a weighted sum), so output[f i] = input[i] holds bit for bit
        phases = [x] + [x + (nxt - x) * (r / factor) for r in range(1, factor)]
        x = torch.stack(phases, dim=axis + 1).flatten(axis, axis + 1)
    return x


class ScaleUpsample(nn.Module):
    """Per-scale upsampling by ``factor`` that keeps the lattice values (see the module docstring).

    Shapes: ``(N, C, S, *spatial)`` -> ``(N, C, S, *factor * spatial)`` (or images
    ``(N, C, *spatial)`` -> ``(N, C, *factor * spatial)``; only the trailing ``ndim`` axes change).
    """

    def __init__(self, ndim: int, factor: int = 2, mode: UpsampleMode = "linear") -> None:
        super().__init__()
        if mode not in ("nearest", "linear"):
            raise ValueError(f"upsampling mode must be 'nearest' or 'linear', got {mode!r}")
        self.ndim, self.factor, self.mode = ndim, factor, mode

    def forward(self, x: Tensor) -> Tensor:
        """Upsample the trailing ``ndim`` axes."""
        return lattice_upsample(x, self.factor, self.mode, self.ndim)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, factor={self.factor}, mode={self.mode!r}"


def _subsample(x: Tensor, ndim: int) -> Tensor:
    """Keep the even lattice of the trailing ``ndim`` axes: ``x[..., ::2, ::2]``."""
    return x[(..., *([slice(None, None, 2)] * ndim))]


class QuadraticDilationPool(nn.Module):
    """Quadratic-dilation pooling, stride 2 (paper appendix B; see the module docstring).

    At scale k: ``max_{|y_i| <= 2^k} F(k, x + y) - |y|^2 / (4 t 4^k)``, computed separably (the
    quadratic structuring function is a sum over axes), then subsampled on the even lattice.

    Shapes: ``(N, C, S, *spatial)`` -> ``(N, C, S, *ceil(spatial / 2))``.
    """

    def __init__(self, ndim: int, t: float = 0.5) -> None:
        super().__init__()
        if t <= 0:
            raise ValueError(f"t must be > 0, got {t!r}")
        self.ndim, self.t = ndim, t

    def _dilate(self, x: Tensor, k: int) -> Tensor:
        r = 2**k
        for axis in range(x.dim() - self.ndim, x.dim()):
            n = x.shape[axis]
            pad_shape = list(x.shape)
            pad_shape[axis] = r
            ninf = x.new_full(pad_shape, float("-inf"))
            padded = torch.cat([ninf, x, ninf], dim=axis)
            out = None
            for y in range(-r, r + 1):
                term = padded.narrow(axis, r + y, n) - (y * y) / (4 * self.t * 4**k)
                out = term if out is None else torch.maximum(out, term)
            assert out is not None
            x = out
        return x

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, S, *spatial)`` -> ``(N, C, S, *ceil(spatial / 2))``."""
        check_lifted(x, self.ndim)
        levels = [_subsample(self._dilate(x.select(SCALE_AXIS, k), k), self.ndim) for k in range(x.shape[SCALE_AXIS])]
        return torch.stack(levels, dim=SCALE_AXIS)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, t={self.t}"


class ScaleMaxPool(nn.Module):
    """Per-scale max pooling of size 2^k at scale k, stride 2 (window ``[2 i, 2 i + 2^k - 1]``).

    Shapes: ``(N, C, S, *spatial)`` -> ``(N, C, S, *ceil(spatial / 2))``.
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, S, *spatial)`` -> ``(N, C, S, *ceil(spatial / 2))``."""
        check_lifted(x, self.ndim)
        levels = []
        for k in range(x.shape[SCALE_AXIS]):
            level = x.select(SCALE_AXIS, k)
            size = 2**k
            if size == 1:
                levels.append(_subsample(level, self.ndim))
                continue
            # pad the far end so that every even start has a full window (outside pixels never win)
            right = [(0, size - 2 + s % 2) for s in level.shape[2:]]
            pad = [v for pair in reversed(right) for v in pair]
            padded = F.pad(level, pad, value=float("-inf"))
            levels.append(max_pool_nd(self.ndim)(kernel_size=size, stride=2)(padded))
        return torch.stack(levels, dim=SCALE_AXIS)


def scale_subsampling(kind: Subsampling, channels: int, ndim: int, *, scale_depth: int = 1,
                      scale_boundary: ScaleBoundary = "truncate", norm: bool = True, quad_t: float = 0.5) -> nn.Module:
    """A subsampling layer by 2 for lifted features with ``channels`` channels (kept).

    ``"strided"``: stride-2 3^d ScaleConv -> ScaleBatchNorm (if ``norm``) -> ReLU; ``"quadratic"``:
    :class:`QuadraticDilationPool`; ``"maxpool"``: :class:`ScaleMaxPool`.
    Shapes: ``(N, C, S, *spatial)`` -> ``(N, C, S, *ceil(spatial / 2))``.
    """
    if kind == "strided":
        return nn.Sequential(
            ScaleConv(channels, channels, ndim, 3, scale_depth=scale_depth, stride=2, bias=not norm,
                      scale_boundary=scale_boundary),
            ScaleBatchNorm(channels) if norm else nn.Identity(),
            nn.ReLU(inplace=True),
        )
    if kind == "quadratic":
        return QuadraticDilationPool(ndim, quad_t)
    if kind == "maxpool":
        return ScaleMaxPool(ndim)
    raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {kind!r}")


def subsampling_reach(kind: Subsampling, scales: int) -> int:
    """Context per side (pixels at the layer's input resolution) of a :func:`scale_subsampling` layer."""
    if kind == "strided":
        return 2 ** (scales - 1)
    if kind == "quadratic":
        return 2 ** (scales - 1)
    return 2 ** (scales - 1) - 1
