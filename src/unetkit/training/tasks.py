"""Tasks: what a method learns, declared once for the trainer, the CLI and ``reproduce``.

A task bundles the loss, the target preparation, the post-processing of raw network outputs
and the metrics. Adding a method means adding a :class:`Task` subclass and registering it in
:data:`TASKS`, not writing a new trainer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from unetkit.errors import ConfigError, InputError
from unetkit.losses import CEDiceLoss
from unetkit.metrics import ConfusionMatrix

IGNORE = -1
"""Target value of pixels without a label (outside the image in padded patches)."""


class MetricAccumulator(ABC):
    """Collects per-image results and reports dataset-level numbers."""

    @abstractmethod
    def update(self, prediction: np.ndarray, target: np.ndarray) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...


class _ConfusionAccumulator(MetricAccumulator):
    def __init__(self, num_classes: int) -> None:
        self.cm = ConfusionMatrix(num_classes, ignore_index=IGNORE)

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        self.cm.update(prediction, target)

    def compute(self) -> dict[str, float]:
        return self.cm.compute()


class Task(ABC):
    """Interface between the generic trainer and a method.

    Attributes:
        name: registry name.
        main_metric: key of :meth:`MetricAccumulator.compute` used to select the best checkpoint.
        main_mode: ``"max"`` or ``"min"``.
    """

    name: ClassVar[str]
    main_metric: ClassVar[str]
    main_mode: ClassVar[Literal["max", "min"]] = "max"

    @abstractmethod
    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        """Turn a label image ``(*S)`` as read from disk into the training target ``(*S)`` (int64)."""

    @abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss for ``(N, C, *S)`` outputs and ``(N, *S)`` targets, plus named parts for logging."""

    @abstractmethod
    def postprocess(self, output: Tensor) -> Tensor:
        """Raw outputs ``(N, C, *S)`` -> predictions ``(N, *S)``."""

    @abstractmethod
    def new_metrics(self) -> MetricAccumulator:
        """A fresh accumulator for one validation / evaluation pass."""


class SemanticTask(Task):
    """Semantic segmentation: cross-entropy + soft Dice; argmax; IoU and Dice.

    Args:
        num_classes: K = the model's output channels (K = 1: binary with a sigmoid).
        labels: ``"semantic"`` (label values are class ids 0..K-1) or ``"foreground"``
            (any non-zero label, e.g. an instance id, is class 1).
        ce_weight, dice_weight: loss weights.
    """

    name = "semantic"
    main_metric = "iou"
    main_mode = "max"

    def __init__(self, num_classes: int, *, labels: Literal["semantic", "foreground"] = "semantic",
                 ce_weight: float = 1.0, dice_weight: float = 1.0) -> None:
        self.num_classes = num_classes
        self.label_mode = labels
        self.criterion = CEDiceLoss(ce_weight=ce_weight, dice_weight=dice_weight, ignore_index=IGNORE)

    @property
    def n_label_classes(self) -> int:
        """Classes present in targets (2 for a single-logit binary model)."""
        return max(self.num_classes, 2)

    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        if self.label_mode == "foreground":
            return (labels > 0).astype(np.int64)
        top = int(labels.max(initial=0))
        if top >= self.n_label_classes:
            raise InputError(
                f"labels contain class id {top} but the model predicts {self.n_label_classes} classes "
                f"(0..{self.n_label_classes - 1}); raise model.out_channels, or set task.labels=foreground "
                "if the labels are instance ids"
            )
        return labels.astype(np.int64, copy=False)

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        parts = self.criterion.components(output, target)
        total = self.criterion.ce_weight * parts["ce"] + self.criterion.dice_weight * parts["dice"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def postprocess(self, output: Tensor) -> Tensor:
        if output.shape[1] == 1:
            return (output[:, 0] > 0).long()
        return output.argmax(dim=1)

    def new_metrics(self) -> MetricAccumulator:
        return _ConfusionAccumulator(self.n_label_classes)


TASKS: dict[str, type[Task]] = {"semantic": SemanticTask}


def build_task(task_cfg: Any, model_cfg: Any) -> Task:
    """Task from the ``task`` and ``model`` sections of a :class:`~unetkit.training.config.RunConfig`."""
    if task_cfg.name not in TASKS:
        raise ConfigError(f"unknown task {task_cfg.name!r}; known tasks: {', '.join(sorted(TASKS))}")
    if task_cfg.name == "semantic":
        return SemanticTask(model_cfg.out_channels, labels=task_cfg.labels,
                            ce_weight=task_cfg.ce_weight, dice_weight=task_cfg.dice_weight)
    raise ConfigError(f"task {task_cfg.name!r} has no builder")  # pragma: no cover


def predict_labels(task: Task, output: np.ndarray) -> np.ndarray:
    """Post-process one raw output ``(C, *S)`` (NumPy) into a prediction ``(*S)``."""
    return task.postprocess(torch.from_numpy(output)[None])[0].numpy()
