"""Losses, one module per family."""

from unetkit.losses.dice import CEDiceLoss, DiceLoss, dice_loss
from unetkit.losses.discriminative import DiscriminativeLoss, discriminative_loss
from unetkit.losses.spoco import (
    SPOCOLoss,
    consistency_loss,
    object_loss,
    select_anchors,
    soft_masks,
    spoco_loss,
    unlabelled_push_loss,
)

__all__ = [
    "CEDiceLoss", "DiceLoss", "DiscriminativeLoss", "SPOCOLoss", "consistency_loss", "dice_loss",
    "discriminative_loss", "object_loss", "select_anchors", "soft_masks", "spoco_loss", "unlabelled_push_loss",
]
