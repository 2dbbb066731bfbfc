"""The hierarchical probabilistic U-Net (HPU-Net, Kohl et al. 2019), as in DeepMind's release.

A *hierarchical core* is a U-Net encoder over ``levels`` levels of pre-activated residual
blocks (2x2 average pooling between levels) and the first ``latent_scales`` decoder scales,
counted from the coarsest: at each of them a 1x1 convolution of the decoder features gives a
per-pixel diagonal Gaussian ``(mu, log sigma)`` with ``latent_channels`` channels, a latent z is
chosen (sampled, the mean, or given), concatenated to the features, upsampled (nearest, x2) and
concatenated with the encoder skip of the next finer level, followed by residual blocks.

* PRIOR net = a core on the image + a deterministic *stitching* decoder that continues to full
  resolution with the remaining skips, then a 1x1 convolution to ``out_channels`` logits.
* POSTERIOR net = a separate core of the same topology on ``concat(image, one_hot(labels))``;
  it only needs its latent distributions (no stitching decoder).

Training (:meth:`HPUNet.elbo_forward`): the posterior core samples its latents
(reparameterised); the prior core runs on the image *with the posterior's latents fed in at
every scale* (it still predicts its own ``(mu, log sigma)`` there, from decoder features that
depend on the posterior latents of the coarser scales), the stitching decoder gives the
logits, and the KL per scale is analytic, summed over space and latent channels.

Sizes: same padding; inputs are multiples of 2^(levels-1) on every axis; output shape = input
shape (:class:`~unetkit.models.probabilistic.LatentSegmenterSizes`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from unetkit.layers.factories import conv_nd
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

CONVS_PER_BLOCK = 3
"""3x3 convolutions on the residual branch of a block (DeepMind's ``convs_per_block``)."""

TILING_INEXACT_REASON = (
    "same padding makes outputs near a tile border depend on where the border is, and the coarsest latent "
    "scales (whose distributions see the whole tile) are computed per tile, so stitched samples (and the "
    "prior-mean prediction) are not coherent across tiles"
)


def level_channels(levels: int, base_channels: int, max_channels: int) -> list[int]:
    """Channels per level, finest first: ``min(base * 2^i, max)`` for i = 0..levels-1."""
    return [min(base_channels * 2**i, max_channels) for i in range(levels)]


class HPUNetConfig(ModelConfig):
    """Config section of :class:`HPUNet` (``model.name: hpunet``); keys are its constructor arguments."""

    name: Literal["hpunet"] = "hpunet"
    levels: int = Field(5, ge=2, le=10)
    base_channels: int = Field(16, ge=1, le=1024)
    max_channels: int = Field(64, ge=1, le=4096)
    blocks_per_level: int = Field(2, ge=1, le=8)
    latent_scales: int = Field(3, ge=1, le=9)
    latent_channels: int = Field(1, ge=1, le=64)

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"levels": 2, "base_channels": 4, "max_channels": 8, "blocks_per_level": 1, "latent_scales": 1},
        # the contract test's images (75, 83) and (19, 45, 50) need a small halo for a multi-tile plan:
        # levels = 2 (halo 14); tests/models/test_hpunet.py covers deeper models and more latent scales
        {"levels": 2, "base_channels": 2, "max_channels": 4, "blocks_per_level": 1, "latent_scales": 1,
         "latent_channels": 2, "out_channels": 3, "in_channels": 2},
        {"ndim": 3, "levels": 2, "base_channels": 2, "max_channels": 2, "blocks_per_level": 1, "latent_scales": 1},
    )

    @model_validator(mode="after")
    def _latent_scales_fit(self) -> HPUNetConfig:
        if self.latent_scales > self.levels - 1:
            raise ValueError(f"latent_scales ({self.latent_scales}) must be <= levels - 1 = {self.levels - 1} "
                             f"(levels = {self.levels}): each latent scale is followed by an upsampling")
        return self


class ResBlock(nn.Module):
    """Pre-activated residual block (DeepMind's ``res_block``).

    Residual branch: ReLU -> 3x3 conv to ``max(1, out // 2)`` channels -> ReLU -> 3x3 conv ->
    ReLU -> 3x3 conv (un-activated) -> 1x1 conv back to ``out`` channels (only when the halved
    count differs). Skip: identity, or a 1x1 conv when ``in != out``. Same padding, no
    normalisation. ``(N, in, *s)`` -> ``(N, out, *s)``.
    """

    def __init__(self, in_channels: int, out_channels: int, ndim: int, convs: int = CONVS_PER_BLOCK) -> None:
        super().__init__()
        conv = conv_nd(ndim)
        down = max(1, out_channels // 2)
        self.convs = nn.ModuleList(
            conv(in_channels if i == 0 else down, down, kernel_size=3, padding=1) for i in range(convs)
        )
        self.project: nn.Module = conv(down, out_channels, kernel_size=1) if down != out_channels else nn.Identity()
        self.skip: nn.Module = conv(in_channels, out_channels, kernel_size=1) if in_channels != out_channels \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in, *s)`` -> ``(N, out, *s)``."""
        r = F.relu(x)
        for i, conv in enumerate(self.convs):
            r = conv(r)
            if i < len(self.convs) - 1:
                r = F.relu(r)
        return self.skip(x) + self.project(r)


def res_stage(in_channels: int, out_channels: int, ndim: int, blocks: int) -> nn.Sequential:
    """``blocks`` residual blocks, the first mapping ``in_channels`` to ``out_channels``."""
    return nn.Sequential(*(ResBlock(in_channels if b == 0 else out_channels, out_channels, ndim)
                           for b in range(blocks)))


def up2(x: Tensor) -> Tensor:
    """Nearest-neighbour upsampling by 2 on every spatial axis."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class HierarchicalEncoder(nn.Module):
    """``levels`` stages of residual blocks with 2x2 average pooling between them.

    ``(N, C_in, *S)`` -> list of ``levels`` feature maps, finest first: level i is
    ``(N, channels[i], *S / 2^i)``.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], ndim: int, blocks: int) -> None:
        super().__init__()
        self.ndim = ndim
        self.stages = nn.ModuleList(
            res_stage(in_channels if i == 0 else channels[i - 1], c, ndim, blocks) for i, c in enumerate(channels)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(N, C_in, *S)`` -> ``[(N, channels[i], *S / 2^i) for i in range(levels)]``."""
        out = []
        for i, stage in enumerate(self.stages):
            if i:
                x = F.avg_pool2d(x, 2) if self.ndim == 2 else F.avg_pool3d(x, 2)
            x = stage(x)
            out.append(x)
        return out


class HierarchicalCore(nn.Module):
    """Encoder + the latent part of the decoder (the ``latent_scales`` coarsest decoder scales).

    Latent scale l (0 = coarsest) sits at encoder level ``levels - 1 - l``. Scale 0 reads the
    coarsest encoder output; scale l > 0 reads ``blocks(cat(up2(cat(z_{l-1}, h_{l-1})), skip))``.
    The features after the last latent scale, ``cat(z_{L-1}, h_{L-1})``, are what the stitching
    decoder continues from (so a posterior core has no unused parameters).

    Args:
        in_channels: input channels.
        channels: channels per encoder level, finest first (``levels`` values).
        ndim: 2 or 3.
        blocks: residual blocks per level.
        latent_scales: L.
        latent_channels: K, latent channels per scale.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], ndim: int, blocks: int,
                 latent_scales: int, latent_channels: int) -> None:
        super().__init__()
        self.levels, self.latent_scales, self.latent_channels = len(channels), latent_scales, latent_channels
        self.channels = list(channels)
        self.encoder = HierarchicalEncoder(in_channels, channels, ndim, blocks)
        top = self.levels - 1
        self.heads = nn.ModuleList(GaussianLatent(channels[top - s], latent_channels, ndim)
                                   for s in range(latent_scales))
        self.stages = nn.ModuleList(
            res_stage(channels[top - s + 1] + latent_channels + channels[top - s], channels[top - s], ndim, blocks)
            for s in range(1, latent_scales)
        )

    def decode(
        self,
        skips: Sequence[Tensor],
        *,
        latents: Sequence[Tensor] | None = None,
        mean_scales: Collection[int] = (),
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, list[LatentParams], list[Tensor]]:
        """Run the latent decoder scales on encoder outputs.

        Args:
            skips: the encoder's outputs, finest first (``(B, channels[i], *S / 2^i)``).
            latents: if given, ``L`` tensors ``(B, K, *S / 2^(levels-1-l))`` used as z at every
                scale (the distributions are still computed); otherwise z is the mean at the
                scales in ``mean_scales`` and a reparameterised sample elsewhere.
            mean_scales: scale indices (0 = coarsest) that take the mean.
            generator: RNG of the samples.

        Returns:
            ``(h, params, zs)``: ``h = cat(z_{L-1}, features)`` of shape
            ``(B, K + channels[levels-L], *S / 2^(levels-L))``, the per-scale :class:`LatentParams`,
            and the per-scale latents used, coarsest first.
        """
        top = self.levels - 1
        h = skips[top]
        params: list[LatentParams] = []
        zs: list[Tensor] = []
        for s, head in enumerate(self.heads):
            if s:
                h = self.stages[s - 1](torch.cat([up2(h), skips[top - s]], dim=1))
            p = head(h)
            z = latents[s] if latents is not None else GaussianLatent.draw(p, mean=s in mean_scales,
                                                                           generator=generator)
            params.append(p)
            zs.append(z)
            h = torch.cat([z, h], dim=1)
        return h, params, zs


class StitchingDecoder(nn.Module):
    """The deterministic rest of the prior's decoder: from the latent part's output at level
    ``levels - L`` up to full resolution (up2, concat skip, residual blocks per level), then a
    1x1 convolution to ``out_channels`` logits. ``(B, K + channels[levels-L], *s)`` and the skips
    -> ``(B, out_channels, *S)``."""

    def __init__(self, channels: Sequence[int], ndim: int, blocks: int, latent_scales: int,
                 latent_channels: int, out_channels: int) -> None:
        super().__init__()
        levels = len(channels)
        self.start = levels - latent_scales  # level of the latent part's output
        stages = []
        incoming = channels[self.start] + latent_channels
        for k in reversed(range(self.start)):
            stages.append(res_stage(incoming + channels[k], channels[k], ndim, blocks))
            incoming = channels[k]
        self.stages = nn.ModuleList(stages)
        self.head = conv_nd(ndim)(incoming, out_channels, kernel_size=1)

    def forward(self, h: Tensor, skips: Sequence[Tensor]) -> Tensor:
        """``h``: ``(B, K + channels[start], *S / 2^start)``; ``skips``: encoder outputs, finest first
        -> ``(B, out_channels, *S)``."""
        for stage, k in zip(self.stages, reversed(range(self.start))):
            h = stage(torch.cat([up2(h), skips[k]], dim=1))
        return self.head(h)


class HPUNet(LatentSegmenterSizes, nn.Module):
    """Hierarchical probabilistic U-Net (see the module docstring for the architecture).

    Args:
        in_channels: image channels C_in.
        out_channels: classes C (logits).
        ndim: 2 or 3 spatial axes.
        levels: resolution levels (``levels - 1`` poolings by 2).
        base_channels: channels of level 0; level i has ``min(base * 2^i, max_channels)``.
        max_channels: cap of the channels per level.
        blocks_per_level: residual blocks per level (encoder and decoder).
        latent_scales: L latent scales, the L coarsest decoder scales (``<= levels - 1``).
        latent_channels: K latent channels per pixel and scale.

    Shapes:
        images ``(N, C_in, [D,] H, W)`` with every spatial size a multiple of 2^(levels-1);
        labels ``(N, [D,] H, W)``; logits ``(N, C, [D,] H, W)``; samples ``(N, n, C, [D,] H, W)``.
        Latent scale l has spatial shape ``S / 2^(levels-1-l)``.
    """

    TILING_INEXACT_REASON = TILING_INEXACT_REASON

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        levels: int = 5,
        base_channels: int = 16,
        max_channels: int = 64,
        blocks_per_level: int = 2,
        latent_scales: int = 3,
        latent_channels: int = 1,
    ) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        if not 1 <= latent_scales <= levels - 1:
            raise ValueError(f"latent_scales ({latent_scales}) must be in 1..levels - 1 = {levels - 1} "
                             f"(levels = {levels})")
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ndim=ndim, levels=levels,
            base_channels=base_channels, max_channels=max_channels, blocks_per_level=blocks_per_level,
            latent_scales=latent_scales, latent_channels=latent_channels,
        )
        self.geometry = UNetGeometry(ndim, levels - 1, (2,) * ndim, padding="same", label=type(self).__name__)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.levels, self.blocks_per_level = levels, blocks_per_level
        self.latent_scales, self.latent_channels = latent_scales, latent_channels
        self.channels = level_channels(levels, base_channels, max_channels)
        core = dict(channels=self.channels, ndim=ndim, blocks=blocks_per_level, latent_scales=latent_scales,
                    latent_channels=latent_channels)
        self.prior = HierarchicalCore(in_channels, **core)
        self.posterior = HierarchicalCore(in_channels + out_channels, **core)
        self.stitching = StitchingDecoder(self.channels, ndim, blocks_per_level, latent_scales, latent_channels,
                                          out_channels)
        orthogonal_init_(self)

    # ------------------------------------------------------------------ Tileable
    def _halo_radius(self) -> int:
        """Sum over the longest path (down the encoder, up the decoder) of 2^level * reach: per
        level the encoder's and the decoder's ``blocks * 3`` 3x3 convolutions (reach 1 each); a 2x2
        pooling from level k or a nearest upsampling to level k moves a pixel's centre by half a
        level-k pixel, counted as 2^k. The latent heads and the final head are 1x1."""
        convs = self.blocks_per_level * CONVS_PER_BLOCK
        top = self.levels - 1
        encoder = sum(2**i * convs for i in range(self.levels)) + sum(2**k for k in range(top))
        decoder = sum(2**k * convs for k in range(top)) + sum(2**k for k in range(top))
        return encoder + decoder

    def activation_bytes(self, input_shape: Sequence[int], batch_size: int = 1) -> int:
        """Upper estimate of the memory (bytes, float32) of one inference batch of the PRIOR net
        (inference never runs the posterior): the input, every encoder skip kept alive, and the
        working set of the widest block of each level (input, its ReLU, three half-width convs, the
        projections and the output) at the level's voxel count, plus the logits; times
        :data:`~unetkit.models.protocol.CONV_WORKSPACE_FACTOR`."""
        c, k = self.channels, self.latent_channels
        per_voxel = float(self.in_channels + self.out_channels)
        for i, ci in enumerate(c):
            widest_in = max(c[i - 1] if i else self.in_channels,
                            (c[i + 1] + k + ci) if i < self.levels - 1 else 0)
            working = 2 * widest_in + CONVS_PER_BLOCK * max(1, ci // 2) + 3 * ci + 2 * k
            per_voxel += (ci + working) / 2.0 ** (self.ndim * i)
        return int(CONV_WORKSPACE_FACTOR * 4 * batch_size * voxel_count(input_shape) * per_voxel)

    # ------------------------------------------------------------------ probabilistic interface
    def _prior_logits(self, skips: Sequence[Tensor], **latent_choice: Any) -> tuple[Tensor, list[LatentParams]]:
        """Prior core decoder + stitching decoder on encoder outputs ``skips`` -> ``(B, C, *S)`` logits
        and the prior's per-scale distributions."""
        h, params, _ = self.prior.decode(skips, **latent_choice)
        return self.stitching(h, skips), params

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *S)`` -> ``(N, C, *S)`` logits with every latent at its prior mean."""
        self._check_input(x)
        logits, _ = self._prior_logits(self.prior.encoder(x), mean_scales=range(self.latent_scales))
        return logits

    def sample(self, x: Tensor, n: int, mean_scales: Collection[int] = (),
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` prior samples per image: ``(N, C_in, *S)`` -> ``(N, n, C, *S)`` logits.

        The encoder runs once; its outputs are repeated ``n`` times along the batch and the
        decoder (latent scales + stitching) runs once on ``N * n`` items. Scales in
        ``mean_scales`` (0 = coarsest) take the prior mean; all of them: every sample equals
        :meth:`forward`.
        """
        self._check_input(x)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        means = check_mean_scales(mean_scales, self.latent_scales)
        skips = [repeat_batch(s, n) for s in self.prior.encoder(x)]
        logits, _ = self._prior_logits(skips, mean_scales=means, generator=generator)
        return logits.reshape(x.shape[0], n, *logits.shape[1:])

    def _posterior(self, x: Tensor, labels: Tensor, *, mean: bool,
                   generator: torch.Generator | None) -> tuple[list[LatentParams], list[Tensor]]:
        """Posterior distributions and latents (means, or reparameterised samples) per scale."""
        q_in = torch.cat([x, self._check_labels(x, labels)], dim=1)
        all_scales = range(self.latent_scales) if mean else ()
        _, params, zs = self.posterior.decode(self.posterior.encoder(q_in), mean_scales=all_scales,
                                              generator=generator)
        return params, zs

    def reconstruct(self, x: Tensor, labels: Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        """``(N, C, *S)`` logits of the prior decoder fed the posterior MEAN latents (``sample=True``:
        a posterior sample). ``labels``: ``(N, *S)`` with values in ``[0, C)`` or -1 (ignored)."""
        self._check_input(x)
        _, zs = self._posterior(x, labels, mean=not sample, generator=generator)
        logits, _ = self._prior_logits(self.prior.encoder(x), latents=zs)
        return logits

    def elbo_forward(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> ElboOutput:
        """Training pass: the posterior core on ``cat(x, one_hot(labels))`` samples z per scale
        (reparameterised), the prior net decodes ``x`` with those z and computes its own
        distributions at each scale; ``kl[:, l]`` = KL(q_l || p_l) summed over space and latent
        channels.

        Returns:
            :class:`ElboOutput` with ``logits`` ``(N, C, *S)`` and ``kl`` ``(N, L)``.
        """
        self._check_input(x)
        q_params, zs = self._posterior(x, labels, mean=False, generator=generator)
        logits, p_params = self._prior_logits(self.prior.encoder(x), latents=zs)
        kl = torch.stack([gaussian_kl(q.mu, q.logsigma, p.mu, p.logsigma).flatten(1).sum(1)
                          for q, p in zip(q_params, p_params)], dim=1)
        return ElboOutput(logits, kl)
