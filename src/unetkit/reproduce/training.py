"""The running of an experiment (:func:`experiment_clock`) and the training of one of its nets: the run config every ``reproduce`` experiment shares
(Adam with cosine decay to 0, one checkpoint at the end, no validation set, CPU) around the
experiment's own task, model and data sections, and the one Trainer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from unetkit.data.datasets import Sample
from unetkit.training import Trainer, validate_config


def train_in_memory(out: Path, name: str, samples: Sequence[Sample], *, task: dict[str, Any],
                    model: dict[str, Any], data: dict[str, Any], iterations: int, lr: float, threads: int = 2,
                    seed: int = 0, progress: bool = False, log_every: int | None = None) -> Trainer:
    """Train on in-memory ``samples`` into ``out/name``; returns the trainer, its model in eval mode.

    ``task``, ``model`` and ``data`` are the config sections (``data`` without folders: patch
    shape, batch size, augmentation, normalisation). ``log_every``: iterations between lines of
    ``metrics.jsonl`` (the task's loss terms of that step; default: one line at the end).
    """
    cfg = validate_config({
        "out": str(out / name), "seed": seed, "task": task, "model": model, "data": data,
        "optimizer": {"name": "adam", "lr": lr}, "scheduler": {"name": "cosine", "min_lr": 0.0},
        "training": {"iterations": iterations, "val_every": min(log_every or iterations, iterations), "checkpoint_every": iterations,
                     "device": "cpu", "threads": threads},
    })
    trainer = Trainer(cfg, train_samples=list(samples), val_samples=[], progress=progress)
    trainer.fit()
    trainer.model.eval()
    return trainer


class ExperimentClock:
    """Wall time since the experiment started, and its progress lines (printed when ``verbose``)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose, self.t0 = verbose, time.perf_counter()

    def seconds(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.t0

    def say(self, msg: str) -> None:
        """``[  12.3 s] msg`` on stdout when verbose."""
        if self.verbose:
            print(f"[{self.seconds():6.1f} s] {msg}", flush=True)


@contextmanager
def experiment_clock(verbose: bool) -> Iterator[ExperimentClock]:
    """The body of an experiment's ``run``: a clock, and torch's thread count restored afterwards
    (:func:`train_in_memory` sets it for each net)."""
    threads = torch.get_num_threads()
    try:
        yield ExperimentClock(verbose)
    finally:
        torch.set_num_threads(threads)
