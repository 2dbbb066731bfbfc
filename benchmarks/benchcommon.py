"""Pieces the benchmark scripts share: thread count for one run, interleaved timing, the
activation memory of a training forward, the probabilistic models' command-line options, the
machine record and the JSON output. Scripts import it from their own folder."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")

PROBABILISTIC_MODELS = ("hpunet", "probunet")


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


def saved_tensor_bytes(loss: Callable[[], Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``loss()`` runs one forward + loss
    (each storage counted once): the activation memory of training, exact and independent of the
    allocator. Runs the backward pass too; the caller clears the gradients."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        if t.device.type != "meta":
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = loss()
    value.backward()
    return sum(seen.values())


def add_probabilistic_args(ap: argparse.ArgumentParser) -> None:
    """The architecture options of the HPU-Net and ProbU-Net benchmarks (defaults: the models')."""
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--levels", type=int, default=5, help="HPU-Net levels")
    ap.add_argument("--base", type=int, default=16, help="HPU-Net base channels")
    ap.add_argument("--max-channels", type=int, default=64, help="HPU-Net channel cap")
    ap.add_argument("--blocks", type=int, default=2, help="HPU-Net residual blocks per level")
    ap.add_argument("--latent-scales", type=int, default=3, help="HPU-Net latent scales")
    ap.add_argument("--latent-channels", type=int, default=1, help="HPU-Net latent channels")
    ap.add_argument("--depth", type=int, default=4, help="ProbU-Net depth")
    ap.add_argument("--features", type=int, default=16, help="ProbU-Net base features")
    ap.add_argument("--latent-dim", type=int, default=6, help="ProbU-Net latent dimensions")


def build_probabilistic(name: str, args: argparse.Namespace) -> nn.Module:
    """``hpunet`` or ``probunet`` (1 input channel, ``args.classes`` classes, 2-D) from the options
    of :func:`add_probabilistic_args`, seeded with ``args.seed``."""
    from unetkit.models import HPUNet, ProbUNet

    torch.manual_seed(args.seed)
    if name == "hpunet":
        return HPUNet(1, args.classes, ndim=2, levels=args.levels, base_channels=args.base,
                      max_channels=args.max_channels, blocks_per_level=args.blocks,
                      latent_scales=args.latent_scales, latent_channels=args.latent_channels)
    return ProbUNet(1, args.classes, ndim=2, depth=args.depth, base_features=args.features,
                    latent_dim=args.latent_dim)
