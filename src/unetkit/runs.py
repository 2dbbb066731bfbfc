"""Run folders: the files a training run writes, and loading a trained run back.

This module sits below both training and inference: the trainer writes run folders with it,
and prediction (in-process, on files, on dask workers) loads them with it.

A run folder holds::

    config.yaml          resolved run configuration
    model.json           {"format_version", "name", "kwargs"}: enough to rebuild the model; validated
                         with the registered model's config schema when read
    metrics.jsonl        one JSON object per logged iteration
    checkpoints/last.pt  model, optimizer, scheduler, RNG states, iteration (for resuming)
    checkpoints/best.pt  model weights with the best validation score
    training.png         loss and validation curves

Every file is written to a temporary file in the same folder, fsynced and moved into place with
``os.replace`` (:func:`atomic_write`, from :mod:`unetkit.utils.atomic`), so a crash never leaves
a truncated or half-written checkpoint: the previous version stays until the new one is
complete. Checkpoints hold only tensors and plain Python values and load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from unetkit.errors import ConfigError, InputError, MissingFileError
from unetkit.utils.atomic import (  # also imported from here
    atomic_write,
    atomic_write_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.config import RunConfig
    from unetkit.models.registry import ModelConfig
    from unetkit.tasks import Task

MODEL_JSON_VERSION = 1
"""Format of ``model.json``. Version 1 added ``format_version``; files without it (unetkit 0.1.0)
hold the same ``name`` and ``kwargs`` and still load."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a dict of state dicts / tensors / plain values."""
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"checkpoint {path} is empty (0 bytes); it was not written completely. Use the other "
                         "checkpoint (--checkpoint best|last) or train again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (PermissionError, IsADirectoryError):
        raise  # the file system's answer, reported as such
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError, IndexError, KeyError) as exc:
        # torch reports a truncated zip archive as RuntimeError or as a bare OSError ("Invalid argument")
        detail = (str(exc).splitlines() or [""])[0].split(". ")[0][:160]
        raise InputError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}{': ' + detail if detail else ''}); "
            "it is truncated, corrupted or not a unetkit checkpoint"
        ) from None


def save_model_json(run_dir: str | Path, name: str, kwargs: dict[str, Any]) -> Path:
    """Write ``model.json`` (``{"format_version", "name", "kwargs"}``) into a run folder."""
    spec = {"format_version": MODEL_JSON_VERSION, "name": name, "kwargs": kwargs}
    return atomic_write_text(Path(run_dir) / "model.json", json.dumps(spec, indent=2))


def read_model_json(run_dir: str | Path) -> ModelConfig:
    """Read and validate a run folder's ``model.json`` with the model's registered config schema.

    Raises:
        MissingFileError: no ``model.json``.
        ConfigError: not JSON, not a mapping, a newer format, an unknown model or a bad value
            (named like a config key: ``model.depth: ...``).
    """
    from unetkit.models.registry import validate_model_config

    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise MissingFileError(f"{run_dir} is not a unetkit run folder (no model.json)")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path} must hold a JSON object with name and kwargs, got {type(spec).__name__}")
    version = spec.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version > MODEL_JSON_VERSION:
        raise ConfigError(f"{path} has format_version {version!r}; this unetkit reads versions up to "
                          f"{MODEL_JSON_VERSION} (upgrade unetkit to load it)")
    unknown = sorted(set(spec) - {"format_version", "name", "kwargs"})
    if unknown or "name" not in spec or not isinstance(spec.get("kwargs"), dict):
        raise ConfigError(f"{path} must hold {{\"name\": ..., \"kwargs\": {{...}}}}"
                          + (f"; unknown keys {unknown}" if unknown else "")
                          + ("; kwargs is missing or not an object" if not isinstance(spec.get("kwargs"), dict) else ""))
    kwargs = dict(spec["kwargs"])
    if "name" in kwargs:
        raise ConfigError(f"{path}: kwargs must not contain 'name'")
    return validate_model_config({**kwargs, "name": spec["name"]}, source=str(path))


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """Path of ``best`` or ``last`` checkpoint (``best`` falls back to ``last`` when absent)."""
    ckpt = Path(run_dir) / "checkpoints"
    if which not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    path = ckpt / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = ckpt / "last.pt"
    return path


def check_state_dict(model: nn.Module, state: Any, *, source: str) -> None:
    """``InputError`` naming the keys / shapes when ``state`` does not fit ``model`` exactly."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{source} holds no model weights (a state dict of tensors)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = []
        for what, items in (("missing", missing), ("unexpected", extra), ("wrong shape (checkpoint vs model)", shapes)):
            if items:
                parts.append(f"{len(items)} {what}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''}")
        raise InputError(f"{source} does not match the model it is loaded into ({'; '.join(parts)})")


def load_model(run_dir: str | Path, which: str = "best", map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model from a run folder (``model.json`` + a checkpoint), in eval mode.

    ``model.json`` is validated like a config and the checkpoint must match the model it
    describes; any mismatch is an error naming the file and the keys.
    """
    from unetkit.models.registry import build_model

    run = Path(run_dir)
    model = build_model(read_model_json(run))
    path = checkpoint_path(run, which)
    state = load_checkpoint(path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"checkpoint {path} holds no model weights (no 'model' entry)")
    check_state_dict(model, state["model"], source=f"checkpoint {path}")
    model.load_state_dict(state["model"])
    return model.to(map_location).eval()


def load_run(run_dir: str | Path, which: str = "best",
             map_location: str | torch.device = "cpu") -> tuple[RunConfig, nn.Module, Task]:
    """``(config, model, task)`` of a run folder: the resolved config, the trained model (eval
    mode) and the task that post-processes its outputs."""
    from unetkit.config import load_config
    from unetkit.tasks import build_task

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise MissingFileError(f"{run} is not a unetkit run folder (no config.yaml)")
    cfg = load_config(run / "config.yaml")
    model = load_model(run, which, map_location)
    return cfg, model, build_task(cfg.task, cfg.model)


def select_device(name: str = "auto", *, setting: str = "training.device") -> torch.device:
    """``"auto"`` picks cuda > mps > cpu; an explicit device that is unavailable is a ``ConfigError``
    naming ``setting`` (the config key or CLI flag it came from)."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{setting}: unknown device {name!r}; valid: auto, cpu, cuda, mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{setting}=cuda but no CUDA device is available; use auto or cpu")
    if name == "mps" and not has_mps:
        raise ConfigError(f"{setting}=mps but MPS is not available; use auto or cpu")
    return torch.device(name)
