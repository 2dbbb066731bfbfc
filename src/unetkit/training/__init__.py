"""Training: the one trainer every method uses (configs, tasks and run folders live below it,
in :mod:`unetkit.config`, :mod:`unetkit.tasks` and :mod:`unetkit.runs`)."""

from unetkit.config import RunConfig, load_config, validate_config
from unetkit.runs import load_model
from unetkit.tasks import TASKS, EmbeddingTask, SemanticTask, Task, build_task
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
