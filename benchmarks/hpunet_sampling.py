"""Batched sampling of the probabilistic models: n samples in one pass against n full passes.

``model.sample(x, n)`` runs the parts that do not depend on the latents once (HPU-Net: the prior
encoder; ProbU-Net: the U-Net and the prior encoder) and only the latent-dependent part n times,
as one batch of ``N * n`` items (HPU-Net: the latent scales and the stitching decoder; ProbU-Net:
the three 1x1 combination convolutions). The naive way draws each sample with its own full pass,
``model.sample(x, 1)`` n times (everything re-run per sample), and stacks the results.

Both models run in eval mode under ``torch.no_grad`` on one random image ``(1, 1, P, P)``: the
HPU-Net with its default config (levels 5, base 16, max 64, 2 blocks per level, 3 latent
scales, 1 latent channel) and the ProbU-Net with its default (depth 4, base 16, latent 6), 2
classes. After ``--warmup`` calls each, the four contenders (batched / naive per model) are
interleaved (the order reversed every round) for ``--rounds`` rounds and the median seconds
are kept. Printed per model: both times and the speed-up naive / batched (> 1: batching is
faster). Absolute times on a shared machine are noise; the ratio is the result.

Checks (printed, in the report, and asserted): the batched and the naive outputs both have shape
``(1, n, C, P, P)`` and are finite; the same generator seed gives bitwise the same batched
samples twice; the samples differ from one another (a mean per-pixel standard deviation of the
class-1 probability over the samples > 0; printed for both ways, which draw their noise in a
different order, so only its size is comparable, not the samples). On CUDA also the peak
allocated memory of one call of each contender.

    .venv/bin/python benchmarks/hpunet_sampling.py                      # 128^2, 16 samples, 5 rounds
    .venv/bin/python benchmarks/hpunet_sampling.py --size 64 --samples 32 --json sampling.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchcommon import PROBABILISTIC_MODELS as MODELS
from benchcommon import (
    add_probabilistic_args,
    interleaved_medians,
    load,
    machine,
    with_threads,
    write_report,
)
from benchcommon import build_probabilistic as build
from torch import Tensor, nn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched(model: nn.Module, x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` samples in one call: ``(1, n, C, *S)``."""
    with torch.no_grad():
        return model.sample(x, n, generator=generator)  # type: ignore[operator]


def naive(model: nn.Module, x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` samples, one full pass each, stacked: ``(1, n, C, *S)``."""
    with torch.no_grad():
        return torch.cat([model.sample(x, 1, generator=generator) for _ in range(n)], dim=1)  # type: ignore[operator]


def timed(fn: Callable[[], Tensor], device: torch.device) -> Callable[[], float]:
    def run() -> float:
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    return run


def cuda_peak(fn: Callable[[], Tensor], device: torch.device) -> int | None:
    """Peak allocated bytes of one call on CUDA (None on other devices)."""
    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return int(torch.cuda.max_memory_allocated(device))


def spread(samples: Tensor) -> float:
    """Mean over pixels of the standard deviation over samples of the class-1 probability."""
    return float(samples.softmax(dim=2)[:, :, 1].std(dim=1).mean())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128, help="edge length P of the one image (multiple of 16)")
    ap.add_argument("--samples", type=int, default=16, help="n, samples per image")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    add_probabilistic_args(ap)
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
    n = args.samples
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(1, 1, args.size, args.size, generator=g).to(device)
    models = {name: build(name, args).to(device).eval() for name in args.models}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    expected = (1, n, args.classes, args.size, args.size)

    checks: dict[str, dict] = {}
    for k, m in models.items():
        a = batched(m, x, n, torch.Generator(device=device).manual_seed(args.seed))
        b = batched(m, x, n, torch.Generator(device=device).manual_seed(args.seed))
        c = naive(m, x, n, torch.Generator(device=device).manual_seed(args.seed))
        checks[k] = {
            "batched_shape": list(a.shape), "naive_shape": list(c.shape), "expected_shape": list(expected),
            "finite": bool(torch.isfinite(a).all() and torch.isfinite(c).all()),
            "same_seed_bitwise_equal": bool(torch.equal(a, b)),
            "spread_batched": spread(a), "spread_naive": spread(c),
        }
        assert tuple(a.shape) == expected and tuple(c.shape) == expected, checks[k]
        assert checks[k]["finite"] and checks[k]["same_seed_bitwise_equal"], checks[k]
        assert checks[k]["spread_batched"] > 0 and checks[k]["spread_naive"] > 0, checks[k]

    calls: dict[str, Callable[[], Tensor]] = {}
    for k, m in models.items():
        calls[f"{k}_batched"] = lambda m=m: batched(m, x, n)
        calls[f"{k}_naive"] = lambda m=m: naive(m, x, n)
    peaks = {k: cuda_peak(fn, device) for k, fn in calls.items()}
    load_before = load()
    med, times = interleaved_medians({k: timed(fn, device) for k, fn in calls.items()}, args.rounds, args.warmup)
    load_after = load()
    speedup = {k: med[f"{k}_naive"] / med[f"{k}_batched"] for k in models}

    print(f"2-D, one image {args.size}^2, n = {n} samples, {args.classes} classes, {device}, "
          f"{torch.get_num_threads()} threads; load {load_before:.1f} -> {load_after:.1f}")
    print(f"{'model':<9} {'params':>9} {'batched s':>10} {'naive s':>10} {'naive/batched':>14} "
          f"{'shape ok':>9} {'seed ok':>8} {'spread b/n':>12}")
    for k in models:
        ck = checks[k]
        print(f"{k:<9} {params[k]:>9,} {med[f'{k}_batched']:>10.4f} {med[f'{k}_naive']:>10.4f} {speedup[k]:>14.2f} "
              f"{ck['batched_shape'] == ck['expected_shape']!s:>9} {ck['same_seed_bitwise_equal']!s:>8} "
              f"{ck['spread_batched']:>5.3f}/{ck['spread_naive']:.3f}")
    if device.type == "cuda":
        print("CUDA peak MiB: " + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in peaks.items() if v is not None))
    report = {
        "median_seconds": med, "all_seconds": times, "speedup_naive_over_batched": speedup,
        "parameters": params, "checks": checks, "cuda_peak_bytes": peaks,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(load_before=load_before, load_after=load_after),
    }
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
