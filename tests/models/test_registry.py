"""The model registry: per-model config schemas, duplicate names, listing."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field
from torch import nn

from unetkit.config import validate_config
from unetkit.errors import ConfigError
from unetkit.models import ModelConfig, UNet, create_model, list_models, register_model, validate_model_config
from unetkit.models.registry import registered_name, unregister_model


class TinyConfig(ModelConfig):
    name: Literal["tiny-test"] = "tiny-test"
    width: int = Field(3, ge=1, le=10)


class Tiny(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, ndim: int = 2, width: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, width, padding=width // 2)


@pytest.fixture
def tiny() -> type[Tiny]:
    register_model("tiny-test", config=TinyConfig)(Tiny)
    yield Tiny
    unregister_model("tiny-test")


def test_list_models_names_the_builtins() -> None:
    assert "unet" in list_models() and list_models() == sorted(list_models())


def test_registering_a_name_twice_is_an_error(tiny: type[Tiny]) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny-test", config=TinyConfig)(Tiny)
    with pytest.raises(ValueError, match="already registered"):
        register_model("unet", config=TinyConfig)(Tiny)
    with pytest.raises(ValueError, match="subclass of ModelConfig"):
        register_model("other", config=dict)(Tiny)  # type: ignore[arg-type]


def test_each_model_validates_its_own_keys(tiny: type[Tiny]) -> None:
    assert "tiny-test" in list_models()
    cfg = validate_config({"model": {"name": "tiny-test", "width": 5}})
    assert isinstance(cfg.model, TinyConfig) and cfg.model.width == 5
    assert isinstance(create_model("tiny-test", in_channels=1, out_channels=2), Tiny)
    # a U-Net key is not a tiny-test key, and the reverse; one line each, naming the model
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.depth' \(not a setting of model 'tiny-test'\)"):
        validate_config({"model": {"name": "tiny-test", "depth": 3}})
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.width' \(not a setting of model 'unet'\)"):
        validate_config({"model": {"width": 3}})
    with pytest.raises(ConfigError, match=r"model\.width: Input should be less than or equal to 10"):
        validate_config({"model": {"name": "tiny-test", "width": 11}})
    with pytest.raises(ConfigError, match="unknown model 'nope'; known models: .*tiny-test.*unet"):
        validate_config({"model": {"name": "nope"}})
    # the resolved config keeps the model's own keys
    from unetkit.config import dump_config

    assert "width: 5" in dump_config(cfg)
    assert registered_name(create_model("tiny-test", in_channels=1, out_channels=2)) == "tiny-test"


def test_model_section_errors_combine_with_others_on_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"model": {"depth": 1000}, "data": {"batch_size": 0}})
    msg = str(info.value)
    assert "\n" not in msg and "model.depth" in msg and "data.batch_size" in msg and "2 problems" in msg


def test_create_model_validates_like_the_config() -> None:
    assert isinstance(create_model("unet", in_channels=1, out_channels=2, depth=2), UNet)
    with pytest.raises(ConfigError, match=r"model\.depth: Input should be less than or equal to 8"):
        create_model("unet", in_channels=1, out_channels=2, depth=1000)
    with pytest.raises(ConfigError, match=r"model\.norm"):
        create_model("unet", in_channels=1, out_channels=2, norm="layer")
    assert validate_model_config({}).name == "unet"
