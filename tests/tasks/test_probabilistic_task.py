"""The probabilistic task (HPU-Net / ProbU-Net objective) through the one trainer, with a tiny
fake probabilistic model (``tests/probabilistic_fake.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from killresume import assert_identical_tensors, assert_same_run
from probabilistic_fake import FakeProbNet, registered

from unetkit.config import validate_config
from unetkit.data.datasets import make_sample
from unetkit.data.synthetic import blobs
from unetkit.errors import ConfigError
from unetkit.tasks import ProbabilisticTask, build_task
from unetkit.training import Trainer


@pytest.fixture
def fake_model() -> Iterator[str]:
    with registered() as name:
        yield name


@pytest.fixture(scope="module")
def samples() -> list:
    out = []
    for seed in range(3):
        image, labels = blobs((40, 40), seed=seed)
        out.append(make_sample(image, labels, ndim=2))
    return out


def _cfg(out: Path, model: str = "test-prob", iterations: int = 4, **task: object) -> dict:
    return {"out": str(out), "seed": 4,
            "task": {"name": "probabilistic", "labels": "foreground", "topk": 0.1, **task},
            "model": {"name": model, "depth": 1, "base_features": 4, "norm": "none"},
            "data": {"patch_shape": [28, 28], "batch_size": 2},
            "training": {"iterations": iterations, "val_every": 2, "checkpoint_every": 2, "device": "cpu",
                         "threads": 1}}


def _data(samples: list) -> dict:
    return {"train_samples": samples[:2], "val_samples": samples[2:], "progress": False}


@pytest.mark.parametrize(("task", "keys", "absent"), [
    ({}, ("train/rec", "train/kl", "train/kl_0", "train/kl_1", "train/lambda", "train/rec_ma"), ()),
    ({"geco_update": "multiplicative"}, ("train/rec", "train/kl_1", "train/lambda"), ()),
    ({"objective": "elbo", "topk": None}, ("train/rec", "train/kl", "train/kl_0"), ("train/lambda", "train/rec_ma")),
])
def test_trains_and_logs_its_parts(fake_model: str, samples: list, tmp_path: Path, task: dict,
                                   keys: tuple[str, ...], absent: tuple[str, ...]) -> None:
    trainer = Trainer(validate_config(_cfg(tmp_path / "run", **task)), **_data(samples))
    assert isinstance(trainer.task, ProbabilisticTask) and isinstance(trainer.model, FakeProbNet)
    geco = trainer.task.geco
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    if task.get("objective") == "elbo":
        assert geco is None and trainer.task.state_dict() == {}
    elif task.get("geco_update") == "multiplicative":
        assert geco is not None and geco.w is None
    else:
        assert geco is not None and geco.w is not None and id(geco.w) in optimised  # same optimizer ascends w
    lam0 = geco.lagrange_multiplier.item() if geco is not None else None
    trainer.fit()
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    for key in keys:
        assert all(isinstance(r[key], float) for r in log), key
    for key in absent:
        assert key not in log[-1]
    assert "val/iou" in log[-1]
    if geco is not None:
        assert log[-1]["train/lambda"] != lam0  # lambda moved
        assert log[-1]["train/kl"] == pytest.approx(log[-1]["train/kl_0"] + log[-1]["train/kl_1"], rel=1e-5)


class Killed(BaseException):
    """Stands for SIGKILL mid-step, after the checkpoint at step 2."""


@pytest.mark.parametrize("rule", ["ascent", "multiplicative"])
def test_interrupted_and_resumed_run_is_bitwise_the_uninterrupted_one(fake_model: str, samples: list,
                                                                       tmp_path: Path, rule: str) -> None:
    ref = Trainer(validate_config(_cfg(tmp_path / "ref", geco_update=rule)), **_data(samples))
    ref.fit()
    first = Trainer(validate_config(_cfg(tmp_path / "cut", geco_update=rule)), **_data(samples))
    real = first.task.training_step

    def dying(model, batch):
        if first.step == 2:
            raise Killed
        return real(model, batch)

    first.task.training_step = dying  # type: ignore[method-assign]
    with pytest.raises(Killed):
        first.fit()
    resumed = Trainer(validate_config(_cfg(tmp_path / "cut", geco_update=rule)), resume=True, **_data(samples))
    geco = resumed.task.geco
    assert geco is not None
    w = geco.w
    resumed.fit()
    assert geco.w is w  # restored in place: the optimizer still updates the same tensor
    assert_same_run(tmp_path / "ref", tmp_path / "cut")
    assert ref.task.geco is not None
    assert_identical_tensors(ref.task.geco.state_dict(), geco.state_dict(), "geco")
    saved = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)["task"]["geco"]
    assert {"rec_ma", "initialised"} <= set(saved) and ("w" in saved) == (rule == "ascent")


def test_refuses_a_model_that_is_not_probabilistic(samples: list, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run")
    cfg["model"] = {"name": "unet", "depth": 1, "base_features": 4}
    with pytest.raises(ConfigError, match="needs a probabilistic model \\(hpunet, probunet\\); model 'unet'") as exc:
        Trainer(validate_config(cfg), **_data(samples))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("key", "value"), [("kappa", 0), ("kappa", -1.0), ("topk", 0), ("topk", 1.5),
                                            ("objective", "vae"), ("geco_update", "sgd"), ("geco_decay", 1.0)])
def test_bad_settings_name_the_key(tmp_path: Path, key: str, value: object) -> None:
    cfg = _cfg(tmp_path / "run", **{key: value})
    cfg["model"] = {"name": "unet"}
    with pytest.raises(ConfigError, match=f"task.{key}"):
        validate_config(cfg)


def test_labels_postprocess_and_predictor(fake_model: str, tmp_path: Path) -> None:
    import numpy as np

    cfg = validate_config(_cfg(tmp_path / "run", labels="semantic"))
    task = build_task(cfg.task, cfg.model)
    assert isinstance(task, ProbabilisticTask) and task.samples == 16 and task.main_metric == "iou"
    assert np.array_equal(task.prepare_labels(np.array([[0, 1]])), np.array([[0, 1]]))
    out = torch.tensor([[[[0.0, 2.0]], [[1.0, 0.0]]]])
    assert task.postprocess(out).tolist() == [[[1, 0]]]
    model = FakeProbNet(1, 2, depth=1, base_features=4, norm=None)
    task.setup(model)
    assert task.predictor(model) is model  # prior-mean point prediction


def test_weight_decay_spares_the_lagrange_multiplier(fake_model: str, samples: list, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run")
    cfg["optimizer"] = {"name": "adamw", "lr": 0.01, "weight_decay": 0.5}
    trainer = Trainer(validate_config(cfg), **_data(samples))
    w = trainer.task.geco.w
    groups = trainer.optimizer.param_groups
    (w_group,) = [g for g in groups if any(p is w for p in g["params"])]
    assert w_group["weight_decay"] == 0.0 and w_group["params"] == [w]
    others = [g for g in groups if g is not w_group]
    assert len(others) == 1 and others[0]["weight_decay"] == 0.5
    assert len(others[0]["params"]) == len(list(trainer.model.parameters()))
