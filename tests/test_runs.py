"""Run folders: model.json (format version, validated like a config), checkpoints that must
match the model, device selection."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from unetkit.errors import ConfigError, InputError, MissingFileError
from unetkit.models import create_model
from unetkit.runs import (
    MODEL_JSON_VERSION,
    load_model,
    read_model_json,
    save_checkpoint,
    save_model_json,
    select_device,
)

KWARGS = {"in_channels": 1, "out_channels": 2, "ndim": 2, "depth": 2, "base_features": 4}


def make_run(root: Path, **kwargs: object) -> Path:
    spec = {**KWARGS, **kwargs}
    model = create_model("unet", **spec)
    save_model_json(root, "unet", spec)
    save_checkpoint(root / "checkpoints" / "last.pt", {"model": model.state_dict(), "step": 1})
    return root


def test_model_json_records_its_format_and_loads(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    spec = json.loads((run / "model.json").read_text())
    assert spec["format_version"] == MODEL_JSON_VERSION and spec["name"] == "unet"
    model = load_model(run)
    assert not model.training and model.depth == 2


def test_model_json_of_the_first_release_still_loads(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    # unetkit 0.1.0 wrote {"name", "kwargs"} with every constructor argument and norm null
    legacy = {"name": "unet", "kwargs": {**KWARGS, "factor": 2, "growth": 2, "convs_per_level": 2,
                                         "padding": "valid", "upsampling": "nearest", "norm": None}}
    (run / "model.json").write_text(json.dumps(legacy))
    model = create_model("unet", **legacy["kwargs"])
    save_checkpoint(run / "checkpoints" / "last.pt", {"model": model.state_dict(), "step": 1})
    assert load_model(run).depth == 2


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"name": "unet"}', "kwargs is missing"),
        ('{"name": "unet", "kwargs": {}, "extra": 1}', "unknown keys"),
        ('{"format_version": 99, "name": "unet", "kwargs": {}}', "format_version 99"),
        ('{"name": "vnet", "kwargs": {}}', "unknown model 'vnet'"),
        ('{"name": "unet", "kwargs": {"depth": 1000}}', r"model\.depth: Input should be less than or equal to 8"),
        ('{"name": "unet", "kwargs": {"depht": 2}}', r"unknown config key 'model\.depht'"),
        ('{"name": "unet", "kwargs": {"name": "unet"}}', "must not contain 'name'"),
    ],
)
def test_bad_model_json_is_one_clear_error(tmp_path: Path, content: str, phrase: str) -> None:
    run = make_run(tmp_path)
    (run / "model.json").write_text(content)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=phrase) as info:
        load_model(run)
    assert "\n" not in str(info.value)
    assert time.perf_counter() - t0 < 5  # refused before anything is built


def test_model_json_is_required(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="no model.json"):
        read_model_json(tmp_path)


@pytest.mark.parametrize(("key", "value"), [("out_channels", 3), ("base_features", 8), ("depth", 3)])
def test_checkpoint_must_match_model_json(tmp_path: Path, key: str, value: int) -> None:
    run = make_run(tmp_path)
    spec = json.loads((run / "model.json").read_text())
    spec["kwargs"][key] = value
    (run / "model.json").write_text(json.dumps(spec))
    with pytest.raises(InputError, match=r"does not match the model .*(wrong shape|missing|unexpected)") as info:
        load_model(run)
    assert "last.pt" in str(info.value)


def test_checkpoint_without_weights(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    save_checkpoint(run / "checkpoints" / "last.pt", {"step": 1})
    with pytest.raises(InputError, match="no model weights"):
        load_model(run)


def test_select_device_names_the_setting() -> None:
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device: unknown device 'tpu'"):
        select_device("tpu", setting="--device")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device=cuda but no CUDA"):
            select_device("cuda", setting="--device")
