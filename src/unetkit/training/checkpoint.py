"""Run-folder files written atomically, and loading trained models back.

A run folder holds::

    config.yaml          resolved run configuration
    model.json           model name + constructor arguments (enough to rebuild it)
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
from typing import Any

import torch
from torch import nn

from unetkit.errors import InputError, MissingFileError
from unetkit.utils.atomic import (  # also imported from here
    atomic_write,
    atomic_write_text,
)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a dict of state dicts / tensors / plain values."""
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise InputError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "it is truncated, corrupted or not a unetkit checkpoint"
        ) from None


def save_model_json(run_dir: str | Path, name: str, kwargs: dict[str, Any]) -> Path:
    """Write ``model.json`` ({"name": ..., "kwargs": {...}}) into a run folder."""
    return atomic_write_text(Path(run_dir) / "model.json", json.dumps({"name": name, "kwargs": kwargs}, indent=2))


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """Path of ``best`` or ``last`` checkpoint (``best`` falls back to ``last`` when absent)."""
    ckpt = Path(run_dir) / "checkpoints"
    if which not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    path = ckpt / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = ckpt / "last.pt"
    return path


def load_model(run_dir: str | Path, which: str = "best", map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model from a run folder (``model.json`` + a checkpoint), in eval mode."""
    from unetkit.models import create_model

    run = Path(run_dir)
    spec_file = run / "model.json"
    if not spec_file.is_file():
        raise MissingFileError(f"{run} is not a unetkit run folder (no model.json)")
    spec = json.loads(spec_file.read_text())
    model = create_model(spec["name"], **spec["kwargs"])
    state = load_checkpoint(checkpoint_path(run, which), map_location)
    model.load_state_dict(state["model"])
    return model.eval()


def load_run(run_dir: str | Path, which: str = "best", map_location: str | torch.device = "cpu") -> tuple[Any, nn.Module, Any]:
    """``(config, model, task)`` of a run folder: the resolved config, the trained model (eval
    mode) and the task that post-processes its outputs."""
    from unetkit.training.config import load_config
    from unetkit.training.tasks import build_task

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise MissingFileError(f"{run} is not a unetkit run folder (no config.yaml)")
    cfg = load_config(run / "config.yaml")
    model = load_model(run, which, map_location)
    return cfg, model, build_task(cfg.task, cfg.model)
