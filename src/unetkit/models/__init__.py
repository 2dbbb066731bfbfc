"""Models: the U-Net core, the scale-equivariant SEU-Net and SResNet, the probabilistic HPU-Net and
ProbUNet, their size arithmetic, the protocol inference reads (:class:`Tileable`),
and a registry to build models from configs."""

from unetkit.models.geometry import UNetGeometry
from unetkit.models.probabilistic import (
    ElboOutput,
    ProbabilisticSegmenter,
    gaussian_kl,
    one_hot_labels,
)
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

# isort: split
# after the registry: importing it registers (and imports) the models below
from unetkit.models.hpunet import HPUNet, HPUNetConfig
from unetkit.models.probunet import ProbUNet, ProbUNetConfig
from unetkit.models.seunet import SEUNet, SEUNetConfig, SResNet, SResNetConfig
from unetkit.models.unet import UNet, UNetConfig

__all__ = [
    "MODELS",
    "ElboOutput",
    "HPUNet",
    "HPUNetConfig",
    "ModelConfig",
    "ProbUNet",
    "ProbUNetConfig",
    "ProbabilisticSegmenter",
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
    "gaussian_kl",
    "list_models",
    "one_hot_labels",
    "register_model",
    "validate_model_config",
]
