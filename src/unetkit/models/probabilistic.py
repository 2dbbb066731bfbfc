"""Shared pieces of the probabilistic segmentation models (HPU-Net, probabilistic U-Net).

Spatial layout everywhere: tensors ``(N, C, *S)`` with ``S = ([D,] H, W)``; labels ``(N, *S)``
int64 with values in ``[0, C)`` or :data:`~unetkit.tasks.base.IGNORE` (-1).

* :class:`ElboOutput`, :class:`ProbabilisticSegmenter`: what a training task reads from a model.
* :func:`one_hot_labels`: labels -> one-hot maps (ignored pixels all zero), the posterior's input.
* :func:`gaussian_kl`: elementwise KL of diagonal Gaussians given means and log-sigmas.
* :class:`GaussianLatent`: a 1x1 convolution that predicts ``(mu, log sigma)`` of a latent, and
  the choice of a latent (given / mean / reparameterised sample).
* :func:`orthogonal_init_`: orthogonal weights (gain 1), biases truncated normal sigma 0.001
  (DeepMind's HPU-Net initialisation).
* :class:`LatentSegmenterSizes`: the Tileable members both models share (same padding,
  inexact tiling).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unetkit.errors import ShapeError
from unetkit.layers.factories import conv_nd
from unetkit.models.geometry import SamePaddingSizes, UNetGeometry

IGNORE = -1
"""Ignored label value (same as :data:`unetkit.tasks.base.IGNORE`; not imported to keep models
independent of tasks)."""

BIAS_STD = 0.001
"""Standard deviation of the truncated-normal bias initialisation (truncated at 2 sigma)."""


class ElboOutput(NamedTuple):
    """Result of a training pass (:meth:`ProbabilisticSegmenter.elbo_forward`).

    Attributes:
        logits: ``(N, C, *S)`` decoded from the POSTERIOR latents (reparameterised sample).
        kl: ``(N, L)`` analytic KL(q || p) per image and latent scale, summed over space and latent
            channels; scale 0 is the most global (coarsest).
    """

    logits: Tensor
    kl: Tensor


@runtime_checkable
class ProbabilisticSegmenter(Protocol):
    """A segmentation model with latent variables (HPU-Net, ProbUNet); see the interface notes.

    ``generator`` is an optional :class:`torch.Generator` for the latent noise (None: torch's
    global RNG). Scale indices count from 0 = most global.
    """

    latent_scales: int

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C, *S)`` logits with every latent at its prior mean."""
        ...

    def sample(self, x: Tensor, n: int, mean_scales: Collection[int] = (),
               generator: torch.Generator | None = None) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, n, C, *S)`` logits of ``n`` prior samples per image."""
        ...

    def reconstruct(self, x: Tensor, labels: Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        """``(N, C, *S)`` logits from the posterior mean latents (``sample=True``: a posterior sample)."""
        ...

    def elbo_forward(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> ElboOutput:
        """Training pass: posterior latents decoded by the prior net, and the KL per scale."""
        ...


def one_hot_labels(labels: Tensor, num_classes: int) -> Tensor:
    """One-hot maps of integer labels.

    Args:
        labels: ``(N, *S)`` integer labels in ``[0, num_classes)`` or ``IGNORE`` (-1).
        num_classes: C.

    Returns:
        ``(N, C, *S)`` float32; a pixel labelled ``IGNORE`` has an all-zero row.

    Raises:
        ShapeError: a label outside ``[0, C)`` other than ``IGNORE``.
    """
    if labels.dtype.is_floating_point:
        raise ShapeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    labels = labels.long()
    ignored = labels == IGNORE
    bad = ~ignored & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        raise ShapeError(f"labels must be in [0, {num_classes}) or {IGNORE} (ignored), "
                         f"got {labels[bad].unique().tolist()[:5]}")
    hot = F.one_hot(labels.clamp_min(0), num_classes).to(torch.float32)  # (N, *S, C)
    hot = hot * (~ignored).unsqueeze(-1)
    return hot.movedim(-1, 1).contiguous()


def gaussian_kl(mu_q: Tensor, logsig_q: Tensor, mu_p: Tensor, logsig_p: Tensor) -> Tensor:
    """Elementwise KL(q || p) of diagonal Gaussians ``q = N(mu_q, exp(logsig_q)^2)``,
    ``p = N(mu_p, exp(logsig_p)^2)``; all inputs broadcast to one shape, which the result has:

        log sigma_p - log sigma_q + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2
    """
    var_ratio = torch.exp(2.0 * (logsig_q - logsig_p))
    mean_term = (mu_q - mu_p) ** 2 * torch.exp(-2.0 * logsig_p)
    return logsig_p - logsig_q + 0.5 * (var_ratio + mean_term) - 0.5


def standard_normal(shape: Sequence[int], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise of ``shape`` with ``like``'s dtype and device, drawn from ``generator``
    (on the generator's device, then moved) or torch's global RNG."""
    device = like.device if generator is None else generator.device
    eps = torch.randn(tuple(shape), generator=generator, device=device, dtype=like.dtype)
    return eps.to(like.device)


def check_mean_scales(mean_scales: Collection[int], latent_scales: int) -> frozenset[int]:
    """``mean_scales`` as a set of scale indices; ``ValueError`` for an index outside ``[0, L)``."""
    out = frozenset(int(s) for s in mean_scales)
    bad = sorted(s for s in out if not 0 <= s < latent_scales)
    if bad:
        raise ValueError(f"mean_scales {bad} out of range: this model has latent scales 0..{latent_scales - 1}")
    return out


class LatentParams(NamedTuple):
    """Parameters of a diagonal Gaussian latent: ``mu`` and ``logsigma``, ``(N, K, *s)`` each."""

    mu: Tensor
    logsigma: Tensor


class GaussianLatent(nn.Module):
    """1x1 convolution ``(N, C, *s)`` -> ``(mu, log sigma)`` of a ``K``-channel diagonal Gaussian
    per pixel, ``(N, K, *s)`` each (a global latent: ``s`` all ones).

    Args:
        in_channels: C, channels of the features it reads.
        latent_channels: K.
        ndim: 2 or 3 spatial axes.
    """

    def __init__(self, in_channels: int, latent_channels: int, ndim: int) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.conv = conv_nd(ndim)(in_channels, 2 * latent_channels, kernel_size=1)

    def forward(self, features: Tensor) -> LatentParams:
        """``(N, C, *s)`` -> :class:`LatentParams` with ``(N, K, *s)`` tensors."""
        mu, logsigma = self.conv(features).chunk(2, dim=1)
        return LatentParams(mu, logsigma)

    @staticmethod
    def draw(params: LatentParams, *, mean: bool, generator: torch.Generator | None = None) -> Tensor:
        """The mean (``mean=True``) or a reparameterised sample ``mu + sigma * eps``, ``(N, K, *s)``."""
        if mean:
            return params.mu
        eps = standard_normal(params.mu.shape, params.mu, generator)
        return params.mu + torch.exp(params.logsigma) * eps


def orthogonal_init_(module: nn.Module, bias_std: float = BIAS_STD) -> nn.Module:
    """Initialise every convolution and linear layer in ``module``: orthogonal weights (gain 1,
    the weight seen as ``(out, in * prod(kernel))``), biases ~ normal(0, ``bias_std``) truncated at
    2 sigma. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.orthogonal_(m.weight, gain=1.0)
            if m.bias is not None:
                nn.init.trunc_normal_(m.bias, std=bias_std, a=-2 * bias_std, b=2 * bias_std)
    return module


def repeat_batch(x: Tensor, n: int) -> Tensor:
    """``(N, ...)`` -> ``(N * n, ...)``, each item repeated ``n`` times consecutively (so a result
    ``(N * n, ...)`` reshapes to ``(N, n, ...)``)."""
    return x.repeat_interleave(n, dim=0)


class LatentSegmenterSizes(SamePaddingSizes):
    """Tileable members shared by the probabilistic models (:class:`SamePaddingSizes`: same
    padding, tiling never exact) and their input check.

    Subclasses set ``geometry`` (a same-padding :class:`UNetGeometry`), ``ndim``,
    ``in_channels``, ``out_channels``, :attr:`TILING_INEXACT_REASON`, and implement
    :meth:`_halo_radius` and ``activation_bytes``.
    """

    geometry: UNetGeometry
    in_channels: int
    out_channels: int

    def _check_input(self, x: Tensor) -> None:
        """``ShapeError`` unless ``x`` is ``(N, in_channels, *S)`` with a valid ``S``."""
        if x.dim() != self.ndim + 2:
            raise ShapeError(
                f"expected a {self.ndim + 2}-D tensor (N, C, {'D, ' if self.ndim == 3 else ''}H, W), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ShapeError(f"expected {self.in_channels} input channels, got {x.shape[1]} (shape {tuple(x.shape)})")
        self.geometry.output_shape(x.shape[2:])  # raises with the nearest valid shapes

    def _check_labels(self, x: Tensor, labels: Tensor) -> Tensor:
        """One-hot ``(N, out_channels, *S)`` of ``labels`` ``(N, *S)`` matching ``x``."""
        if tuple(labels.shape) != (x.shape[0], *x.shape[2:]):
            raise ShapeError(f"labels of shape {tuple(labels.shape)} do not match images {tuple(x.shape)}: "
                             f"expected {(x.shape[0], *x.shape[2:])}")
        return one_hot_labels(labels, self.out_channels).to(x.dtype)


def voxel_count(shape: Sequence[int]) -> float:
    """Product of a spatial shape, as float."""
    return float(math.prod(int(s) for s in shape))
