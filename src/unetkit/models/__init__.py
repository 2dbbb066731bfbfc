"""Models: the U-Net core, the scale-equivariant SEU-Net and SResNet, its size arithmetic, the protocol inference reads (:class:`Tileable`),
and a registry to build models from configs."""

from unetkit.models.geometry import UNetGeometry
from unetkit.models.protocol import Tileable, as_tileable
from unetkit.models.registry import (
    MODELS,
    ModelConfig,
    build_model,
    create_model,
    list_models,
    register_model,
    validate_model_config,
)
from unetkit.models.seunet import SEUNet, SEUNetConfig, SResNet, SResNetConfig
from unetkit.models.unet import UNet, UNetConfig

__all__ = [
    "MODELS",
    "ModelConfig",
    "SEUNet",
    "SEUNetConfig",
    "SResNet",
    "SResNetConfig",
    "Tileable",
    "UNet",
    "UNetConfig",
    "UNetGeometry",
    "as_tileable",
    "build_model",
    "create_model",
    "list_models",
    "register_model",
    "validate_model_config",
]
