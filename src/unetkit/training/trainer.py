"""The one training loop shared by every method.

The trainer knows nothing about a method beyond its :class:`~unetkit.tasks.Task`:
it samples patches, steps the optimiser, validates, logs and checkpoints. Counting is in
iterations (optimizer steps); validation happens every ``training.val_every`` iterations and
a resumable checkpoint is written every ``training.checkpoint_every`` iterations and at the end.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unetkit.config import RunConfig, dump_config
from unetkit.data.datasets import PatchSampler, Sample, load_folder, split_samples
from unetkit.data.transforms import build_augmentation
from unetkit.errors import ConfigError, InputError, TrainingDiverged
from unetkit.inference import predict
from unetkit.inference.tiling import InexactTilingWarning
from unetkit.models import build_model
from unetkit.runs import load_checkpoint, read_model_json, save_checkpoint, save_model_json, select_device
from unetkit.tasks import IGNORE, Task, build_task, predict_labels
from unetkit.utils.atomic import atomic_write_text, remove_stale_temporaries


class ShiftPeriodWarning(UserWarning):
    """The training output patch is smaller than the network's shift period f^l."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    run_dir: Path
    iterations: int
    best_metric: float | None
    final_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def parameter_groups(parameters: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups from ``Task.trainable_parameters``: the plain tensors in one
    group (the optimizer's defaults), each parameter-group dict (``{"params": [...], ...}``, its
    own settings) as it is; tensors without ``requires_grad`` are left out, empty groups dropped."""
    plain: list[torch.Tensor] = []
    groups: list[dict[str, Any]] = []
    for item in parameters:
        if isinstance(item, dict):
            kept = [p for p in item["params"] if p.requires_grad]
            if kept:
                groups.append({**item, "params": kept})
        elif item.requires_grad:
            plain.append(item)
    return ([{"params": plain}] if plain else []) + groups


def build_optimizer(parameters: Any, cfg: RunConfig) -> torch.optim.Optimizer:
    """Adam / AdamW over ``parameters`` (``Task.trainable_parameters``, see :func:`parameter_groups`):
    plain tensors get the config's learning rate and weight decay, a group dict's own settings
    override them (e.g. a Lagrange multiplier that must not decay)."""
    opt = cfg.optimizer
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    groups = parameter_groups(parameters)
    if not groups:
        raise ConfigError("the task leaves no trainable parameters for the optimizer")
    return cls(groups, lr=opt.lr, weight_decay=opt.weight_decay)


def check_training_window(model: nn.Module, output_shape: tuple[int, ...]) -> str | None:
    """The shift-equivariance paper's training rule: the output window must be larger than f^l.

    With a smaller window some of the f^l functions the network applies on the pooling grid
    are never trained as neighbours, and their predictions jump at every grid line. Returns a
    message naming the smallest patch that satisfies the rule, or None when it holds.
    """
    period = tuple(model.shift_period)
    if all(o > p for o, p in zip(output_shape, period)):
        return None
    need = tuple(max(o, p + 1) for o, p in zip(output_shape, period))
    covering = [o for o in model.valid_output_shapes(need) if all(a >= n for a, n in zip(o, need))]
    fix = ""
    if covering:
        patch = model.input_shape_for(min(covering, key=lambda o: sum(o)))
        fix = f"; use data.patch_shape={list(patch)} or larger"
    return (f"the training output patch {tuple(output_shape)} is not larger than the shift period "
            f"{period} = f^l on every axis, so neighbouring positions of the pooling grid are never "
            f"trained together and predictions jump on the f^l grid lines (Rumberger et al.){fix}")


RUN_FILES = ("config.yaml", "model.json", "metrics.jsonl", "training.png", "checkpoints/last.pt",
             "checkpoints/best.pt")
"""Files a new run writes into its folder (relative paths)."""


def check_new_run_folder(run_dir: Path) -> None:
    """Refuse a run folder that is not a folder, or that holds files a new run would replace.

    Checked before any data are loaded, so a bad ``out=`` fails at once and nothing is overwritten.
    """
    run_dir = Path(run_dir)
    for folder in (run_dir, *run_dir.parents):  # the nearest existing folder must be a folder
        if folder.exists():
            if not folder.is_dir():
                where = "is an existing file" if folder == run_dir else f"is inside {folder}, which is a file"
                raise ConfigError(f"out={run_dir} {where}, not a run folder; choose another out=...")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"out={run_dir}: the folder {folder} is not writable; choose another out=...")
            break
    taken = [name for name in RUN_FILES if (run_dir / name).exists()]
    if taken:
        raise ConfigError(
            f"run folder {run_dir} already holds {', '.join(taken)}, which a new run would replace (it holds no "
            "resumable run: no checkpoints/last.pt); choose another out=..., or move those files away"
        )


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: RunConfig, mode: str) -> Any:
    sch = cfg.scheduler
    if sch.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.training.iterations, eta_min=sch.min_lr)
    if sch.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=sch.factor, patience=sch.patience, min_lr=sch.min_lr
        )
    return None


class Trainer:
    """Train a model for a task described by a :class:`RunConfig`.

    Args:
        cfg: the resolved configuration; ``cfg.out`` is the run folder.
        train_samples, val_samples: in-memory data (Python API); when None they are read from
            ``cfg.data.train`` / ``cfg.data.val`` (or split off by ``cfg.data.val_fraction``).
        resume: continue from ``<out>/checkpoints/last.pt``. Without it, a run folder that
            already holds checkpoints is refused, so nothing is overwritten by accident.
        progress: show a tqdm progress bar (only on a terminal).
        task: a :class:`Task` instance to use instead of the one ``cfg.task`` describes
            (Python API; e.g. a task with a modified loss for an experiment).
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        train_samples: list[Sample] | None = None,
        val_samples: list[Sample] | None = None,
        resume: bool = False,
        progress: bool = True,
        task: Task | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.out)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume = resume
        self.progress = progress
        last = self.ckpt_dir / "last.pt"
        if resume and not last.is_file():
            raise InputError(f"cannot resume: {last} does not exist")
        if not resume and last.is_file():
            raise ConfigError(
                f"run folder {self.run_dir} already holds a run ({last}); resume it with "
                f"`unetkit train --resume {self.run_dir}` or choose another out=..."
            )
        if not resume:
            check_new_run_folder(self.run_dir)
        if cfg.training.threads:
            torch.set_num_threads(cfg.training.threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.device = select_device(cfg.training.device)
        if resume:
            self._check_resumable()
        self.task: Task = task if task is not None else build_task(cfg.task, cfg.model)
        self.model = build_model(cfg.model).to(self.device)
        self.task.setup(self.model)
        self.optimizer = build_optimizer(self.task.trainable_parameters(self.model), cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.task.main_mode)
        self.input_shape = self.model.valid_input_shapes(cfg.data.patch_shape)[0]
        self.output_shape = self.model.output_shape(self.input_shape)
        message = check_training_window(self.model, self.output_shape)
        if message:
            warnings.warn(message, ShiftPeriodWarning, stacklevel=2)
        self.train_samples, self.val_samples = self._data(train_samples, val_samples)
        self.sampler = PatchSampler(
            self.train_samples, self.input_shape, self.output_shape, batch_size=cfg.data.batch_size,
            rng=self.rng, augment=build_augmentation(cfg.data.augment, cfg.model.ndim), ignore_index=IGNORE,
        )
        self.step = 0
        self.best: float | None = None

    # ------------------------------------------------------------------ data
    def _data(self, train: list[Sample] | None, val: list[Sample] | None) -> tuple[list[Sample], list[Sample]]:
        """Training and validation samples. Every label image goes through the task's
        ``prepare_validation_labels`` (checks, as read); training samples then through
        ``prepare_labels`` (e.g. SPOCO@p keeps a fraction of the objects), after the split, and
        those with an annotated background mask through ``prepare_background``. Validation
        samples keep the labels as read (their masks, if any, are not used)."""
        cfg = self.cfg
        check = self.task.prepare_validation_labels
        if train is None:
            if cfg.data.train is None:
                raise ConfigError("no training data: set data.train.images and data.train.labels")
            train = self._load(cfg.data.train.images, cfg.data.train.labels, cfg.data.train.background)
            if val is None and cfg.data.val is not None:
                val = self._load(cfg.data.val.images, cfg.data.val.labels)
        else:
            train = [replace(s, labels=check(s.labels)) for s in train]
            if val is not None:
                val = [replace(s, labels=check(s.labels)) for s in val]
        if val is None:
            split_rng = np.random.default_rng([cfg.seed, 1])
            train, val = split_samples(train, cfg.data.val_fraction, split_rng)
        if not train:
            raise InputError("no training samples left after the validation split; lower data.val_fraction")
        train = [self._training_sample(s) for s in train]
        return train, val

    def _training_sample(self, sample: Sample) -> Sample:
        """The sample with its training target (``prepare_labels``, then ``prepare_background``
        when it has a mask); an ``InputError`` is prefixed with the sample's name."""
        try:
            target = self.task.prepare_labels(sample.labels)
            if sample.background is not None:
                target = self.task.prepare_background(target, sample.background)
        except InputError as exc:
            raise type(exc)(f"{sample.name}: {exc}" if sample.name else str(exc)) from None
        return replace(sample, labels=target)

    def _load(self, images: Path, labels: Path, background: Path | None = None) -> list[Sample]:
        d = self.cfg.data
        return load_folder(
            images, labels, ndim=self.cfg.model.ndim, channels=self.cfg.model.in_channels, axes=d.axes,
            label_axes=d.label_axes, normalize_mode=d.normalize.mode,
            normalize_kwargs=d.normalize.kwargs(),
            prepare_labels=self.task.prepare_validation_labels, background=background,
        )

    def _check_resumable(self) -> None:
        """On resume, the model and task sections must be those the run was started with."""
        run_model = {"name": (saved := read_model_json(self.run_dir)).name, **saved.kwargs()}
        given = {"name": self.cfg.model.name, **self.cfg.model.kwargs()}
        changed = [f"model.{k} (run: {run_model.get(k)!r}, given: {given.get(k)!r})"
                   for k in sorted(set(run_model) | set(given)) if run_model.get(k) != given.get(k)]
        if changed:
            raise ConfigError(
                f"cannot resume {self.run_dir} with a different model: {', '.join(changed)}; the checkpoint's "
                "weights only fit the model they were trained with. Keys that may change on resume: training.* (e.g. iterations) "
                "and data.*; start a new run (another out=...) to change the model"
            )

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "step": self.step,
            "best": self.best if self.best is not None else float("nan"),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "task": self.task.state_dict(),
        }

    def _restore(self) -> None:
        # a process killed while writing leaves its hidden temporary file behind; the
        # checkpoint it was replacing is intact (atomic rename), so the leftovers can go
        remove_stale_temporaries(self.ckpt_dir)
        state = load_checkpoint(self.ckpt_dir / "last.pt", map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        best = float(state["best"])
        self.best = None if math.isnan(best) else best
        torch.set_rng_state(state["torch_rng"].cpu())
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.task.load_state_dict(state.get("task", {}))
        self._truncate_log(self.step)

    def _truncate_log(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone)."""
        log = self.run_dir / "metrics.jsonl"
        if log.is_file():
            kept = [ln for ln in log.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
            atomic_write_text(log, "".join(ln + "\n" for ln in kept))

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _save_last(self) -> None:
        save_checkpoint(self.ckpt_dir / "last.pt", self._state())

    def _is_better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.task.main_mode == "max" else value < self.best

    # ------------------------------------------------------------------ loop
    def validate(self) -> dict[str, float]:
        """Predict every validation image whole and return the task's metrics."""
        acc = self.task.new_metrics()
        for s in self.val_samples:
            with warnings.catch_warnings():  # inexact tiling is said by predict's users, not at every validation
                warnings.simplefilter("ignore", InexactTilingWarning)
                out = predict(self.model, s.image, predictor=self.task.predictor(self.model))
            acc.update(predict_labels(self.task, out), s.labels)
        return acc.compute()

    def fit(self) -> FitResult:
        """Run (or continue) training until ``training.iterations``; returns a :class:`FitResult`."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            self._restore()
        else:
            atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
            save_model_json(self.run_dir, cfg.model.name, cfg.model.model_dump(mode="json", exclude={"name"}))
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        from tqdm.auto import tqdm

        total = cfg.training.iterations
        bar = tqdm(total=total, initial=self.step, desc="train", unit="it", dynamic_ncols=True,
                   disable=not (self.progress and sys.stderr.isatty()))
        t0 = time.perf_counter()
        running: list[float] = []
        metrics: dict[str, float] = {}
        self.model.train()
        try:
            while self.step < total:
                batch = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
                         for k, v in self.task.make_batch(self.sampler).items()}
                loss, parts = self.task.training_step(self.model, batch)
                value = float(loss.detach())
                if not math.isfinite(value):
                    self._log({"step": self.step + 1, "event": "diverged", "loss": str(value)})
                    kept = self.ckpt_dir / "last.pt"
                    where = f"the last good checkpoint {kept} is kept" if kept.is_file() else "no checkpoint had been written yet"
                    raise TrainingDiverged(
                        f"training loss became {value} at iteration {self.step + 1}; stopped, {where}. "
                        f"Try a lower optimizer.lr (now {cfg.optimizer.lr}) or check the data"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                if self.scheduler is not None and cfg.scheduler.name == "cosine":
                    self.scheduler.step()
                self.step += 1
                self.task.after_step(self.model, self.step)
                running.append(value)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
                if self.step % cfg.training.val_every == 0 or self.step == total:
                    metrics = self._validate_and_log(running, parts)
                    running = []
                if self.step % cfg.training.checkpoint_every == 0 or self.step == total:
                    self._save_last()
        finally:
            bar.close()
        self._plot()
        return FitResult(self.run_dir, self.step, self.best, metrics, time.perf_counter() - t0)

    def _validate_and_log(self, running: list[float], parts: dict[str, float]) -> dict[str, float]:
        record: dict[str, Any] = {
            "step": self.step,
            "train/loss": float(np.mean(running)) if running else None,
            **{f"train/{k}": v for k, v in parts.items()},
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        metrics: dict[str, float] = {}
        if self.val_samples:
            metrics = self.validate()
            self.model.train()
            record.update({f"val/{k}": v for k, v in metrics.items()})
            main = metrics[self.task.main_metric]
            if self.scheduler is not None and self.cfg.scheduler.name == "plateau":
                self.scheduler.step(main)
            if self._is_better(main):
                self.best = main
                save_checkpoint(self.ckpt_dir / "best.pt", {"model": self.model.state_dict(), "step": self.step,
                                                           self.task.main_metric: main})
        else:
            # without validation data the latest weights are the best we know
            save_checkpoint(self.ckpt_dir / "best.pt", {"model": self.model.state_dict(), "step": self.step})
        self._log(record)
        return metrics

    def _plot(self) -> None:
        from unetkit.report import plot_training_curves

        plot_training_curves(self.run_dir / "metrics.jsonl", self.run_dir / "training.png")


def train(cfg: RunConfig, **kwargs: Any) -> FitResult:
    """Build a :class:`Trainer` and run it (see its arguments)."""
    return Trainer(cfg, **kwargs).fit()
