"""Reconstruction loss of the probabilistic U-Nets: softmax cross-entropy with stochastic top-k.

HPU-Net (Kohl et al. 2019; method notes section 4): the reconstruction term is the per-pixel
softmax cross-entropy, summed over the image and averaged over the batch. With stochastic
top-k only ``K = ceil(k * V)`` pixels enter the loss, ``V`` the number of labelled (not
ignored) pixels of the whole batch; they are drawn over the whole batch, without replacement,
with probabilities proportional to their cross-entropy (the Gumbel top-k trick on
``log(CE / sum CE)``), so an image with larger errors gets more of them. The selection takes
no gradient: gradients reach exactly the selected pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = -1
"""Target value of unlabelled pixels (= :data:`unetkit.tasks.base.IGNORE`; not imported: the tasks
import the losses)."""

__all__ = ["gumbel_noise", "pixel_cross_entropy", "topk_cross_entropy"]


def pixel_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Per-pixel softmax cross-entropy.

    Args:
        logits: ``(N, C, *S)`` raw scores, C >= 2.
        target: ``(N, *S)`` int64 class ids in ``[0, C)`` or ``IGNORE`` (-1).

    Returns:
        ``(N, *S)`` cross-entropy, 0 at ignored pixels.
    """
    if logits.dim() != target.dim() + 1 or logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"logits (N, C, *S) {tuple(logits.shape)} do not fit target (N, *S) {tuple(target.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(f"softmax cross-entropy needs C >= 2 classes, got logits {tuple(logits.shape)}")
    return F.cross_entropy(logits, target.long(), ignore_index=IGNORE, reduction="none")


def gumbel_noise(shape: torch.Size | tuple[int, ...], device: torch.device,
                 generator: torch.Generator | None = None) -> Tensor:
    """Standard Gumbel noise ``-log(-log U)``, ``U ~ Uniform(0, 1)``, float32 on ``device``.

    ``U`` comes from ``generator`` (on its own device, then moved) or torch's global RNG.
    """
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float32).to(device)
    tiny = torch.finfo(torch.float32).tiny
    return -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))


def topk_cross_entropy(logits: Tensor, target: Tensor, k: float | None = 0.02,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Reconstruction loss: softmax CE summed over the selected pixels of each image, batch mean.

    Args:
        logits: ``(N, C, *S)`` raw scores.
        target: ``(N, *S)`` int64 class ids or ``IGNORE`` (-1; never selected).
        k: fraction of the batch's labelled pixels kept, in (0, 1]; ``None`` or 1 keeps all
            labelled pixels (no noise is drawn then).
        generator: RNG of the Gumbel noise (None: torch's global RNG).

    Returns:
        ``(loss, n_selected)``: the scalar ``sum_{selected} CE / N`` and the ``(N,)`` int64 number
        of pixels selected in each image.

    With ``V`` labelled pixels in the batch, ``K = ceil(k * V)`` pixels are selected as the top-K of
    ``log(CE_i / sum_j CE_j) + G_i`` over all ``N * prod(S)`` pixels (``G_i`` i.i.d. Gumbel),
    i.e. sampled without replacement with probability proportional to CE.
    """
    if k is not None and not (0 < k <= 1):
        raise ValueError(f"top-k fraction k must be in (0, 1] or None, got {k!r}")
    ce = pixel_cross_entropy(logits, target)
    n = ce.shape[0]
    valid = (target != IGNORE).reshape(n, -1)
    flat = ce.reshape(-1)
    if k is None or k >= 1:
        return flat.sum() / n, valid.sum(dim=1)
    n_valid = int(valid.sum())
    n_keep = math.ceil(k * n_valid)
    if n_keep == 0:
        return flat.sum() * 0.0 / n, torch.zeros(n, dtype=torch.int64, device=ce.device)
    with torch.no_grad():
        c = flat.detach().float()
        total = c.sum().clamp(min=torch.finfo(torch.float32).tiny)
        # valid pixels with CE = 0 get a very low but finite score, ignored ones -inf: never chosen
        score = torch.log(c / total).clamp(min=-1e30) + gumbel_noise(c.shape, c.device, generator)
        score = score.masked_fill(~valid.reshape(-1), float("-inf"))
        index = torch.topk(score, n_keep, sorted=False).indices
        selected = torch.zeros_like(valid.reshape(-1))
        selected[index] = True
    return flat[index].sum() / n, selected.reshape(n, -1).sum(dim=1)
