"""A tiny probabilistic model for the probabilistic task's tests (the real HPU-Net / ProbU-Net
live in :mod:`unetkit.models.hpunet`; these tests do not depend on them).

:class:`FakeProbNet` is a small U-Net (so every size member inference and the trainer read is
real) plus ``latent_scales`` scalar latents that shift the class logits: ``logits =
unet(x) + E z``. The prior is a learned Gaussian independent of the image (so tiling stays
exact); the posterior's mean and log-sigma are a linear map of the image mean and the class
fractions of the one-hot labels. Register it under :data:`NAME` only inside a test
(:func:`registered`), never at import (the contract test collects every registered model).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from unetkit.models import UNet, register_model
from unetkit.models.probabilistic import ElboOutput, one_hot_labels
from unetkit.models.registry import unregister_model
from unetkit.models.unet import UNetConfig

NAME = "test-prob"


class FakeProbConfig(UNetConfig):
    name: Literal["test-prob"] = "test-prob"  # type: ignore[assignment]
    latent_scales: int = 2


class FakeProbNet(UNet):
    """U-Net logits ``(N, C, *S)`` shifted per class by ``E z``, ``z`` one scalar per latent scale."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, latent_scales: int = 2, **unet: Any) -> None:
        super().__init__(in_channels, out_channels, **unet)
        self.latent_scales = int(latent_scales)
        self.prior_mu = nn.Parameter(torch.zeros(self.latent_scales))
        self.prior_logsig = nn.Parameter(torch.zeros(self.latent_scales))
        self.posterior = nn.Linear(in_channels + out_channels, 2 * self.latent_scales)
        self.embed = nn.Linear(self.latent_scales, out_channels, bias=False)

    def _decode(self, base: Tensor, z: Tensor) -> Tensor:
        """base ``(N, C, *S)``, z ``(N, L)`` -> ``(N, C, *S)``."""
        shift = self.embed(z)
        return base + shift.reshape(*shift.shape, *([1] * (base.dim() - 2)))

    def forward(self, x: Tensor) -> Tensor:
        base = super().forward(x)
        return self._decode(base, self.prior_mu.expand(x.shape[0], -1))

    def _posterior(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        hot = one_hot_labels(labels, self.out_channels)
        feats = torch.cat([x.flatten(2).mean(-1), hot.flatten(2).mean(-1)], dim=1)
        mu, logsig = self.posterior(feats).chunk(2, dim=1)
        return mu, logsig

    def sample(self, x: Tensor, n: int, mean_scales: Sequence[int] = (),
               generator: torch.Generator | None = None) -> Tensor:
        base = super().forward(x)
        eps = torch.randn(x.shape[0], n, self.latent_scales, generator=generator)
        z = self.prior_mu + self.prior_logsig.exp() * eps
        for s in mean_scales:
            z[..., s] = self.prior_mu[s]
        return torch.stack([self._decode(base, z[:, i]) for i in range(n)], dim=1)

    def reconstruct(self, x: Tensor, labels: Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        mu, logsig = self._posterior(x, labels)
        z = mu + logsig.exp() * torch.randn(mu.shape, generator=generator) if sample else mu
        return self._decode(super().forward(x), z)

    def elbo_forward(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> ElboOutput:
        mu, logsig = self._posterior(x, labels)
        z = mu + logsig.exp() * torch.randn(mu.shape, generator=generator)
        mp, lp = self.prior_mu, self.prior_logsig
        kl = lp - logsig + (torch.exp(2 * logsig) + (mu - mp) ** 2) / (2 * torch.exp(2 * lp)) - 0.5  # (N, L)
        return ElboOutput(self._decode(super().forward(x), z), kl)


@contextmanager
def registered() -> Iterator[str]:
    """Register :class:`FakeProbNet` as :data:`NAME` for the duration of the block."""
    unregister_model(NAME)
    register_model(NAME, config=FakeProbConfig)(FakeProbNet)
    try:
        yield NAME
    finally:
        unregister_model(NAME)
