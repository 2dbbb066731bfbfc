"""Semantic segmentation: cross-entropy + soft Dice, argmax, IoU and Dice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from torch import Tensor

from unetkit.errors import InputError
from unetkit.losses import CEDiceLoss
from unetkit.metrics import ConfusionMatrix
from unetkit.tasks.base import IGNORE, MetricAccumulator, Task, TaskConfig
from unetkit.tasks.registry import register_task

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.models.registry import ModelConfig


class SemanticTaskConfig(TaskConfig):
    """``task.name: semantic`` (:class:`SemanticTask`): CE + Dice."""

    name: Literal["semantic"] = "semantic"
    labels: Literal["semantic", "foreground"] = "semantic"
    ce_weight: float = Field(1.0, ge=0)
    dice_weight: float = Field(1.0, ge=0)

    examples: ClassVar[tuple[dict[str, Any], ...]] = ({"labels": "foreground"},)


class _ConfusionAccumulator(MetricAccumulator):
    def __init__(self, num_classes: int) -> None:
        self.cm = ConfusionMatrix(num_classes, ignore_index=IGNORE)

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        self.cm.update(prediction, target)

    def compute(self) -> dict[str, float]:
        return self.cm.compute()


@register_task
class SemanticTask(Task):
    """Semantic segmentation: cross-entropy + soft Dice; argmax; IoU and Dice.

    Args:
        num_classes: K = the model's output channels (K = 1: binary with a sigmoid).
        labels: ``"semantic"`` (label values are class ids 0..K-1) or ``"foreground"``
            (any non-zero label, e.g. an instance id, is class 1).
        ce_weight, dice_weight: loss weights.
    """

    name = "semantic"
    config = SemanticTaskConfig
    main_metric = "iou"
    main_mode = "max"
    pointwise = True

    @classmethod
    def from_config(cls, cfg: TaskConfig, model_cfg: ModelConfig) -> SemanticTask:
        assert isinstance(cfg, SemanticTaskConfig)
        return cls(model_cfg.out_channels, labels=cfg.labels, ce_weight=cfg.ce_weight, dice_weight=cfg.dice_weight)

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
