"""``unetkit demo``: synthetic data -> training -> prediction -> metrics and a figure.

Runs end to end on a laptop CPU in about two minutes with nothing but the package: crowded,
touching blobs with membrane-like boundaries and noise are generated, a small valid-padding
U-Net learns foreground vs background, and held-out images (of a size the model was never
trained on) are segmented whole.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from unetkit.utils.atomic import atomic_write_text

DEMO_ITERATIONS = 200
TRAIN_SHAPE = (160, 160)
TEST_SHAPE = (200, 232)


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


def demo_config(out: Path, data: Path, iterations: int, seed: int) -> dict:
    """The demo's run configuration as a plain dict (also written to the run folder)."""
    return {
        "out": str(out / "run"),
        "seed": seed,
        "task": {"name": "semantic", "labels": "foreground"},
        "model": {"ndim": 2, "in_channels": 1, "out_channels": 2, "depth": 3, "base_features": 16,
                  "padding": "valid", "upsampling": "nearest", "norm": "batch"},
        "data": {
            "train": {"images": str(data / "train" / "images"), "labels": str(data / "train" / "labels")},
            "val": {"images": str(data / "val" / "images"), "labels": str(data / "val" / "labels")},
            "patch_shape": [188, 188],
            "batch_size": 4,
            "augment": {"flip": True, "rot90": True, "noise": {"sigma": [0.0, 0.05]}, "intensity": True},
        },
        "optimizer": {"name": "adam", "lr": 2e-3},
        "scheduler": {"name": "cosine"},
        "training": {"iterations": iterations, "val_every": max(1, iterations // 6),
                     "checkpoint_every": max(1, iterations // 6), "device": "auto"},
    }


def run_demo(out: str | Path = "unetkit-demo", *, iterations: int | None = None, seed: int = 0,
             n_train: int = 12, n_val: int = 3, n_test: int = 4, verbose: bool = True) -> dict:
    """Run the demo; returns the metrics dict that is also written to ``<out>/metrics.json``."""
    from unetkit.data.io import read_image, read_labels
    from unetkit.data.synthetic import write_dataset
    from unetkit.inference.files import predict_file
    from unetkit.metrics.evaluate import evaluate_paths
    from unetkit.report import save_segmentation_figure
    from unetkit.training import Trainer, validate_config
    from unetkit.runs import load_run

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    from unetkit.errors import InputError

    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1):
        raise InputError(f"iterations must be an integer >= 1 (or None for the default), got {iterations!r}")
    t0 = time.perf_counter()
    out = _free_folder(Path(out))
    data = out / "data"
    say(f"[1/4] generating synthetic touching blobs in {data}")
    write_dataset(data / "train", n_train, TRAIN_SHAPE, seed=seed, semantic=False)
    write_dataset(data / "val", n_val, TRAIN_SHAPE, seed=seed + 1000, semantic=False)
    test_images, test_labels = write_dataset(data / "test", n_test, TEST_SHAPE, seed=seed + 2000, semantic=False)

    cfg = validate_config(demo_config(out, data, DEMO_ITERATIONS if iterations is None else iterations, seed))
    trainer = Trainer(cfg)
    say(f"[2/4] training a {cfg.model.depth}-level valid U-Net on {trainer.device} for {cfg.training.iterations} "
        f"iterations (patches {trainer.input_shape} -> {trainer.output_shape})")
    fit = trainer.fit()

    say(f"[3/4] predicting {n_test} held-out {TEST_SHAPE[0]}x{TEST_SHAPE[1]} images")
    run_cfg, model, task = load_run(fit.run_dir)
    pred_dir = out / "predictions"
    for img in sorted(test_images.iterdir()):
        predict_file(model, task, run_cfg, img, pred_dir / img.name)

    say("[4/4] evaluating and drawing the figure")
    result = evaluate_paths(pred_dir, test_labels, metrics=("iou", "dice"), foreground=True)
    rows = []
    for img in sorted(test_images.iterdir())[:3]:
        rows.append((read_image(img)[0], read_labels(test_labels / img.name)[0] > 0, read_labels(pred_dir / img.name)[0]))
    figure = save_segmentation_figure(out / "figure.png", rows, titles=("image", "ground truth (foreground)", "prediction"))
    summary = {
        "iou": result["mean"]["iou"],
        "dice": result["mean"]["dice"],
        "per_image": result["images"],
        "iterations": fit.iterations,
        "train_seconds": round(fit.seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "device": str(trainer.device),
        "run_dir": str(fit.run_dir),
        "predictions": str(pred_dir),
        "figure": str(figure),
    }
    metrics_file = atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    say("")
    say(f"foreground IoU on {n_test} held-out images: {summary['iou']:.3f} (Dice {summary['dice']:.3f})")
    say(f"wall time: {summary['total_seconds']:.0f} s (training {summary['train_seconds']:.0f} s on {summary['device']})")
    say(f"run folder (config, checkpoints, metrics log, training curves): {fit.run_dir}")
    say(f"predictions: {pred_dir}")
    say(f"metrics:     {metrics_file}")
    say(f"figure:      {figure}")
    return summary
