"""Soft Dice loss and the cross-entropy + Dice combination for semantic segmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int | None = -1,
    include_background: bool = False,
    eps: float = 1e-6,
) -> Tensor:
    """Soft Dice loss on softmax probabilities, averaged over classes.

    ``1 - 2 sum(p g) / (sum p + sum g)`` per class, sums over the batch and all pixels
    (a batch-level Dice, stable when a class is absent from one image).

    Args:
        logits: ``(N, K, *S)`` raw scores for K classes.
        target: ``(N, *S)`` integer class ids in ``0..K-1``; ``ignore_index`` pixels are left out.
        ignore_index: label value to skip, or None.
        include_background: average over class 0 too (default: foreground classes only;
            with K = 1 the single channel is treated as the foreground logit of a sigmoid).
        eps: smoothing for empty classes.

    Returns:
        scalar tensor.
    """
    if logits.dim() != target.dim() + 1:
        raise ValueError(f"logits {tuple(logits.shape)} must have one more axis than target {tuple(target.shape)}")
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    tgt = torch.where(valid, target, torch.zeros_like(target)).long()
    k = logits.shape[1]
    top = int(tgt.max()) if tgt.numel() else 0
    if tgt.numel() and (int(tgt.min()) < 0 or top >= max(k, 2)):
        raise ValueError(
            f"target class ids must be in 0..{max(k, 2) - 1} for {k} output channel(s) "
            f"(or ignore_index={ignore_index}); got values in [{int(tgt.min())}, {top}]"
        )
    if k == 1:
        probs = torch.sigmoid(logits)
        onehot = tgt.unsqueeze(1).to(probs.dtype)
    else:
        probs = torch.softmax(logits, dim=1)
        onehot = F.one_hot(tgt, k).movedim(-1, 1).to(probs.dtype)
        if not include_background:
            probs, onehot = probs[:, 1:], onehot[:, 1:]
    mask = valid.unsqueeze(1).to(probs.dtype)
    dims = [0, *range(2, probs.dim())]
    inter = (probs * onehot * mask).sum(dims)
    denom = (probs * mask).sum(dims) + (onehot * mask).sum(dims)
    return 1.0 - ((2.0 * inter + eps) / (denom + eps)).mean()


class DiceLoss(nn.Module):
    """Module twin of :func:`dice_loss`."""

    def __init__(self, *, ignore_index: int | None = -1, include_background: bool = False) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.include_background = include_background

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return dice_loss(logits, target, ignore_index=self.ignore_index, include_background=self.include_background)


class CEDiceLoss(nn.Module):
    """``ce_weight * CE + dice_weight * Dice`` for ``(N, K, *S)`` logits and ``(N, *S)`` class ids.

    With K = 1 the cross-entropy is the binary one on the single logit.
    """

    def __init__(self, *, ce_weight: float = 1.0, dice_weight: float = 1.0, ignore_index: int = -1) -> None:
        super().__init__()
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.ignore_index = ignore_index

    def components(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The two terms separately: ``{"ce": ..., "dice": ...}``."""
        valid = target != self.ignore_index
        if logits.shape[1] == 1:
            ce = F.binary_cross_entropy_with_logits(
                logits[:, 0][valid], target[valid].to(logits.dtype)
            ) if valid.any() else logits.sum() * 0.0
        else:
            ce = F.cross_entropy(logits, target.long(), ignore_index=self.ignore_index) if valid.any() else logits.sum() * 0.0
        dice = dice_loss(logits, target, ignore_index=self.ignore_index)
        return {"ce": ce, "dice": dice}

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        parts = self.components(logits, target)
        return self.ce_weight * parts["ce"] + self.dice_weight * parts["dice"]


__all__ = ["CEDiceLoss", "DiceLoss", "dice_loss"]
