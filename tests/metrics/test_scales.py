"""Scale evaluation: consistency on hand-made logits, IoU of a fixed-function "model", the plot."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unetkit.config import NormalizeConfig
from unetkit.errors import InputError
from unetkit.metrics.scales import (
    class_map,
    evaluate_scales,
    plot_scale_curves,
    scale_consistency,
)
from unetkit.models import UNet
from unetkit.tasks.semantic import SemanticTask


def test_consistency_hand_made() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 8, 9)).astype(np.float32)
    assert scale_consistency(logits, logits.copy()) == 1.0
    assert scale_consistency(logits, -logits) == 0.0  # argmin != argmax where values differ
    two = rng.standard_normal((2, 8, 9))
    assert scale_consistency(two, -two) == 0.0  # opposite argmax everywhere
    one = rng.standard_normal((1, 4, 5, 6))
    assert scale_consistency(one, -one) == 0.0  # single logit: the sign is the class
    half = two.copy()
    half[:, :4] = -half[:, :4]
    assert scale_consistency(two, half) == pytest.approx(1 - 4 * 9 / 72)
    np.testing.assert_array_equal(class_map(one), (one[0] > 0).astype(np.int64))
    with pytest.raises(InputError, match="must be equal"):
        scale_consistency(two, two[:, :4])


class Threshold(torch.nn.Module):
    """A fixed "model": class 1 where the (un-normalised) image is above 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] - 0.5], dim=1)


def _setup() -> tuple[UNet, SemanticTask, SimpleNamespace]:
    torch.manual_seed(0)
    net = UNet(1, 2, ndim=2, depth=2, base_features=2, padding="same").eval()  # gives the size geometry only
    task = SemanticTask(2)
    task.predictor = lambda model: Threshold()  # type: ignore[method-assign]
    cfg = SimpleNamespace(model=SimpleNamespace(ndim=2, in_channels=1),
                          data=SimpleNamespace(normalize=NormalizeConfig(mode="none")))
    return net, task, cfg


def _disks() -> tuple[list[np.ndarray], list[np.ndarray]]:
    yy, xx = np.mgrid[:40, :48]
    images, labels = [], []
    for cy, cx, r in ((20, 20, 9), (15, 30, 6)):
        lab = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.int64)
        images.append(lab.astype(np.float32))
        labels.append(lab)
    return images, labels


def test_fixed_function_model(tmp_path: Path) -> None:
    net, task, cfg = _setup()
    images, labels = _disks()
    result = evaluate_scales(net, task, cfg, images, labels, [0.5, 1.0, 2.0])
    assert result["factors"] == [0.5, 1.0, 2.0] and result["images"] == 2
    rows = {r["factor"]: r for r in result["rows"]}
    assert rows[1.0]["iou"] == 1.0 and rows[1.0]["consistency"] == 1.0
    for f in (0.5, 2.0):  # a threshold of a disk is nearly scale-consistent
        assert 0.8 < rows[f]["iou"] <= 1.0 and 0.9 < rows[f]["consistency"] <= 1.0
    path = plot_scale_curves({"threshold": result, "again": result}, tmp_path / "curves.png")
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


def test_fixed_function_model_3d() -> None:
    torch.manual_seed(0)
    net = UNet(1, 2, ndim=3, depth=1, base_features=2, padding="same").eval()
    task = SemanticTask(2)
    task.predictor = lambda model: Threshold()  # type: ignore[method-assign]
    cfg = SimpleNamespace(model=SimpleNamespace(ndim=3, in_channels=1),
                          data=SimpleNamespace(normalize=NormalizeConfig(mode="none")))
    zz, yy, xx = np.mgrid[:12, :16, :16]
    lab = ((zz - 6) ** 2 + (yy - 8) ** 2 + (xx - 8) ** 2 <= 25).astype(np.int64)
    result = evaluate_scales(net, task, cfg, [lab[None].astype(np.float32)], [lab], [0.5, 1.0, 2.0])
    rows = {r["factor"]: r for r in result["rows"]}
    assert rows[1.0]["iou"] == 1.0 and rows[1.0]["consistency"] == 1.0
    assert rows[2.0]["iou"] > 0.8 and rows[0.5]["consistency"] > 0.8


def test_errors() -> None:
    net, task, cfg = _setup()
    images, labels = _disks()
    for bad in ([], [0.5, 0.5], [0.0], [-1.0]):
        with pytest.raises(InputError, match="scale factor"):
            evaluate_scales(net, task, cfg, images, labels, bad)
    with pytest.raises(InputError, match="below 1 pixel"):
        evaluate_scales(net, task, cfg, images, labels, [0.001])
    with pytest.raises(InputError, match="one label image per image"):
        evaluate_scales(net, task, cfg, images, labels[:1], [1.0])
    with pytest.raises(InputError, match="labels shape"):
        evaluate_scales(net, task, cfg, images, [labels[0][:10]] * 2, [1.0])
    with pytest.raises(InputError, match="nothing to plot"):
        plot_scale_curves({}, "x.png")
