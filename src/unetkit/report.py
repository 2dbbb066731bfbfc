"""Figures: training curves and image / ground truth / prediction panels (matplotlib, Agg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _display(image: np.ndarray) -> np.ndarray:
    """2-D view of a ``([C,] [Z,] Y, X)`` image: first channel, middle z slice."""
    a = np.asarray(image)
    while a.ndim > 2:
        a = a[a.shape[0] // 2] if a.ndim > 3 or a.shape[0] > 4 else a[0]
    return a


def label_colors(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(*S, 3)`` RGB float image: background black, each id a random bright colour."""
    lab = np.asarray(labels).astype(np.int64)
    top = int(lab.max(initial=0))
    palette = np.random.default_rng(seed).uniform(0.25, 1.0, size=(top + 1, 3))
    palette[0] = 0.0
    return palette[np.clip(lab, 0, top)]


def save_segmentation_figure(
    path: str | Path,
    rows: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
    *,
    titles: Sequence[str] = ("image", "ground truth", "prediction"),
    row_labels: Sequence[str] | None = None,
) -> Path:
    """A grid with one row per example: image | ground truth | prediction.

    Args:
        rows: ``(image, ground_truth_or_None, prediction)``; images ``([C,] [Z,] Y, X)``,
            label maps ``([Z,] Y, X)`` (middle slice shown for 3-D).
    """
    plt = _pyplot()
    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for r, (img, gt, pred) in enumerate(rows):
        panels = [_display(img), None if gt is None else _display(gt), _display(pred)]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.set_axis_off()
            if panel is None:
                continue
            if c == 0:
                ax.imshow(panel, cmap="gray")
            else:
                ax.imshow(label_colors(panel), interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c])
        if row_labels is not None:
            axes[r, 0].text(-0.05, 0.5, row_labels[r], transform=axes[r, 0].transAxes, rotation=90,
                            va="center", ha="right", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(log_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot training loss and validation metrics from a ``metrics.jsonl`` log (None if empty)."""
    log = Path(log_path)
    if not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    records = [r for r in records if "event" not in r]
    if not records:
        return None
    plt = _pyplot()
    steps = [r["step"] for r in records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss = [r.get("train/loss") for r in records]
    ax1.plot(steps, [np.nan if v is None else v for v in loss], marker=".")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    keys = sorted({k for r in records for k in r if k.startswith("val/")})
    for k in keys:
        ax2.plot(steps, [r.get(k, np.nan) for r in records], marker=".", label=k[4:])
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("validation")
    if keys:
        ax2.legend()
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
