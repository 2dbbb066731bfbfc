"""Pieces the benchmark scripts share: thread count for one run, interleaved timing, the
machine record and the JSON output. Scripts import it from their own folder."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def with_threads(threads: int | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` with ``torch.set_num_threads(threads)`` (when given), restoring the count after:
    the smoke tests share the process with the rest of the suite."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def interleaved_medians(runs: dict[str, Callable[[], float]], rounds: int,
                        warmup: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Time every contender ``rounds`` times, alternating the order each round (after ``warmup``
    untimed calls each); each callable returns its own seconds. Returns (medians, all times)."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    order = list(runs)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            times[k].append(runs[k]())
    return {k: statistics.median(v) for k, v in times.items()}, times


def machine(**extra: Any) -> dict[str, Any]:
    """Platform, torch threads and the given extras (e.g. load averages before / after)."""
    return {"platform": platform.platform(), "threads": torch.get_num_threads(), **extra}


def load() -> float:
    """One-minute load average."""
    return os.getloadavg()[0]


def write_report(report: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """Write ``report`` as JSON to ``path`` (when given, saying so) and return it."""
    if path:
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")
    return report
