"""Config validation, overrides and presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unetkit.errors import ConfigError, MissingFileError
from unetkit.models import create_model
from unetkit.config import apply_overrides, dump_config, load_config, validate_config

PRESETS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_defaults_validate() -> None:
    cfg = validate_config({})
    assert cfg.model.padding == "valid" and cfg.data.batch_size == 4


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"model": {"depht": 3}}, "unknown config key 'model.depht'"),
        ({"modle": {}}, "unknown config key 'modle'"),
        ({"data": {"batch_size": 0}}, "data.batch_size"),
        ({"model": {"padding": "reflect"}}, "model.padding"),
        ({"training": {"iterations": "abc"}}, "training.iterations"),
        ({"data": {"patch_shape": [64, 64, 64]}}, "patch_shape"),
        ({"data": {"normalize": {"low": 50, "high": 10}}}, "low"),
    ],
)
def test_bad_config_names_the_key(raw: dict, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase.replace(".", r"\.").replace("(", r"\(")):
        validate_config(raw)


def test_overrides_parse_yaml_values() -> None:
    raw = apply_overrides({"model": {"depth": 4}}, ["model.depth=2", "data.patch_shape=[64, 64]", "model.norm=null",
                                                    "optimizer.lr=1e-4"])
    cfg = validate_config(raw)
    assert cfg.model.depth == 2 and cfg.data.patch_shape == [64, 64] and cfg.model.norm is None
    assert cfg.optimizer.lr == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["model.depth"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_relative_paths_resolve_against_the_config(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"train": {"images": "im", "labels": "lab"}}}))
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.data.train is not None and cfg.data.train.images == (tmp_path / "im").resolve()
    with pytest.raises(MissingFileError):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_dump_round_trips() -> None:
    cfg = validate_config({"model": {"factor": [1, 2, 2], "ndim": 3}, "data": {"patch_shape": [8, 64, 64]}})
    again = validate_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_validate_and_build(preset: Path) -> None:
    cfg = load_config(preset)
    model = create_model(cfg.model.name, **cfg.model.kwargs())
    shape = model.valid_input_shapes(cfg.data.patch_shape)[0]
    assert all(abs(a - b) <= p for a, b, p in zip(shape, cfg.data.patch_shape, model.shift_period))


def test_there_are_presets() -> None:
    assert len(PRESETS) >= 2


def test_override_paths_resolve_against_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "configs"
    conf.mkdir()
    (conf / "c.yaml").write_text(yaml.safe_dump({"data": {"val": {"images": "v_im", "labels": "v_lab"}}}))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = load_config(conf / "c.yaml", ["data.train.images=imgs", "data.train.labels=masks"])
    assert cfg.data.train is not None and cfg.data.val is not None
    assert cfg.data.train.images == (work / "imgs").resolve()
    assert cfg.data.val.images == (conf / "v_im").resolve()


def test_background_path_resolves_like_the_other_data_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "configs"
    conf.mkdir()
    (conf / "c.yaml").write_text(yaml.safe_dump({
        "task": {"name": "spoco", "labels": "sparse"},
        "data": {"train": {"images": "im", "labels": "lab", "background": "bg"}}}))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(conf / "c.yaml")
    assert cfg.data.train is not None and cfg.data.train.background == (conf / "bg").resolve()
    cfg = load_config(conf / "c.yaml", ["data.train.background=other"])
    assert cfg.data.train is not None and cfg.data.train.background == (tmp_path / "other").resolve()
    assert validate_config({}).data.train is None
