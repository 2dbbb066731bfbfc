"""Losses, one module per family."""

from unetkit.losses.dice import CEDiceLoss, DiceLoss, dice_loss

__all__ = ["CEDiceLoss", "DiceLoss", "dice_loss"]
