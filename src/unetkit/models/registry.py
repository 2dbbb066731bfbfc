"""A small registry so that configs name a model and the CLI builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from unetkit.errors import ConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model class or factory under ``name``."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = factory
        return factory

    return wrap


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; an unknown name is a ``ConfigError`` listing the known ones."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build model {name!r}: {exc}") from exc


def _register_builtin() -> None:
    from unetkit.models.unet import UNet

    register_model("unet")(UNet)


_register_builtin()
