"""The task registry: each task class registers under its name with its config schema.

A run config's ``task`` section is validated by the schema of the task that ``task.name``
selects (default ``semantic``), with the same one-line errors as every other section.
Registering a name twice is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from unetkit.errors import ConfigError
from unetkit.tasks.base import Task, TaskConfig
from unetkit.utils.schema import validate_named_section

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.models.registry import ModelConfig

TASKS: dict[str, type[Task]] = {}
DEFAULT_TASK = "semantic"


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a :class:`Task` subclass under ``cls.name`` (schema ``cls.config``).

    Raises:
        ValueError: the name is taken, or the class has no ``name`` / ``config`` schema.
    """
    name = getattr(cls, "name", None)
    config = getattr(cls, "config", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute name (a non-empty string)")
    if not (isinstance(config, type) and issubclass(config, TaskConfig)):
        raise ValueError(f"task {name!r} needs a class attribute config, a subclass of TaskConfig")
    if name in TASKS:
        raise ValueError(f"a task named {name!r} is already registered ({TASKS[name].__name__})")
    TASKS[name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Remove a registered task (plugins and tests); unknown names are ignored."""
    TASKS.pop(name, None)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(TASKS)


def task_class(name: Any) -> type[Task]:
    if not isinstance(name, str) or name not in TASKS:
        raise ConfigError(f"task.name: unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
    return TASKS[name]


def validate_task_config(raw: Any, *, prefix: Sequence[str] = ("task",), source: str | None = None) -> TaskConfig:
    """Validate a ``task`` section (a dict with ``name``, default ``"semantic"``) with its task's schema."""
    return validate_named_section(raw, kind="task", default=DEFAULT_TASK, schema_of=lambda n: task_class(n).config,
                                  base=TaskConfig, prefix=prefix, source=source)


def build_task(task_cfg: TaskConfig, model_cfg: ModelConfig) -> Task:
    """The task a validated ``task`` section describes, for the model of ``model_cfg``."""
    return task_class(task_cfg.name).from_config(task_cfg, model_cfg)


