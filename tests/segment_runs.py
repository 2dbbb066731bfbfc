"""Tiny run folders for the ``unetkit segment`` tests (imported by test_segment and test_segment_dask).

:func:`write_spoco_run` writes a spoco run by hand (config.yaml, model.json, last.pt with the
task state g), as the trainer writes it; :func:`train_semantic_run` trains a semantic run for a
few iterations with ``unetkit train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
import yaml

from unetkit.cli import main
from unetkit.data.synthetic import write_dataset
from unetkit.inference import predict
from unetkit.inference.files import normalizer_for
from unetkit.runs import load_checkpoint, load_run, save_checkpoint, save_model_json


def spoco_config(ndim: int = 2) -> dict[str, Any]:
    """A tiny spoco config: 4-D embeddings, depth 2, 4 base features, valid padding."""
    return {
        "seed": 0,
        "task": {"name": "spoco", "delta_v": 0.5, "delta_d": 2.0},
        "model": {"ndim": ndim, "in_channels": 1, "out_channels": 4, "depth": 2, "base_features": 4,
                  "padding": "valid", "norm": "batch"},
        "data": {"train": {"images": "data/images", "labels": "data/labels"}, "val_fraction": 0.0,
                 "patch_shape": [60] * ndim if ndim == 2 else [28, 60, 60], "batch_size": 2},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"iterations": 2, "val_every": 100, "checkpoint_every": 100, "device": "cpu"},
    }


def write_spoco_run(root: Path, ndim: int = 2, gain: float = 1.0) -> Path:
    """A spoco run folder ``root/run`` whose f and g differ slightly, as after a few training steps;
    f's weights are then multiplied by ``gain`` (2: embeddings varied enough for the mutex
    watershed to find a few hundred objects in 64 x 64 pixels, instead of one)."""
    from unetkit.config import dump_config, load_config
    from unetkit.models.registry import build_model
    from unetkit.tasks import build_task

    root.mkdir(parents=True, exist_ok=True)
    cfg_file = root / f"cfg{ndim}d.yaml"
    cfg_file.write_text(yaml.safe_dump(spoco_config(ndim), sort_keys=False))
    cfg = load_config(cfg_file)
    run = root / "run"
    torch.manual_seed(0)
    model = build_model(cfg.model)
    task = build_task(cfg.task, cfg.model)
    task.setup(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
            p.mul_(gain)
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    save_model_json(run, cfg.model.name, cfg.model.model_dump(mode="json", exclude={"name"}))
    save_checkpoint(run / "checkpoints" / "last.pt", {"model": model.state_dict(), "step": 2,
                                                      "task": task.state_dict()})
    return run


def train_semantic_run(root: Path, iterations: int = 4) -> Path:
    """A 2-D semantic run (2 classes: background / foreground) trained for ``iterations`` steps.

    So few steps leave every pixel on one side; the foreground logit's bias is then shifted by
    the median logit difference on the first training image, so that about half of its pixels
    are foreground (a non-trivial mask for wiring tests, not a good one).
    """
    root.mkdir(parents=True, exist_ok=True)
    write_dataset(root / "data", 2, (64, 64), seed=0, semantic=True)
    cfg = {
        "seed": 0,
        "task": {"name": "semantic", "labels": "semantic"},
        "model": {"ndim": 2, "in_channels": 1, "out_channels": 2, "depth": 2, "base_features": 4,
                  "padding": "valid", "norm": "batch"},
        "data": {"train": {"images": "data/images", "labels": "data/labels"}, "val_fraction": 0.0,
                 "patch_shape": [60, 60], "batch_size": 2},
        "optimizer": {"name": "adam", "lr": 0.02},
        "training": {"iterations": iterations, "val_every": 100, "checkpoint_every": 100, "device": "cpu"},
    }
    (root / "semantic.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = root / "semantic-run"
    assert main(["train", "-c", str(root / "semantic.yaml"), f"out={run}"]) == 0
    image = tifffile.imread(root / "data" / "images" / "img_000.tif")
    for ckpt in sorted((run / "checkpoints").glob("*.pt")):
        run_cfg, model, _ = load_run(run, ckpt.stem)
        logits = predict(model, image, transform=normalizer_for(image, False, run_cfg, name="img_000"))
        state = load_checkpoint(ckpt)
        state["model"]["head.bias"][1] -= float(np.median(logits[1] - logits[0]))
        save_checkpoint(ckpt, state)
    return run
