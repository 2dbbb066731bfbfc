"""unetkit: U-Net segmentation that knows its symmetries and its uncertainty.

``import unetkit`` stays light: subpackages are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("layers", "models", "losses", "metrics", "data", "training", "inference", "clustering", "reproduce",
                "tasks", "config", "runs")
"""Submodules reachable as attributes of ``unetkit`` (imported on first access)."""

__all__ = ["__version__", "UnetkitError", *_SUBPACKAGES]

from unetkit.errors import UnetkitError  # noqa: E402  (tiny module, no heavy imports)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"unetkit.{name}")
    raise AttributeError(f"module 'unetkit' has no attribute {name!r}")
