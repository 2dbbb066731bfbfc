"""Tasks: what each method learns (targets, training step, post-processing, metrics).

A method is a model, a task and a config: the one trainer, the CLI, inference and
``reproduce`` use every task through the :class:`Task` interface. Tasks register by name
with their config schema (:func:`register_task`).
"""

from unetkit.tasks.base import IGNORE, Batch, MetricAccumulator, Task, TaskConfig, predict_labels
from unetkit.tasks.momentum import MomentumNetwork
from unetkit.tasks.registry import (
    TASKS,
    build_task,
    list_tasks,
    register_task,
    unregister_task,
    validate_task_config,
)
from unetkit.tasks.semantic import SemanticTask, SemanticTaskConfig  # registers "semantic"
from unetkit.tasks.embedding import EmbeddingTask, EmbeddingTaskConfig  # registers "embedding"  # noqa: I001
from unetkit.tasks.spoco import SpocoTask, SpocoTaskConfig  # registers "spoco"  # noqa: I001
from unetkit.tasks.probabilistic import ProbabilisticTask, ProbabilisticTaskConfig  # registers "probabilistic"

__all__ = [
    "IGNORE",
    "TASKS",
    "Batch",
    "EmbeddingTask",
    "EmbeddingTaskConfig",
    "MetricAccumulator",
    "MomentumNetwork",
    "ProbabilisticTask",
    "ProbabilisticTaskConfig",
    "SemanticTask",
    "SemanticTaskConfig",
    "SpocoTask",
    "SpocoTaskConfig",
    "Task",
    "TaskConfig",
    "build_task",
    "list_tasks",
    "predict_labels",
    "register_task",
    "unregister_task",
    "validate_task_config",
]
