"""Run configuration: pydantic models, YAML loading, ``key=value`` overrides.

An unknown key or a bad value is a :class:`~unetkit.errors.ConfigError` that names the key
path (``data.batch_size``) and what is expected. The resolved configuration (defaults filled
in, overrides applied) is written to every run folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, ValidationInfo, field_validator, model_validator

from unetkit.errors import ConfigError, MissingFileError
from unetkit.models.registry import ModelConfig, validate_model_config
from unetkit.tasks import TaskConfig, validate_task_config
from unetkit.utils.schema import Strict, error_lines, raise_config_errors


class SplitConfig(Strict):
    """A folder of images and a folder of labels paired by file stem.

    ``background`` (optional, training split of task spoco with ``labels: sparse`` only): a
    folder of annotated background masks paired with the images by file stem like the labels
    (an image without a mask has no annotated background), or one mask file when there is a
    single image; nonzero = background painted by the annotator. Checked when the data are read
    (missing files, shape against the label image, overlap with labelled objects).
    """

    images: Path
    labels: Path
    background: Path | None = None


class NormalizeConfig(Strict):
    mode: Literal["percentile", "meanstd", "none"] = "percentile"
    low: float = Field(1.0, ge=0, le=100)
    high: float = Field(99.8, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> NormalizeConfig:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def kwargs(self) -> dict[str, float]:
        """Keyword arguments for :func:`unetkit.data.normalize.normalize` besides the mode."""
        return {"low": self.low, "high": self.high} if self.mode == "percentile" else {}


class DataConfig(Strict):
    """Training data and patch sampling."""

    train: SplitConfig | None = None
    val: SplitConfig | None = None
    val_fraction: float = Field(0.2, ge=0, lt=1)
    axes: str | None = None
    label_axes: str | None = None
    patch_shape: list[int] = Field(default_factory=lambda: [128, 128])
    batch_size: int = Field(4, ge=1)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    augment: dict[str, Any] | None = Field(default_factory=lambda: {"flip": True, "rot90": True})

    @field_validator("patch_shape")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(s < 1 for s in v):
            raise ValueError(f"patch sizes must be positive, got {v}")
        return v


class OptimizerConfig(Strict):
    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class SchedulerConfig(Strict):
    name: Literal["none", "plateau", "cosine"] = "none"
    patience: int = Field(5, ge=0)
    factor: float = Field(0.5, gt=0, lt=1)
    min_lr: float = Field(0.0, ge=0)


class TrainingConfig(Strict):
    """Loop control: everything is counted in iterations (optimizer steps)."""

    iterations: int = Field(1000, ge=1)
    val_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(None, ge=1)


class RunConfig(Strict):
    """A whole training run."""

    out: Path = Path("runs/unet")
    seed: int = 0
    task: SerializeAsAny[TaskConfig] = Field(default_factory=lambda: validate_task_config({}))
    model: SerializeAsAny[ModelConfig] = Field(default_factory=lambda: validate_model_config({}))
    data: DataConfig = Field(default_factory=DataConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> RunConfig:
        if (info.context or {}).get("sections_invalid"):
            return self  # model / task had errors of their own; cross-checks would only add noise
        if len(self.data.patch_shape) != self.model.ndim:
            raise ValueError(
                f"data.patch_shape {self.data.patch_shape} has {len(self.data.patch_shape)} values "
                f"but model.ndim is {self.model.ndim}"
            )
        if self.data.train is not None and self.data.train.background is not None:
            problem = self.task.background_mask_problem()
            if problem:
                raise ValueError(f"data.train.background: {problem}")
        if self.data.val is not None and self.data.val.background is not None:
            raise ValueError("data.val.background: validation scores against the labels as read and uses no "
                             "background mask; set the mask on data.train.background only")
        return self


def validate_config(raw: Any, *, source: str | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a plain dict; one ``ConfigError`` naming every bad key.

    The ``model`` section is validated by the schema of the model ``model.name`` selects
    (:func:`unetkit.models.validate_model_config`), ``task`` by its task's schema
    (:func:`unetkit.tasks.validate_task_config`), the rest by :class:`RunConfig`.
    """
    if not isinstance(raw, dict):
        where = f"{source} " if source else "a config "
        raise ConfigError(f"{where}must be a mapping of keys to values, got {type(raw).__name__}")
    lines: list[str] = []
    sections: dict[str, Any] = {}
    for key, check in (("model", validate_model_config), ("task", validate_task_config)):
        if key in raw:
            try:
                sections[key] = check(raw[key])
            except ConfigError as exc:
                lines.extend(_problems(exc))
    rest = {k: v for k, v in raw.items() if k not in ("model", "task")}
    try:
        cfg = RunConfig.model_validate({**rest, **sections}, context={"sections_invalid": bool(lines)})
    except ValidationError as exc:
        lines.extend(error_lines(exc))
    raise_config_errors(lines, source=source)
    return cfg


def _problems(exc: ConfigError) -> list[str]:
    """The individual problems a ConfigError stands for (see :func:`raise_config_errors`)."""
    return list(getattr(exc, "problems", None) or [str(exc)])


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'data.batch_size=8'`` -> (['data', 'batch_size'], 8); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, _, value = item.partition("=")
    if not key.strip():
        raise ConfigError(f"override {item!r} has an empty key; write key.path=value, e.g. model.depth=3")
    path = [p.strip() for p in key.strip().split(".")]
    if not all(path):
        suggestion = ".".join(p for p in path if p)
        raise ConfigError(f"override {item!r}: the key {key.strip()!r} has an empty part (a leading, trailing or "
                          f"doubled '.'); did you mean {suggestion}={value}?")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of override {item!r}: {yaml_problem(exc)}") from None
    return path, parsed


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: ``line L, column C: problem`` (PyYAML's own text takes several lines)."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return f"character {char} at offset {exc.position} is not allowed in YAML ({exc.reason})"

    def at(mark: Any) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    text = f"{at(mark)}: {problem}" if mark is not None else problem
    if context:
        started = f" started at {at(context_mark)}" if context_mark is not None and context_mark != mark else ""
        text += f" ({context}{started})"
    return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.path=value`` overrides applied."""
    out = copy.deepcopy(raw)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


DATA_PATH_KEYS = (("train", "images"), ("train", "labels"), ("train", "background"),
                  ("val", "images"), ("val", "labels"), ("val", "background"))


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides.

    Relative data paths written in the file are resolved against the file's folder; relative
    paths given as overrides, and ``out``, against the current working directory. The returned
    config holds absolute data paths.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(f"config file not found: {p}")
        data = p.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p} is not a YAML text file (byte {data[exc.start]:#04x} at offset {exc.start} is not "
                              "UTF-8 text); give a YAML config such as configs/semantic-2d.yaml") from None
        if "\x00" in text:
            raise ConfigError(f"{p} is not a YAML text file (it contains NUL bytes); give a YAML config such as "
                              "configs/semantic-2d.yaml")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {yaml_problem(exc)}") from None
        if raw is None or raw == {}:
            raise ConfigError(f"{p} is empty (no settings); a run needs at least its data and model, e.g. start "
                              "from a preset in configs/ such as configs/semantic-2d.yaml")
        if not isinstance(raw, dict):
            raise ConfigError(f"{p} must be a mapping of keys to values, got {type(raw).__name__}")
        _resolve_data_paths(raw, p.resolve().parent)
    raw = apply_overrides(raw, overrides or [])
    _resolve_data_paths(raw, Path.cwd())
    return validate_config(raw)


def _resolve_data_paths(raw: dict[str, Any], base: Path) -> None:
    """Make the relative ``data.{train,val}.{images,labels,background}`` strings of a raw config absolute, in place."""
    data = raw.get("data")
    for split, key in DATA_PATH_KEYS:
        node = data.get(split) if isinstance(data, dict) else None
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, (str, Path)) and str(value) and not Path(value).is_absolute():
            node[key] = str((base / value).resolve())


def dump_config(cfg: RunConfig) -> str:
    """YAML text of the resolved configuration (paths as strings)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
