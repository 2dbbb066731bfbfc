"""``unetkit demo``: instance segmentation of touching cells from sparse labels (SPOCO@p).

Runs end to end on a laptop CPU in about two minutes with nothing but the package:

1. crowded, touching synthetic cells with membrane-like boundaries and noise are generated
   (:func:`unetkit.data.synthetic.write_dataset`), with full instance labels;
2. a small valid-padding U-Net learns 16-D pixel embeddings with the ``spoco`` task from only
   :data:`DEMO_FRACTION` of the cells of each training image (SPOCO@p: the other cells and the
   background are unlabelled, as if a biologist had outlined a few cells per image);
3. held-out images of a size the model never saw are segmented whole (``unetkit segment``:
   exact tiling, then the mutex watershed; fragments under ``min_size`` pixels dropped);
4. symmetric best Dice (SBD), mean segmentation accuracy (IoU 0.5..0.95) and |DiC| are
   computed against the full ground truth, and a figure shows every instance in its own colour
   beside the ground truth.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from unetkit.utils.atomic import atomic_write_text

DEMO_ITERATIONS = 1200
DEMO_FRACTION = 0.4
"""SPOCO@p of the demo: the fraction of cells labelled in each training image."""
TRAIN_SHAPE = (160, 160)
TEST_SHAPE = (200, 232)
METRICS = ("sbd", "mean_seg_acc", "abs_dic")


def _free_folder(out: Path) -> Path:
    """``out`` if it is missing or empty, else the first free ``out-2``, ``out-3``, ... (nothing is overwritten)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return out
    k = 2
    while True:
        candidate = out.with_name(f"{out.name}-{k}")
        if not candidate.exists():
            return candidate
        k += 1


def _objects(labels: Any) -> int:
    """Number of object ids (> 0) in a label image."""
    import numpy as np

    lab = np.asarray(labels)
    return int(np.unique(lab[lab > 0]).size)


def demo_config(out: Path, data: Path, iterations: int, seed: int, fraction: float = DEMO_FRACTION) -> dict[str, Any]:
    """The demo's run configuration as a plain dict (also written to the run folder)."""
    return {
        "out": str(out / "run"),
        "seed": seed,
        "task": {"name": "spoco", "labels": "dense", "fraction": fraction, "label_seed": seed,
                 "delta_v": 0.5, "delta_d": 2.0, "momentum": 0.999, "clustering": "mws", "min_size": 50,
                 # the consistency term weighted 3 instead of the paper's 1: in the demo's short training
                 # it pulls the unlabelled background together sooner (fewer background fragments)
                 "u_con_weight": 3.0},
        "model": {"ndim": 2, "in_channels": 1, "out_channels": 16, "depth": 3, "base_features": 16,
                  "padding": "valid", "upsampling": "nearest", "norm": "batch"},
        "data": {
            "train": {"images": str(data / "train" / "images"), "labels": str(data / "train" / "labels")},
            "val": {"images": str(data / "val" / "images"), "labels": str(data / "val" / "labels")},
            "patch_shape": [156, 156],
            "batch_size": 2,
            "augment": {"flip": True, "rot90": True, "noise": {"sigma": [0.0, 0.05]}, "intensity": True},
        },
        "optimizer": {"name": "adam", "lr": 2e-3},
        "scheduler": {"name": "cosine"},
        "training": {"iterations": iterations, "val_every": max(1, iterations // 3),
                     "checkpoint_every": max(1, iterations // 3), "device": "auto"},
    }


def run_demo(out: str | Path = "unetkit-demo", *, iterations: int | None = None, seed: int = 0,
             fraction: float = DEMO_FRACTION, n_train: int = 12, n_val: int = 2, n_test: int = 4,
             verbose: bool = True) -> dict[str, Any]:
    """Run the demo; returns the metrics dict that is also written to ``<out>/metrics.json``."""
    from unetkit.data.io import read_image, read_labels
    from unetkit.data.synthetic import write_dataset
    from unetkit.errors import InputError
    from unetkit.inference.segment import segment_file
    from unetkit.metrics.evaluate import evaluate_paths
    from unetkit.report import save_segmentation_figure
    from unetkit.runs import load_run
    from unetkit.training import Trainer, validate_config

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1):
        raise InputError(f"iterations must be an integer >= 1 (or None for the default), got {iterations!r}")
    t0 = time.perf_counter()
    out = _free_folder(Path(out))
    data = out / "data"
    say(f"[1/4] generating synthetic touching cells with instance labels in {data}")
    write_dataset(data / "train", n_train, TRAIN_SHAPE, seed=seed, semantic=False)
    write_dataset(data / "val", n_val, TRAIN_SHAPE, seed=seed + 1000, semantic=False)
    test_images, test_labels = write_dataset(data / "test", n_test, TEST_SHAPE, seed=seed + 2000, semantic=False)

    cfg = validate_config(demo_config(out, data, DEMO_ITERATIONS if iterations is None else iterations, seed,
                                      fraction))
    trainer = Trainer(cfg)
    kept = sum(_objects(s.labels) for s in trainer.train_samples)
    total = sum(_objects(read_labels(p)[0]) for p in (data / "train" / "labels").iterdir())
    say(f"[2/4] training SPOCO@{fraction:g} (pixel embeddings, E = {cfg.model.out_channels}) with {kept} of "
        f"{total} cells labelled in {len(trainer.train_samples)} images, background unlabelled: a "
        f"{cfg.model.depth}-level valid U-Net on {trainer.device}, {cfg.training.iterations} iterations "
        f"(patches {trainer.input_shape} -> {trainer.output_shape})")
    fit = trainer.fit()

    say(f"[3/4] segmenting {n_test} held-out {TEST_SHAPE[0]}x{TEST_SHAPE[1]} images (exact tiling, mutex watershed)")
    run_cfg, model, task = load_run(fit.run_dir)
    pred_dir = out / "instances"
    for img in sorted(test_images.iterdir()):
        segment_file(model, task, run_cfg, img, pred_dir / img.name)

    say("[4/4] evaluating against the full ground truth and drawing the figure")
    result = evaluate_paths(pred_dir, test_labels, metrics=METRICS)
    rows = []
    for img in sorted(test_images.iterdir())[:3]:
        rows.append((read_image(img)[0], read_labels(test_labels / img.name)[0], read_labels(pred_dir / img.name)[0]))
    figure = save_segmentation_figure(out / "figure.png", rows,
                                      titles=("image", "ground truth (every cell)", f"SPOCO@{fraction:g} instances"))
    summary = {
        **{k: result["mean"][k] for k in METRICS},
        "fraction": fraction,
        "labelled_cells": kept,
        "cells": total,
        "per_image": result["images"],
        "iterations": fit.iterations,
        "train_seconds": round(fit.seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "device": str(trainer.device),
        "run_dir": str(fit.run_dir),
        "instances": str(pred_dir),
        "figure": str(figure),
    }
    metrics_file = atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    say("")
    say(f"on {n_test} held-out images: symmetric best Dice {summary['sbd']:.3f}, mean segmentation accuracy "
        f"{summary['mean_seg_acc']:.3f}, |DiC| {summary['abs_dic']:.1f} (objects miscounted per image)")
    say(f"trained from {kept} of {total} cells ({kept / max(total, 1):.0%}); wall time "
        f"{summary['total_seconds']:.0f} s (training {summary['train_seconds']:.0f} s on {summary['device']})")
    say(f"run folder (config, checkpoints, metrics log, training curves): {fit.run_dir}")
    say(f"instance labels: {pred_dir}")
    say(f"metrics:         {metrics_file}")
    say(f"figure:          {figure}")
    return summary
