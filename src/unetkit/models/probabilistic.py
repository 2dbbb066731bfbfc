"""Probabilistic segmentation models: the shared protocol (issue 10 interface).

PLACEHOLDER written by the task helper: only :class:`ElboOutput`, :class:`ProbabilisticSegmenter`
and :func:`one_hot_labels`, exactly as in the interface. The models helper's version of this
module (with ``gaussian_kl`` and the models) replaces it on merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor


class ElboOutput(NamedTuple):
    """Output of :meth:`ProbabilisticSegmenter.elbo_forward`."""

    logits: Tensor
    """``(N, C, *S)`` decoded from posterior latents (a reparameterised sample)."""
    kl: Tensor
    """``(N, L)`` analytic KL(q || p) per image and latent scale, summed over space and latent
    channels; scale 0 = most global (coarsest)."""


@runtime_checkable
class ProbabilisticSegmenter(Protocol):
    """A segmentation model with a latent distribution (HPU-Net, ProbU-Net)."""

    latent_scales: int

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, *I)`` -> ``(N, C, *S)`` logits with every latent at its prior mean."""
        ...

    def sample(self, x: Tensor, n: int, mean_scales: Sequence[int] = (),
               generator: torch.Generator | None = None) -> Tensor:
        """``(N, C_in, *I)`` -> ``(N, n, C, *S)`` logits of n samples per image."""
        ...

    def reconstruct(self, x: Tensor, labels: Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        """``(N, C, *S)`` logits from the posterior mean latents (or a posterior sample)."""
        ...

    def elbo_forward(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> ElboOutput:
        """Training pass: posterior latents decoded by the prior net; logits and KL per scale."""
        ...


def one_hot_labels(labels: Tensor, num_classes: int) -> Tensor:
    """``(N, *S)`` int64 labels (IGNORE = -1 allowed) -> ``(N, C, *S)`` float one-hot; ignored
    pixels get an all-zero row."""
    valid = labels >= 0
    hot = torch.nn.functional.one_hot(labels.clamp(min=0), num_classes).to(torch.float32)
    hot = hot * valid.unsqueeze(-1)
    return hot.movedim(-1, 1).contiguous()
