"""The model registry: each model registers under a name together with its config schema.

A run config's ``model`` section is validated by the schema that ``model.name`` selects, so
every model (U-Net, SEU-Net, HPU-Net, ...) checks its own keys with the same one-line errors;
the same schema validates a run folder's ``model.json``. Registering a name twice is an error.

    @register_model("mynet", config=MyNetConfig)
    class MyNet(nn.Module): ...

    create_model("mynet", in_channels=1, out_channels=2)   # validated by MyNetConfig
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn

from unetkit.errors import ConfigError
from unetkit.utils.schema import Strict, validate_named_section


class ModelConfig(Strict):
    """Keys every model has; a model's own schema derives from this and adds its keys.

    Subclasses narrow ``name`` to ``Literal["their-name"]`` and may override :meth:`kwargs`
    when the constructor's arguments differ from the keys.
    """

    name: str
    in_channels: int = Field(1, ge=1)
    out_channels: int = Field(2, ge=1)
    ndim: Literal[2, 3] = 2

    examples: ClassVar[tuple[dict[str, Any], ...]] = ()
    """Small configurations (keys besides ``name``) that the contract test in
    ``tests/test_contract.py`` builds and checks for every registered model: forward shape =
    ``output_shape``, tiled = whole image wherever the model claims exact tiling. A model
    without examples fails that test."""

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the model's constructor (every key but ``name``)."""
        return self.model_dump(exclude={"name"})


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its name, the class or factory that builds it, its config schema."""

    name: str
    factory: Callable[..., nn.Module]
    config: type[ModelConfig]


MODELS: dict[str, ModelEntry] = {}
DEFAULT_MODEL = "unet"


def register_model(name: str, *, config: type[ModelConfig]) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model class or factory under ``name`` with its config schema.

    Raises:
        ValueError: ``name`` is already registered, or ``config`` is not a :class:`ModelConfig`.
    """
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise ValueError(f"config of model {name!r} must be a subclass of ModelConfig, got {config!r}")

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({MODELS[name].factory!r})")
        MODELS[name] = ModelEntry(name, factory, config)
        return factory

    return wrap


def unregister_model(name: str) -> None:
    """Remove a registered model (for plugins and tests); unknown names are ignored."""
    MODELS.pop(name, None)


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(MODELS)


def model_entry(name: Any) -> ModelEntry:
    """The registry entry of ``name``; ``ConfigError`` naming the known models otherwise."""
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"model.name: unknown model {name!r}; known models: {', '.join(list_models())}")
    return MODELS[name]


def validate_model_config(raw: Any, *, prefix: Sequence[str] = ("model",), source: str | None = None) -> ModelConfig:
    """Validate a ``model`` section (a dict with ``name``, default ``"unet"``) with its model's schema."""
    return validate_named_section(raw, kind="model", default=DEFAULT_MODEL, schema_of=lambda n: model_entry(n).config,
                                  base=ModelConfig, prefix=prefix, source=source)


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the model a validated config describes."""
    entry = model_entry(cfg.name)
    try:
        return entry.factory(**cfg.kwargs())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build model {cfg.name!r}: {exc}") from exc


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model from keyword arguments, validated by its schema.

    An unknown name or a bad argument is a ``ConfigError`` naming it (``model.depth: ...``).
    """
    return build_model(validate_model_config({**kwargs, "name": name}))


def registered_name(model: nn.Module) -> str | None:
    """The registry name of ``model``'s class, or None."""
    for entry in MODELS.values():
        if entry.factory is type(model):
            return entry.name
    return None


def _register_builtin() -> None:
    from unetkit.models.unet import UNet, UNetConfig

    register_model("unet", config=UNetConfig)(UNet)

    from unetkit.models.seunet import SEUNet, SEUNetConfig, SResNet, SResNetConfig

    register_model("seunet", config=SEUNetConfig)(SEUNet)
    register_model("sresnet", config=SResNetConfig)(SResNet)

    from unetkit.models.hpunet import HPUNet, HPUNetConfig
    from unetkit.models.probunet import ProbUNet, ProbUNetConfig

    register_model("hpunet", config=HPUNetConfig)(HPUNet)
    register_model("probunet", config=ProbUNetConfig)(ProbUNet)


_register_builtin()
