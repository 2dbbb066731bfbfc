"""The (standard) probabilistic U-Net (sPU-Net, Kohl et al. 2018).

A same-padding :class:`~unetkit.models.unet.UNet` gives a feature map ``(N, F, *S)`` (its last
decoder block, before any 1x1 head). A PRIOR net on the image and a POSTERIOR net on
``concat(image, one_hot(labels))`` are convolutional encoders of the same depth whose output is
averaged over space and mapped by a 1x1 convolution to ``(mu, log sigma)`` of one global latent
vector of ``latent_dim`` dimensions per image. A latent z is broadcast over space, concatenated
with the U-Net features and combined by three 1x1 convolutions (ReLU between) into the logits.

Training (:meth:`ProbUNet.elbo_forward`): z is a reparameterised posterior sample; the KL
(one latent scale, ``L = 1``) is analytic. Sampling runs the U-Net and the prior once per image
and only the combination convolutions per sample.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from unetkit.layers import ConvBlock, Downsample, conv_nd
from unetkit.models.geometry import UNetGeometry
from unetkit.models.probabilistic import (
    ElboOutput,
    GaussianLatent,
    LatentParams,
    LatentSegmenterSizes,
    check_mean_scales,
    gaussian_kl,
    orthogonal_init_,
    repeat_batch,
    voxel_count,
)
from unetkit.models.protocol import CONV_WORKSPACE_FACTOR
from unetkit.models.registry import ModelConfig
from unetkit.models.unet import UNet

TILING_INEXACT_REASON = (
    "same padding makes outputs near a tile border depend on where the border is, and the global latent "
    "(prior mean or sample) is computed from each tile separately, so stitched samples (and the prior-mean "
    "prediction) are not coherent across tiles"
)


class ProbUNetConfig(ModelConfig):
    """Config section of :class:`ProbUNet` (``model.name: probunet``); keys are its constructor arguments."""

    name: Literal["probunet"] = "probunet"
    depth: int = Field(4, ge=1, le=8)
    base_features: int = Field(16, ge=1, le=1024)
    latent_dim: int = Field(6, ge=1, le=256)
    norm: Literal["none", "batch"] = "none"

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"depth": 1, "base_features": 4, "latent_dim": 2},
        {"depth": 2, "base_features": 2, "latent_dim": 3, "norm": "batch", "out_channels": 3, "in_channels": 2},
        {"ndim": 3, "depth": 1, "base_features": 2, "latent_dim": 2},
    )


class LatentEncoder(nn.Module):
    """Prior / posterior net of the sPU-Net: ``depth + 1`` conv blocks (two 3x3 convs, same padding)
    with ``features[i]`` channels and max pooling by 2 between them, the mean over space, and a
    :class:`~unetkit.models.probabilistic.GaussianLatent` head.

    ``(N, C_in, *S)`` -> :class:`LatentParams` with ``(N, latent_dim, 1, ..., 1)`` tensors.
    """

    def __init__(self, in_channels: int, features: Sequence[int], ndim: int, latent_dim: int,
                 norm: Literal["batch"] | None) -> None:
        super().__init__()
        self.ndim = ndim
        blocks: list[nn.Module] = []
        channels = in_channels
        for i, f in enumerate(features):
            if i:
                blocks.append(Downsample((2,) * ndim))
            blocks.append(ConvBlock(channels, f, ndim, padding="same", norm=norm))
            channels = f
        self.body = nn.Sequential(*blocks)
        self.head = GaussianLatent(channels, latent_dim, ndim)

    def forward(self, x: Tensor) -> LatentParams:
        """``(N, C_in, *S)`` -> ``(mu, logsigma)``, each ``(N, latent_dim, 1, ..., 1)``."""
        h = self.body(x).mean(dim=tuple(range(2, 2 + self.ndim)), keepdim=True)
        return self.head(h)


class ProbUNet(LatentSegmenterSizes, nn.Module):
    """Probabilistic U-Net with a global latent (see the module docstring).

    Args:
        in_channels: image channels C_in.
        out_channels: classes C (logits).
        ndim: 2 or 3 spatial axes.
        depth: poolings of the U-Net and of the prior / posterior encoders.
        base_features: channels of the first level (doubling per level); also the channels of
            the U-Net feature map and of the combination convolutions.
        latent_dim: dimensions of the global latent.
        norm: ``"none"`` or ``"batch"`` in the U-Net and the encoders.

    Shapes:
        images ``(N, C_in, [D,] H, W)`` with every spatial size a multiple of 2^depth; labels
        ``(N, [D,] H, W)``; logits ``(N, C, [D,] H, W)``; samples ``(N, n, C, [D,] H, W)``;
        ``latent_scales = 1``.
    """

    TILING_INEXACT_REASON = TILING_INEXACT_REASON
    latent_scales: int = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        depth: int = 4,
        base_features: int = 16,
        latent_dim: int = 6,
        norm: Literal["none", "batch"] | None = "none",
    ) -> None:
        super().__init__()
        if norm not in ("none", "batch", None):
            raise ValueError(f"norm must be 'none' or 'batch', got {norm!r}")
        block_norm: Literal["batch"] | None = "batch" if norm == "batch" else None
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ndim=ndim, depth=depth,
            base_features=base_features, latent_dim=latent_dim, norm=norm or "none",
        )
        self.geometry = UNetGeometry(ndim, depth, (2,) * ndim, padding="same", label=type(self).__name__)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.depth, self.base_features, self.latent_dim = depth, base_features, latent_dim
        # the U-Net's output is its last feature map: no 1x1 head (the combination convs are the head)
        self.unet = UNet(in_channels, base_features, ndim, depth=depth, base_features=base_features,
                         padding="same", upsampling="nearest", norm=block_norm)
        self.unet.head = nn.Identity()
        features = [base_features * 2**i for i in range(depth + 1)]
        self.prior = LatentEncoder(in_channels, features, ndim, latent_dim, block_norm)
        self.posterior = LatentEncoder(in_channels + out_channels, features, ndim, latent_dim, block_norm)
        conv = conv_nd(ndim)
        self.combine = nn.Sequential(
            conv(base_features + latent_dim, base_features, kernel_size=1), nn.ReLU(inplace=True),
            conv(base_features, base_features, kernel_size=1), nn.ReLU(inplace=True),
            conv(base_features, out_channels, kernel_size=1),
        )
        orthogonal_init_(self)

    # ------------------------------------------------------------------ Tileable
    def _halo_radius(self) -> int:
        """The U-Net's receptive-field radius (:attr:`UNet.halo`; the 1x1 convs add nothing). The
        global latent reads the whole tile: see :attr:`tiling_inexact_reason`."""
        return max(self.unet.halo)

    def activation_bytes(self, input_shape: Sequence[int], batch_size: int = 1) -> int:
        """Upper estimate (bytes, float32) of one inference batch: the U-Net's estimate, plus the
        prior encoder (input and two conv outputs per level) and the combination (features,
        broadcast latent, two hidden maps, logits) at full resolution, times
        :data:`~unetkit.models.protocol.CONV_WORKSPACE_FACTOR` for the added terms."""
        voxels = voxel_count(input_shape)
        f = self.base_features
        encoder = sum(3.0 * f * 2**i / 2.0 ** (self.ndim * i) for i in range(self.depth + 1))
        combine = 2 * (f + self.latent_dim) + 2 * f + self.out_channels
        extra = CONV_WORKSPACE_FACTOR * 4 * batch_size * voxels * (encoder + combine)
        return self.unet.activation_bytes(input_shape, batch_size) + int(extra)

    # ------------------------------------------------------------------ probabilistic interface
    def _logits(self, features: Tensor, z: Tensor) -> Tensor:
        """``features`` ``(B, F, *S)`` and ``z`` ``(B, latent_dim, 1, ..., 1)`` -> ``(B, C, *S)`` logits."""
        z = z.expand(-1, -1, *features.shape[2:])
        return self.combine(torch.cat([features, z], dim=1))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C, *S)`` logits with the latent at its prior mean."""
        self._check_input(x)
        return self._logits(self.unet(x), self.prior(x).mu)

    def sample(self, x: Tensor, n: int, mean_scales: Collection[int] = (),
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` prior samples per image: ``(N, C_in, *S)`` -> ``(N, n, C, *S)`` logits. The U-Net
        and the prior run once; only the combination convolutions run on ``N * n`` items.
        ``mean_scales = (0,)``: every sample is the prior mean (= :meth:`forward`)."""
        self._check_input(x)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        mean = 0 in check_mean_scales(mean_scales, self.latent_scales)
        p = self.prior(x)
        z = GaussianLatent.draw(LatentParams(repeat_batch(p.mu, n), repeat_batch(p.logsigma, n)), mean=mean,
                                generator=generator)
        logits = self._logits(repeat_batch(self.unet(x), n), z)
        return logits.reshape(x.shape[0], n, *logits.shape[1:])

    def _posterior(self, x: Tensor, labels: Tensor) -> LatentParams:
        return self.posterior(torch.cat([x, self._check_labels(x, labels)], dim=1))

    def reconstruct(self, x: Tensor, labels: Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        """``(N, C, *S)`` logits from the posterior MEAN latent (``sample=True``: a posterior sample).
        ``labels``: ``(N, *S)`` with values in ``[0, C)`` or -1 (ignored)."""
        self._check_input(x)
        z = GaussianLatent.draw(self._posterior(x, labels), mean=not sample, generator=generator)
        return self._logits(self.unet(x), z)

    def elbo_forward(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> ElboOutput:
        """Training pass: z ~ posterior (reparameterised) decoded with the U-Net features;
        ``kl`` ``(N, 1)`` = KL(q || p) summed over the latent dimensions.

        Returns:
            :class:`ElboOutput` with ``logits`` ``(N, C, *S)`` and ``kl`` ``(N, 1)``.
        """
        self._check_input(x)
        q = self._posterior(x, labels)
        p = self.prior(x)
        z = GaussianLatent.draw(q, mean=False, generator=generator)
        kl = gaussian_kl(q.mu, q.logsigma, p.mu, p.logsigma).flatten(1).sum(1, keepdim=True)
        return ElboOutput(self._logits(self.unet(x), z), kl)
