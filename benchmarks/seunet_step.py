"""Price of scale equivariance: SEU-Net against a U-Net of the same width, per training step.

Both networks are built with the same depth, base features and growth (same padding, batch
norm) and trained on the same random batch ``(B, 1, P, P)`` with random class labels: one step
is forward, cross-entropy, ``zero_grad`` / ``backward`` and an SGD step. The SEU-Net runs at
every number of scales S in ``--scales``; the U-Net once. After ``--warmup`` steps each, all
contenders are interleaved (the order reversed every round) for ``--rounds`` rounds and the
median seconds per step are kept.

Memory: the bytes of the tensors autograd saves for the backward pass during one forward
(``torch.autograd.graph.saved_tensors_hooks``; the activation memory of training, exact and
independent of the allocator), and on CUDA also the peak allocated memory of one step. Printed:
seconds per step and activation MiB for each, and both as ratios to the U-Net, so how they
grow with S shows in one table.

    .venv/bin/python benchmarks/seunet_step.py                       # 2-D, 128^2, batch 2, S = 1..4
    .venv/bin/python benchmarks/seunet_step.py --scales 1 2 4 --json seunet_step.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchcommon import (
    interleaved_medians,
    load,
    machine,
    saved_tensor_bytes,
    with_threads,
    write_report,
)
from torch import nn

from unetkit.models import SEUNet, UNet


def saved_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the tensors saved for backward by one forward + loss (each storage counted once)."""
    count = saved_tensor_bytes(lambda: nn.functional.cross_entropy(model(x), y))
    model.zero_grad(set_to_none=True)
    return count


def stepper(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], float]:
    """One timed training step of ``model`` on ``(x, y)``; returns its seconds."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    def step() -> float:
        t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return step


def cuda_peak(step: Callable[[], float], device: torch.device) -> int | None:
    """Peak allocated bytes of one step on CUDA (None on other devices)."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    step()
    return int(torch.cuda.max_memory_allocated(device))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    return with_threads(args.threads, lambda: run(args))


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 1, args.patch, args.patch, generator=g).to(device)
    y = torch.randint(0, args.classes, (args.batch, args.patch, args.patch), generator=g).to(device)
    torch.manual_seed(args.seed)
    models: dict[str, nn.Module] = {"unet": UNet(1, args.classes, ndim=2, depth=args.depth,
                                                 base_features=args.features, padding="same", norm="batch")}
    for s in args.scales:
        torch.manual_seed(args.seed)
        models[f"seunet_S{s}"] = SEUNet(1, args.classes, ndim=2, depth=args.depth, base_features=args.features,
                                        scales=s)
    for m in models.values():
        m.to(device)
    memory = {k: saved_bytes(m, x, y) for k, m in models.items()}
    steps = {k: stepper(m, x, y) for k, m in models.items()}
    peaks = {k: cuda_peak(fn, device) for k, fn in steps.items()}
    load_before = load()
    med, times = interleaved_medians(steps, args.rounds, args.warmup)
    load_after = load()
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    print(f"2-D, patch {args.patch}^2, batch {args.batch}, depth {args.depth}, {args.features} base features, "
          f"{args.classes} classes, {device}; load {load_before:.1f} -> {load_after:.1f}")
    print(f"{'model':<12} {'params':>9} {'s/step':>8} {'x U-Net':>8} {'act MiB':>9} {'x U-Net':>8}")
    for k in models:
        print(f"{k:<12} {params[k]:>9,} {med[k]:>8.4f} {med[k] / med['unet']:>8.2f} {memory[k] / 2**20:>9.1f} "
              f"{memory[k] / memory['unet']:>8.2f}")
    report = {
        "median_seconds": med, "all_seconds": times, "activation_bytes": memory, "cuda_peak_bytes": peaks,
        "parameters": params,
        "time_ratio_to_unet": {k: med[k] / med["unet"] for k in models},
        "memory_ratio_to_unet": {k: memory[k] / memory["unet"] for k in models},
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(load_before=load_before, load_after=load_after),
    }
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
