"""The training figure: loss, the task's named terms, validation metrics."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from unetkit.report import plot_training_curves


def _log(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _axes_of(monkeypatch, log: Path, out: Path) -> list:  # noqa: ANN001
    import matplotlib.pyplot as plt

    seen: list = []
    real = plt.subplots

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        fig, axes = real(*args, **kwargs)
        seen.append(list(axes))
        return fig, axes

    monkeypatch.setattr(plt, "subplots", spy)
    assert plot_training_curves(log, out) == out
    assert out.stat().st_size > 0
    return seen[0]


def test_task_terms_get_their_own_panel(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    records = [{"step": s, "train/loss": -5.0 + s, "train/rec": 10.0 / s, "train/kl_0": 0.1 * s,
                "train/lambda": 1.0 + 0.1 * s, "val/iou": 0.1 * s} for s in (1, 2, 3)]
    axes = _axes_of(monkeypatch, _log(tmp_path / "m.jsonl", records), tmp_path / "t.png")
    assert len(axes) == 3
    assert axes[0].get_yscale() == "symlog"  # GECO's loss can be negative
    assert sorted(line.get_label() for line in axes[1].get_lines()) == ["kl_0", "lambda", "rec"]
    assert [line.get_label() for line in axes[2].get_lines()] == ["iou"]


def test_plain_loss_keeps_two_panels_and_log_scale(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    records = [{"step": s, "train/loss": 1.0 / s, "val/iou": 0.1 * s} for s in (1, 2)]
    axes = _axes_of(monkeypatch, _log(tmp_path / "m.jsonl", records), tmp_path / "t.png")
    assert len(axes) == 2
    assert axes[0].get_yscale() == "log"
