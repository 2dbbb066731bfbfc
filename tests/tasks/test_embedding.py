"""The embedding task: config, label preparation, post-processing, metrics, and training end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit.data.datasets import make_sample
from unetkit.data.synthetic import disc_grid
from unetkit.errors import ConfigError, InputError
from unetkit.training import Trainer, build_task, validate_config
from unetkit.tasks import TASKS, EmbeddingTask


def test_registered_and_built_from_config() -> None:
    assert TASKS["embedding"] is EmbeddingTask
    cfg = validate_config({"task": {"name": "embedding", "delta_v": 0.0, "delta_d": 3.0, "gamma": 1e-4},
                           "model": {"out_channels": 3}})
    task = build_task(cfg.task, cfg.model)
    assert isinstance(task, EmbeddingTask)
    assert task.embedding_dim == 3 and task.main_metric == "arand" and task.main_mode == "min"
    assert task.bandwidth == 3.0  # delta_v = 0 -> delta_d
    assert task.criterion.delta_d == 3.0 and task.criterion.gamma == pytest.approx(1e-4)
    assert EmbeddingTask(2, delta_v=0.5).bandwidth == 0.5
    assert EmbeddingTask(2, bandwidth=2.0).bandwidth == 2.0


@pytest.mark.parametrize(
    ("task", "phrase"),
    [
        ({"name": "semantic", "delta_v": 0.5}, "unknown config key 'task.delta_v'"),
        ({"name": "embedding", "labels": "foreground"}, "unknown config key 'task.labels'"),
        ({"name": "embedding", "ce_weight": 1.0}, "not a setting of task 'embedding'"),
        ({"name": "embedding", "background": "none"}, "task.background"),
        ({"name": "embedding", "bandwidth": 0}, "task.bandwidth"),
        ({"name": "embedding", "kernel": "box"}, "task.kernel"),
        ({"name": "nonsense"}, "unknown task 'nonsense'"),
    ],
)
def test_task_config_refuses_foreign_and_bad_keys(task: dict, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase.replace(".", r"\.")):
        validate_config({"task": task})


def test_task_without_name_is_semantic() -> None:
    assert validate_config({"task": {"labels": "foreground"}}).task.name == "semantic"
    assert validate_config({}).task.name == "semantic"


def test_prepare_labels() -> None:
    task = EmbeddingTask(3)
    out = task.prepare_labels(np.array([[0, 5], [9, 5]], dtype=np.uint16))
    assert out.dtype == np.int64 and out.tolist() == [[0, 5], [9, 5]]
    assert task.prepare_labels(np.array([0.0, 2.0])).tolist() == [0, 2]
    with pytest.raises(InputError, match="-3"):
        task.prepare_labels(np.array([0, -3]))
    with pytest.raises(InputError, match="integers"):
        task.prepare_labels(np.array([0.5, 1.0]))
    with pytest.raises(ConfigError, match="embedding_dim"):
        EmbeddingTask(0)


def test_postprocess_background_is_the_largest_cluster() -> None:
    # embeddings: background (0, 0, 0) on most pixels, two objects far away
    emb = torch.zeros(1, 3, 10, 10)
    emb[0, 0, 1:3, 1:3] = 6.0
    emb[0, 1, 6:9, 6:9] = 6.0
    labels = EmbeddingTask(3, delta_v=0.0, delta_d=3.0).postprocess(emb)
    assert labels.dtype == torch.long and labels.shape == (1, 10, 10)
    assert set(labels.unique().tolist()) == {0, 1, 2}
    assert (labels[0, 1:3, 1:3] == labels[0, 1, 1]).all() and (labels[0, 6:9, 6:9] == labels[0, 6, 6]).all()
    assert labels[0, 0, 0] == 0 and labels[0, 1, 1] != labels[0, 6, 6]
    # with background="ignore" every cluster is an instance
    ign = EmbeddingTask(3, delta_v=0.0, delta_d=3.0, background="ignore").postprocess(emb)
    assert set(ign.unique().tolist()) == {1, 2, 3}


def test_metrics() -> None:
    gt = np.array([[0, 1, 1], [0, 2, 2]])
    acc = EmbeddingTask(3).new_metrics()
    acc.update(gt.copy(), gt)
    acc.update(np.array([[0, 1, 1], [0, 1, 1]]), gt)  # merged: 1 object for 2
    m = acc.compute()
    # second image: TP = 2, gt pairs = 2, pred pairs = 6 -> error 1 - 4/8
    assert m["arand"] == pytest.approx((0 + 0.5) / 2)
    assert m["dic"] == pytest.approx((0 + 1) / 2)


def test_loss_parts() -> None:
    task = EmbeddingTask(2)
    out = torch.randn(2, 2, 6, 6, requires_grad=True)
    target = torch.randint(-1, 3, (2, 6, 6))
    loss, parts = task.loss(out, target)
    assert set(parts) == {"pull", "push", "reg"} and all(math.isfinite(v) for v in parts.values())
    loss.backward()
    with pytest.raises(InputError, match="channels"):
        task.loss(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def test_trains_end_to_end(tmp_path: Path) -> None:
    def sample(offset: int, seed: int, name: str):  # noqa: ANN202
        image, labels = disc_grid((64, 64), spacing=15, radius=5, offset=offset, noise=0.05, seed=seed)
        return make_sample(image, labels, ndim=2, normalize_mode="none", name=name)

    train = [sample(o, i, f"t{i}") for i, o in enumerate((6, 8, 10))]
    val = [sample(7, 9, "v")]
    cfg = validate_config({
        "out": str(tmp_path / "run"),
        "seed": 0,
        "task": {"name": "embedding", "delta_v": 0.5, "delta_d": 1.5},
        "model": {"out_channels": 3, "depth": 2, "base_features": 8, "padding": "valid", "norm": "batch"},
        "data": {"patch_shape": [52, 52], "batch_size": 2, "augment": {"flip": True, "rot90": True}},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "training": {"iterations": 20, "val_every": 10, "checkpoint_every": 20, "device": "cpu"},
    })
    result = Trainer(cfg, train_samples=train, val_samples=val, progress=False).fit()
    assert result.iterations == 20
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records]
    assert len(losses) == 2 and losses[1] < losses[0]
    for r in records:
        assert 0.0 <= r["val/arand"] <= 1.0
        assert math.isfinite(r["val/dic"]) and r["val/dic"] >= 0
        assert all(math.isfinite(r[f"train/{k}"]) for k in ("pull", "push", "reg"))
    assert result.best_metric is not None and 0.0 <= result.best_metric <= 1.0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
