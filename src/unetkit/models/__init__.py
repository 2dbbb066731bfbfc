"""Models: the U-Net core, its size arithmetic, and a registry to build models from configs."""

from unetkit.models.geometry import UNetGeometry
from unetkit.models.registry import MODELS, create_model, register_model
from unetkit.models.unet import UNet

__all__ = ["MODELS", "UNet", "UNetGeometry", "create_model", "register_model"]
