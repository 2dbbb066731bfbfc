"""Every hook of the Task interface, exercised by a test task (``hooks_task.HooksTask``):
own batches (two views), own training step, state beside the weights (an EMA copy), an update
after each optimizer step, parameters kept out of the optimizer, a predictor for inference;
and a SIGKILL mid-run followed by ``--resume`` that reproduces the uninterrupted run bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hooks_task import HooksTask, ensure_registered
from killresume import assert_same_run, kill_and_resume

from unetkit.data.synthetic import write_dataset
from unetkit.errors import InputError
from unetkit.tasks import SemanticTask, build_task, list_tasks, register_task
from unetkit.training import Trainer, validate_config

HERE = Path(__file__).resolve().parents[1]  # tests/, where hooks_task.py lives


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, 3, (64, 64), seed=5, semantic=False)
    return root


def hooks_config(data: Path, out: Path, iterations: int = 6) -> dict:
    return {
        "out": str(out), "seed": 3,
        "task": {"name": "test-hooks", "decay": 0.8},
        "model": {"depth": 2, "base_features": 4, "norm": "batch"},
        "data": {"train": {"images": str(data / "images"), "labels": str(data / "labels")},
                 "val_fraction": 0.34, "patch_shape": [60, 60], "batch_size": 2},
        "training": {"iterations": iterations, "val_every": 3, "checkpoint_every": 3, "device": "cpu", "threads": 1},
    }


def test_every_hook_is_called_and_does_its_job(data_dir: Path, tmp_path: Path) -> None:
    ensure_registered()
    trainer = Trainer(validate_config(hooks_config(data_dir, tmp_path / "run")), progress=False)
    task = trainer.task
    assert isinstance(task, HooksTask)
    bias_before = trainer.model.head.bias.detach().clone()
    weight_before = trainer.model.head.weight.detach().clone()
    trainer.fit()
    assert task.calls["setup"] == 1
    assert task.calls["make_batch"] == task.calls["training_step"] == task.calls["after_step"] == 6
    assert task.calls["predictor"] == 2  # one validation pass at steps 3 and 6
    assert task.updates == 6
    # the head bias was kept out of the optimizer; the rest of the head was trained
    assert torch.equal(trainer.model.head.bias, bias_before)
    assert not torch.equal(trainer.model.head.weight, weight_before)
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(trainer.model.head.bias) not in optimised
    # the EMA copy is task state: in the checkpoint, between the initial and the trained weights
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["task"]["updates"] == 6
    ema_w = state["task"]["ema"]["head.weight"]
    assert torch.equal(ema_w, task.ema.state_dict()["head.weight"])
    assert not torch.equal(ema_w, trainer.model.head.weight.detach())
    assert not torch.equal(ema_w, weight_before)
    # the consistency term is logged as a named part
    assert "train/consistency" in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_resume_restores_task_state(data_dir: Path, tmp_path: Path) -> None:
    ensure_registered()
    cfg = validate_config(hooks_config(data_dir, tmp_path / "run", iterations=3))
    first = Trainer(cfg, progress=False)
    first.fit()
    cfg6 = validate_config({**hooks_config(data_dir, tmp_path / "run", iterations=6)})
    resumed = Trainer(cfg6, resume=True, progress=False)
    resumed.fit()
    assert resumed.task.updates == 6 and resumed.task.calls["after_step"] == 3


def test_sigkill_then_resume_is_bitwise_identical(data_dir: Path, tmp_path: Path) -> None:
    cfg = hooks_config(data_dir, tmp_path / "unused", iterations=24)
    cfg["training"].update(val_every=4, checkpoint_every=4)
    ref, killed = kill_and_resume(cfg, tmp_path, kill_after=8, imports="hooks_task", extra_path=HERE)
    assert_same_run(ref, killed)  # weights, optimizer, EMA state, step and metrics log


def test_registering_a_task_name_twice_is_an_error() -> None:
    ensure_registered()
    assert "test-hooks" in list_tasks() and "semantic" in list_tasks()

    class Again(SemanticTask):
        name = "semantic"

    with pytest.raises(ValueError, match="already registered"):
        register_task(Again)


def test_a_stateless_task_refuses_foreign_state() -> None:
    task = build_task(validate_config({}).task, validate_config({}).model)
    assert task.state_dict() == {}
    task.load_state_dict({})
    with pytest.raises(InputError, match="keeps no state"):
        task.load_state_dict({"ema": {}})
