"""Training: configuration schemas, tasks, the one trainer, checkpoints."""

from unetkit.training.checkpoint import load_model
from unetkit.training.config import RunConfig, load_config, validate_config
from unetkit.training.tasks import TASKS, EmbeddingTask, SemanticTask, Task, build_task
from unetkit.training.trainer import FitResult, Trainer, train

__all__ = [
    "TASKS",
    "EmbeddingTask",
    "FitResult",
    "RunConfig",
    "SemanticTask",
    "Task",
    "Trainer",
    "build_task",
    "load_config",
    "load_model",
    "train",
    "validate_config",
]
