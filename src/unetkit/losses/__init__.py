"""Losses, one module per family."""

from unetkit.losses.dice import CEDiceLoss, DiceLoss, dice_loss
from unetkit.losses.discriminative import DiscriminativeLoss, discriminative_loss
from unetkit.losses.geco import GECO, flip_gradient
from unetkit.losses.probabilistic import gumbel_noise, pixel_cross_entropy, topk_cross_entropy
from unetkit.losses.spoco import (
    SPOCOLoss,
    consistency_loss,
    object_loss,
    object_masks,
    select_anchors,
    soft_masks,
    spoco_loss,
    unlabelled_push_loss,
)
from unetkit.losses.wgan import MaskCritic, WGANGPTerm, critic_loss, generator_loss, gradient_penalty

__all__ = [
    "GECO", "CEDiceLoss", "DiceLoss", "DiscriminativeLoss", "MaskCritic", "SPOCOLoss", "WGANGPTerm", "consistency_loss",
    "critic_loss", "dice_loss", "discriminative_loss", "flip_gradient", "generator_loss", "gradient_penalty",
    "gumbel_noise", "object_loss", "object_masks", "pixel_cross_entropy", "select_anchors", "soft_masks",
    "spoco_loss", "topk_cross_entropy", "unlabelled_push_loss",
]
