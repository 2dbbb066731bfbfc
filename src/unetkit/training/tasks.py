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
from unetkit.losses import CEDiceLoss, DiscriminativeLoss
from unetkit.metrics import ConfusionMatrix
from unetkit.metrics.instance import adapted_rand_error, count_objects

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


class _InstanceAccumulator(MetricAccumulator):
    """Per-image instance metrics, averaged over images.

    ``arand``: adapted Rand error (:func:`unetkit.metrics.instance.adapted_rand_error`, gt
    background excluded; images without gt objects are skipped); ``dic``: mean absolute
    difference in object count ``|#pred - #gt|`` (objects = ids > 0). Target pixels < 0
    (unlabelled) are left out of both.
    """

    def __init__(self) -> None:
        self.arand: list[float] = []
        self.dic: list[float] = []

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        pred, tgt = np.asarray(prediction), np.asarray(target)
        labelled = tgt >= 0
        pred, tgt = pred[labelled], tgt[labelled]
        self.arand.append(float(adapted_rand_error(pred, tgt)))
        self.dic.append(float(abs(count_objects(pred) - count_objects(tgt))))

    def compute(self) -> dict[str, float]:
        ar = np.asarray(self.arand, dtype=np.float64)
        return {
            "arand": float(np.nanmean(ar)) if np.isfinite(ar).any() else float("nan"),
            "dic": float(np.mean(self.dic)) if self.dic else float("nan"),
        }


class EmbeddingTask(Task):
    """Instance segmentation by metric learning: discriminative loss, mean-shift clustering.

    The network predicts an ``embedding_dim``-dimensional embedding per pixel (its output
    channels). Training targets are instance ids (0 = background, any non-negative ids, not
    necessarily consecutive). Post-processing clusters each image's embeddings with
    :func:`unetkit.clustering.mean_shift`. With ``background="instance"`` the background is
    one more cluster and the *largest* cluster of each image is taken as the background
    (label 0); with ``background="ignore"`` the background is not learnt and every cluster is
    an instance.

    Args:
        embedding_dim: E = the model's output channels.
        delta_v, delta_d, alpha, beta, gamma, background: of
            :func:`unetkit.losses.discriminative_loss` (push margin ``2 * delta_d``).
        bandwidth: mean-shift bandwidth; default ``delta_v`` if ``delta_v > 0`` else ``delta_d``.
            Gaussian kernel: ``exp(-d^2 / bandwidth)``; flat kernel: radius.
        kernel: ``"gaussian"`` (the shift-equivariance paper's convention) or ``"flat"``.

    Metrics: ``arand`` (adapted Rand error, main metric, lower is better) and ``dic``
    (mean ``|#pred - #gt|``).
    """

    name = "embedding"
    main_metric = "arand"
    main_mode = "min"

    def __init__(self, embedding_dim: int, *, delta_v: float = 0.5, delta_d: float = 1.5, alpha: float = 1.0,
                 beta: float = 1.0, gamma: float = 0.001, background: Literal["instance", "ignore"] = "instance",
                 bandwidth: float | None = None, kernel: Literal["gaussian", "flat"] = "gaussian") -> None:
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1:
            raise ConfigError(f"embedding_dim={embedding_dim!r} must be an integer >= 1 (model.out_channels)")
        if bandwidth is None:
            bandwidth = delta_v if delta_v > 0 else delta_d
        if not bandwidth > 0:
            raise ConfigError(f"bandwidth={bandwidth!r} must be > 0 (delta_v and delta_d are both 0?)")
        if kernel not in ("gaussian", "flat"):
            raise ConfigError(f"kernel={kernel!r} must be 'gaussian' or 'flat'")
        self.embedding_dim = int(embedding_dim)
        self.background = background
        self.bandwidth = float(bandwidth)
        self.kernel = kernel
        self.criterion = DiscriminativeLoss(delta_v=delta_v, delta_d=delta_d, alpha=alpha, beta=beta, gamma=gamma,
                                            background=background, ignore_index=IGNORE)

    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        lab = np.asarray(labels)
        if lab.dtype.kind == "f":
            if not np.all(np.isfinite(lab)) or not np.array_equal(lab, np.round(lab)):
                raise InputError(f"instance labels must be integers, got non-integral {lab.dtype} values")
        elif lab.dtype.kind not in "biu":
            raise InputError(f"instance labels must be integers, got dtype {lab.dtype}")
        low = lab.min(initial=0)
        if low < 0:
            raise InputError(f"instance labels must be >= 0 (0 = background), found {low}")
        return lab.astype(np.int64, copy=False)

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        if output.shape[1] != self.embedding_dim:
            raise InputError(f"output has {output.shape[1]} channels, the task expects {self.embedding_dim}")
        total, parts = self.criterion.components(output, target)
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def postprocess(self, output: Tensor) -> Tensor:
        from unetkit.clustering import mean_shift

        out = []
        for emb in output.detach():
            lab = mean_shift(emb, bandwidth=self.bandwidth, kernel=self.kernel).long()
            if self.background == "instance" and lab.numel():
                counts = torch.bincount(lab.reshape(-1))
                counts[0] = -1  # (no pixel has label 0 here)
                big = int(torch.argmax(counts))
                lab = torch.where(lab == big, 0, torch.where(lab > big, lab - 1, lab))
            out.append(lab)
        if not out:
            return torch.zeros((0, *output.shape[2:]), dtype=torch.long, device=output.device)
        return torch.stack(out)

    def new_metrics(self) -> MetricAccumulator:
        return _InstanceAccumulator()


TASKS: dict[str, type[Task]] = {"semantic": SemanticTask, "embedding": EmbeddingTask}


def build_task(task_cfg: Any, model_cfg: Any) -> Task:
    """Task from the ``task`` and ``model`` sections of a :class:`~unetkit.training.config.RunConfig`."""
    if task_cfg.name not in TASKS:
        raise ConfigError(f"unknown task {task_cfg.name!r}; known tasks: {', '.join(sorted(TASKS))}")
    if task_cfg.name == "semantic":
        return SemanticTask(model_cfg.out_channels, labels=task_cfg.labels,
                            ce_weight=task_cfg.ce_weight, dice_weight=task_cfg.dice_weight)
    if task_cfg.name == "embedding":
        # model.out_channels is the embedding dimension (EmbeddingTask refuses one below 1)
        return EmbeddingTask(model_cfg.out_channels, delta_v=task_cfg.delta_v, delta_d=task_cfg.delta_d,
                             alpha=task_cfg.alpha, beta=task_cfg.beta, gamma=task_cfg.gamma,
                             background=task_cfg.background, bandwidth=task_cfg.bandwidth, kernel=task_cfg.kernel)
    raise ConfigError(f"task {task_cfg.name!r} has no builder")  # pragma: no cover


def predict_labels(task: Task, output: np.ndarray) -> np.ndarray:
    """Post-process one raw output ``(C, *S)`` (NumPy) into a prediction ``(*S)``."""
    return task.postprocess(torch.from_numpy(output)[None])[0].numpy()
