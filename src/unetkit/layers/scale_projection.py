"""Operations along the scale axis of lifted features ``(N, C, S, *spatial)``: projection back to
images and scale dropout.

Projection: P F(x) = max_k F(k, x) (``"max"``, the SEU-Net's) or the mean over k (``"mean"``,
the SResNet's). Exactly shift equivariant; scale equivariant only approximately: the action moves
every scale one index down and drops scale 0, while scale S-1 of the result has no counterpart, so
the projection of the acted-on features differs wherever the maximum (or the mean's term) sits at
the ends of the truncated range.

ScaleDropout(p): in training mode multiplies F(k, x, c) by a Bernoulli mask b(n, c, k) with
keep-probability 1 - p, one draw per sample, channel and scale, constant over space. With
``rescale=True`` (default, torch's ``nn.Dropout`` convention) kept units are multiplied by
1 / (1 - p), so the expectation is unchanged and eval mode is the identity; ``rescale=False``
reproduces the SEU-Net authors' code (no rescaling; eval mode is still the identity, so the
train-time expectation is (1 - p) F).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from unetkit.layers.scale_layout import SCALE_AXIS

Projection = Literal["max", "mean"]


class ScaleProjection(nn.Module):
    """Max or mean over the scale axis: ``(N, C, S, *spatial)`` -> ``(N, C, *spatial)``."""

    def __init__(self, mode: Projection = "max") -> None:
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"projection must be 'max' or 'mean', got {mode!r}")
        self.mode: Projection = mode

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, S, *spatial)`` -> ``(N, C, *spatial)``."""
        if self.mode == "max":
            return x.amax(dim=SCALE_AXIS)
        return x.mean(dim=SCALE_AXIS)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class ScaleDropout(nn.Module):
    """Drop whole (sample, channel, scale) feature maps with probability ``p`` (module docstring).

    Shapes: ``(N, C, S, *spatial)`` -> same shape; mask ``(N, C, S, 1, ..., 1)``.
    """

    def __init__(self, p: float = 0.0, rescale: bool = True) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"scale dropout p must be in [0, 1), got {p!r}")
        self.p, self.rescale = float(p), rescale

    def forward(self, x: Tensor) -> Tensor:
        """Masked ``x`` in training mode (rescaled by 1/(1-p) if ``rescale``); ``x`` itself in eval mode."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty(*x.shape[:3], *([1] * (x.dim() - 3)), dtype=x.dtype, device=x.device).bernoulli_(keep)
        if self.rescale:
            mask = mask / keep
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, rescale={self.rescale}"
