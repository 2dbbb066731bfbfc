"""Figures: training curves and image / ground truth / prediction panels (matplotlib, Agg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def foreground_map(per_class: np.ndarray) -> np.ndarray:
    """``(C, *S)`` per-class maps -> ``(*S)`` foreground map: ``1 - p(background)`` for
    probabilities of ``C > 1`` classes, the single channel when ``C = 1``."""
    return per_class[0] if per_class.shape[0] == 1 else 1.0 - per_class[0]


def save_samples_figure(path: str | Path, image: np.ndarray, samples: np.ndarray, mean: np.ndarray,
                        std: np.ndarray, entropy: np.ndarray, *, shown: int = 4) -> Path:
    """Samples of a probabilistic model: image | mean foreground probability | its standard
    deviation over samples | entropy of the mean, then the first ``shown`` samples in colour.

    Args:
        image: ``([Z,] Y, X)`` (middle slice shown for 3-D); samples ``(n, [Z,] Y, X)`` labels;
            mean, std ``(C, [Z,] Y, X)``; entropy ``([Z,] Y, X)``.
    """
    from unetkit.utils.atomic import atomic_target

    plt = _pyplot()
    k = min(shown, len(samples))
    cols = max(4, k)
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols, 5.4), squeeze=False)
    maps = [(_display(image), "image", "gray", None), (_display(foreground_map(mean)), "mean foreground", "magma", (0, 1)),
            (_display(foreground_map(std)), "std over samples", "viridis", None),
            (_display(entropy), "entropy (nats)", "viridis", None)]
    for ax, (panel, title, cmap, lim) in zip(axes[0], maps):
        im = ax.imshow(panel, cmap=cmap, vmin=None if lim is None else lim[0], vmax=None if lim is None else lim[1])
        ax.set_title(title)
        if title != "image":
            fig.colorbar(im, ax=ax, fraction=0.046)
    for j in range(k):
        axes[1, j].imshow(label_colors(_display(samples[j])), interpolation="nearest")
        axes[1, j].set_title(f"sample {j + 1}")
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def training_records(log_path: str | Path) -> list[dict[str, Any]]:
    """The logged steps of a run's ``metrics.jsonl`` (event lines such as ``diverged`` left out);
    ``[]`` when the file does not exist."""
    log = Path(log_path)
    if not log.is_file():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if "event" not in r]


def plot_training_curves(log_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot training loss, the task's named loss terms (``train/<part>``: e.g. reconstruction,
    KL per latent scale and the GECO multiplier of the probabilistic task) and validation
    metrics from a ``metrics.jsonl`` log (None if empty).

    Panels: training loss (log scale, symmetric log when it is not positive, as GECO's can be) |
    the task's terms, if it logs any (symmetric log scale) | validation metrics.
    """
    records = training_records(log_path)
    if not records:
        return None
    plt = _pyplot()
    steps = [r["step"] for r in records]
    parts = sorted({k for r in records for k in r if k.startswith("train/") and k != "train/loss"})
    fig, axes = plt.subplots(1, 3 if parts else 2, figsize=(15 if parts else 10, 3.5))
    loss = np.array([np.nan if r.get("train/loss") is None else r["train/loss"] for r in records], dtype=float)
    axes[0].plot(steps, loss, marker=".")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("training loss")
    axes[0].set_yscale("log" if np.all(loss[np.isfinite(loss)] > 0) else "symlog")
    if parts:
        for k in parts:
            axes[1].plot(steps, [r.get(k, np.nan) for r in records], marker=".", label=k[6:])
        axes[1].set_xlabel("iteration")
        axes[1].set_ylabel("loss terms (last batch)")
        axes[1].set_yscale("symlog", linthresh=1e-2)
        axes[1].legend(fontsize=7)
    ax2 = axes[-1]
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
