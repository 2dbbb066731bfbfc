"""Losses, one module per family."""

from unetkit.losses.dice import CEDiceLoss, DiceLoss, dice_loss
from unetkit.losses.discriminative import DiscriminativeLoss, discriminative_loss

__all__ = ["CEDiceLoss", "DiceLoss", "DiscriminativeLoss", "dice_loss", "discriminative_loss"]
