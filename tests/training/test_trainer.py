"""The trainer: determinism, resume after a kill, NaN stop, atomic checkpoints, schedules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from killresume import assert_same_run, kill_and_resume

from unetkit import runs as ckpt_mod
from unetkit.data.synthetic import write_dataset
from unetkit.errors import ConfigError, TrainingDiverged
from unetkit.training import Trainer, load_model, validate_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, 4, (64, 64), seed=3, semantic=True)
    return root


def tiny_config(data: Path, out: Path, **training: object) -> dict:
    return {
        "out": str(out),
        "seed": 7,
        "task": {"name": "semantic"},
        "model": {"depth": 2, "base_features": 4, "norm": "batch"},
        "data": {
            "train": {"images": str(data / "images"), "labels": str(data / "labels")},
            "val_fraction": 0.25,
            "patch_shape": [60, 60],
            "batch_size": 2,
            "augment": {"flip": True, "rot90": True, "elastic": {"alpha": 4, "sigma": 3, "p": 0.5}},
        },
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "scheduler": {"name": "cosine"},
        "training": {"iterations": 12, "val_every": 4, "checkpoint_every": 4, "device": "cpu", **training},
    }


def weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"{which}.pt", weights_only=True)["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"parameter {k} differs")


def test_run_folder_contents(data_dir: Path, tmp_path: Path) -> None:
    result = Trainer(validate_config(tiny_config(data_dir, tmp_path / "run")), progress=False).fit()
    run = result.run_dir
    assert result.iterations == 12
    for name in ("config.yaml", "model.json", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt", "training.png"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12]
    assert all(0.0 <= r["val/iou"] <= 1.0 and np.isfinite(r["train/loss"]) for r in records)
    assert records[-1]["lr"] < records[0]["lr"]  # cosine schedule decays
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 12
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["depth"] == 2 and resolved["optimizer"]["name"] == "adamw"
    model = load_model(run, "best")
    assert not model.training
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert best["iou"] == pytest.approx(max(r["val/iou"] for r in records))


def test_same_seed_same_numbers(data_dir: Path, tmp_path: Path) -> None:
    a = Trainer(validate_config(tiny_config(data_dir, tmp_path / "a", iterations=5)), progress=False).fit()
    b = Trainer(validate_config(tiny_config(data_dir, tmp_path / "b", iterations=5)), progress=False).fit()
    assert_same_weights(weights(a.run_dir), weights(b.run_dir))
    cfg = tiny_config(data_dir, tmp_path / "c", iterations=5)
    cfg["seed"] = 8
    c = Trainer(validate_config(cfg), progress=False).fit()
    assert any(not torch.equal(weights(a.run_dir)[k], weights(c.run_dir)[k]) for k in weights(a.run_dir))


def test_refuses_to_overwrite_a_run(data_dir: Path, tmp_path: Path) -> None:
    cfg = validate_config(tiny_config(data_dir, tmp_path / "run", iterations=2, val_every=1, checkpoint_every=1))
    Trainer(cfg, progress=False).fit()
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(cfg, progress=False)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_after_kill_matches_uninterrupted_run(data_dir: Path, tmp_path: Path) -> None:
    """SIGKILL a training process mid-run, resume it, and get bit-identical weights and log."""
    cfg = tiny_config(data_dir, tmp_path / "unused", iterations=40, val_every=5, checkpoint_every=5, threads=1)
    ref, killed = kill_and_resume(cfg, tmp_path, kill_after=10)
    assert_same_weights(weights(ref), weights(killed))
    assert_same_run(ref, killed)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = validate_config(tiny_config(data_dir, tmp_path / "run", iterations=10, val_every=3, checkpoint_every=3))
    trainer = Trainer(cfg, progress=False)
    real_loss = trainer.task.loss
    calls = {"n": 0}

    def poisoned(output: torch.Tensor, target: torch.Tensor):  # noqa: ANN202
        calls["n"] += 1
        loss, parts = real_loss(output, target)
        return (loss * float("nan"), parts) if calls["n"] == 5 else (loss, parts)

    monkeypatch.setattr(trainer.task, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match="iteration 5") as info:
        trainer.fit()
    assert "last good checkpoint" in str(info.value)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "diverged"


def test_failed_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    ckpt_mod.save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    before = path.read_bytes()

    def broken_save(obj: object, fh) -> None:  # noqa: ANN001
        fh.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt_mod.save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_plateau_scheduler_and_no_validation(data_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_dir, tmp_path / "run", iterations=6, val_every=2, checkpoint_every=6)
    cfg["scheduler"] = {"name": "plateau", "patience": 0, "factor": 0.5}
    cfg["data"]["val_fraction"] = 0.0
    result = Trainer(validate_config(cfg), progress=False).fit()
    assert result.final_metrics == {}
    assert (result.run_dir / "checkpoints" / "best.pt").is_file()


def test_in_memory_samples(tmp_path: Path) -> None:
    """The Python API trains from arrays without touching the disk for data."""
    from unetkit.data.datasets import make_sample
    from unetkit.data.synthetic import blobs

    samples = []
    for seed in range(3):
        image, labels = blobs((64, 64), seed=seed)
        samples.append(make_sample(image, labels, ndim=2))
    cfg = {"out": str(tmp_path / "run"), "task": {"labels": "foreground"},
           "model": {"depth": 1, "base_features": 4}, "data": {"patch_shape": [40, 40], "batch_size": 2},
           "training": {"iterations": 3, "val_every": 3, "checkpoint_every": 3, "device": "cpu"}}
    result = Trainer(validate_config(cfg), train_samples=samples[:2], val_samples=samples[2:], progress=False).fit()
    assert 0.0 <= result.final_metrics["iou"] <= 1.0


def test_corrupted_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    from unetkit.errors import InputError

    path = tmp_path / "last.pt"
    ckpt_mod.save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError, match="truncated, corrupted"):
        ckpt_mod.load_checkpoint(path)


def test_output_window_smaller_than_the_shift_period_is_warned(data_dir: Path, tmp_path: Path) -> None:
    """The paper's rule: the training output window must be larger than f^l (here 2^3 = 8)."""
    from unetkit.training.trainer import ShiftPeriodWarning

    cfg = tiny_config(data_dir, tmp_path / "run")
    cfg["model"]["depth"] = 3
    cfg["data"]["patch_shape"] = [92, 92]  # -> 4x4 output
    with pytest.warns(ShiftPeriodWarning, match=r"output patch \(4, 4\) is not larger than the shift period \(8, 8\)") as rec:
        trainer = Trainer(validate_config(cfg), progress=False)
    assert trainer.output_shape == (4, 4)
    suggested = [int(v) for v in str(rec[0].message).split("data.patch_shape=[")[1].split("]")[0].split(",")]
    cfg["data"]["patch_shape"] = suggested
    cfg["out"] = str(tmp_path / "run2")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ShiftPeriodWarning)
        fixed = Trainer(validate_config(cfg), progress=False)
    assert all(o > 8 for o in fixed.output_shape) and list(fixed.input_shape) == suggested
