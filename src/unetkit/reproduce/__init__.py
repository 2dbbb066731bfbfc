"""Each paper's key experiment, sized for a CPU, writing a report whose numbers come from the run."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

EXPERIMENTS = {"shift": "unetkit.reproduce.shift"}


def get_experiment(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of an experiment; ``KeyError`` lists the known names."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name]).run  # type: ignore[no-any-return]
