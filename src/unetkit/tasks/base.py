"""The :class:`Task` interface: what a method learns, declared once for the trainer, the CLI,
inference and ``reproduce``.

A task bundles the target preparation, the training step (by default ``loss(model(x), y)``),
the post-processing of raw network outputs and the metrics. A method whose training differs
(two augmented views and a momentum network, a posterior net with KL terms and a Lagrange
multiplier) overrides the hooks below instead of writing a new trainer:

=====================  ==========================================================================
hook                   default
=====================  ==========================================================================
``setup(model)``       nothing; called once after the model is built and moved to its device,
                       before the optimizer is built (e.g. create an EMA copy of the model)
``trainable_``         ``model.parameters()``: what the optimizer updates (keep a frozen part
``parameters(model)``  or a momentum copy out of it)
``make_batch(s)``      ``{"image": (B, C, *I), "target": (B, *O)}`` from the patch sampler; a
                       task may draw several views of one patch or add keys
``training_step``      ``loss(model(batch["image"]), batch["target"])`` -> (loss, named parts)
``after_step``         nothing; called after every optimizer step (EMA update, multiplier ascent)
``state_dict`` /       ``{}``: state kept beside the weights, saved in every checkpoint and
``load_state_dict``    restored bitwise on resume (tensors and plain Python values only)
``predictor(model)``   ``model``: the callable that maps a batch of input tiles to raw outputs
                       at inference (a sampler, a mean over samples, ...)
=====================  ==========================================================================

``pointwise`` says whether :meth:`Task.postprocess` acts pixel by pixel (argmax) and may run
tile by tile, or needs the whole stitched output (clustering embeddings into instances).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from unetkit.errors import InputError
from unetkit.utils.schema import Strict

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.data.datasets import PatchSampler
    from unetkit.models.registry import ModelConfig

IGNORE = -1
"""Target value of pixels without a label (outside the image in padded patches)."""

Batch = dict[str, Any]
"""A training batch: named arrays (NumPy from :meth:`Task.make_batch`, tensors in the step)."""


class TaskConfig(Strict):
    """Keys every task section has; a task's own schema derives from this and narrows ``name``."""

    name: str

    examples: ClassVar[tuple[dict[str, Any], ...]] = ()
    """Small task sections (keys besides ``name``) for the contract test in
    ``tests/test_contract.py``, which trains every registered task a few steps on synthetic
    instance labels (``blobs``), interrupts it, resumes it and requires the result to be bitwise
    that of an uninterrupted run. ``"model"`` in an example overrides model keys of the test's
    small U-Net; a ``"model"`` section with a ``"name"`` replaces them (another model)."""

    def background_mask_problem(self) -> str | None:
        """Why this task section cannot use an annotated background mask (``data.train.background``),
        or None when it can (then the task implements :meth:`Task.prepare_background`)."""
        return (f"task {self.name!r} does not use a background mask; data.train.background is for "
                "task spoco with labels: sparse")


class MetricAccumulator(ABC):
    """Collects per-image results and reports dataset-level numbers."""

    @abstractmethod
    def update(self, prediction: np.ndarray, target: np.ndarray) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...


class Task(ABC):
    """Interface between the generic trainer (and inference) and a method.

    Attributes:
        name: registry name (``task.name`` in a config).
        config: the task's config schema (a :class:`TaskConfig` subclass).
        main_metric: key of :meth:`MetricAccumulator.compute` used to select the best checkpoint.
        main_mode: ``"max"`` or ``"min"``.
        pointwise: :meth:`postprocess` acts pixel by pixel and may run tile by tile.
    """

    name: ClassVar[str]
    config: ClassVar[type[TaskConfig]]
    main_metric: ClassVar[str]
    main_mode: ClassVar[Literal["max", "min"]] = "max"
    pointwise: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: TaskConfig, model_cfg: ModelConfig) -> Task:
        """Build the task from its validated config section and the model's."""

    # ------------------------------------------------------------------ data and outputs
    @abstractmethod
    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        """Turn a label image ``(*S)`` as read from disk into the training target ``(*S)`` (int64)."""

    def prepare_validation_labels(self, labels: np.ndarray) -> np.ndarray:
        """Label image as read -> validation target ``(*S)`` (default: :meth:`prepare_labels`).

        The trainer passes every label image through this first (validation and training
        alike), then training images also through :meth:`prepare_labels`; a task that makes
        its training labels sparse (SPOCO@p) validates against the dense labels this way.
        """
        return self.prepare_labels(labels)

    def prepare_background(self, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Training target ``(*S)`` (from :meth:`prepare_labels`) and an annotated background mask
        ``(*S)`` bool -> the target with the annotated background labelled.

        Called by the trainer only for training images that have a mask (never for validation);
        only tasks whose config's :meth:`TaskConfig.background_mask_problem` is None accept masks.
        """
        raise InputError(f"task {self.name!r} does not use a background mask; it is for task spoco with "
                         "labels: sparse")

    @abstractmethod
    def postprocess(self, output: Tensor) -> Tensor:
        """Raw outputs ``(N, C, *S)`` -> predictions ``(N, *S)``."""

    @abstractmethod
    def new_metrics(self) -> MetricAccumulator:
        """A fresh accumulator for one validation / evaluation pass."""

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss for ``(N, C, *S)`` outputs and ``(N, *S)`` targets, plus named parts for logging.

        Used by the default :meth:`training_step`; a task that overrides the step need not define it.
        """
        raise NotImplementedError(f"task {self.name!r} defines neither loss() nor training_step()")

    # ------------------------------------------------------------------ training hooks
    def setup(self, model: nn.Module) -> None:
        """Called once after the model is built and on its device, before the optimizer exists."""

    def trainable_parameters(self, model: nn.Module) -> Iterable[nn.Parameter | dict[str, Any]]:
        """Parameters the optimizer updates (default: all of the model's); an item may also be a
        parameter-group dict with its own optimizer settings, e.g. ``{"params": [w], "weight_decay": 0.0}``."""
        return model.parameters()

    def make_batch(self, sampler: PatchSampler) -> Batch:
        """One training batch as NumPy arrays: ``image`` ``(B, C, *I)`` float32, ``target`` ``(B, *O)`` int64.

        All randomness must come from ``sampler.rng`` (or torch's global generator) so that a
        resumed run draws the same batches.
        """
        image, target = sampler.sample()
        return {"image": image, "target": target}

    def training_step(self, model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Loss of one batch (tensors on the model's device) and named parts for the log."""
        return self.loss(model(batch["image"]), batch["target"])

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after optimizer step number ``step`` (1-based)."""

    def state_dict(self) -> dict[str, Any]:
        """State kept beside the weights (tensors and plain values), saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (on resume)."""
        if state:
            raise InputError(f"task {self.name!r} keeps no state, but the checkpoint holds task state {sorted(state)}")

    # ------------------------------------------------------------------ inference
    def predictor(self, model: nn.Module) -> Callable[[Tensor], Tensor]:
        """What inference runs on a batch of input tiles ``(N, C_in, *I)`` -> raw outputs ``(N, C, *O)``."""
        return model


def predict_labels(task: Task, output: np.ndarray) -> np.ndarray:
    """Post-process one raw output ``(C, *S)`` (NumPy) into a prediction ``(*S)``."""
    return task.postprocess(torch.from_numpy(np.ascontiguousarray(output))[None])[0].numpy()
