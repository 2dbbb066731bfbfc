"""Price of a probabilistic training step: HPU-Net and ProbU-Net against a U-Net of about the
HPU-Net's size.

Contenders, all on the same random batch ``(B, 1, P, P)`` with random labels of 2 classes:

* **hpunet**: ``HPUNet`` with its default config (levels 5, base 16, max 64, 2 blocks per level,
  3 latent scales, 1 latent channel), trained through the task's objective:
  ``ProbabilisticTask(num_classes=2)`` with its defaults (GECO, ascent rule, top-k 2 %), one
  step = ``task.training_step`` (``elbo_forward``: posterior core, prior core fed the posterior
  latents, stitching decoder, KL per scale; top-k cross-entropy; GECO), ``zero_grad``,
  ``backward``, Adam ``step`` over ``task.trainable_parameters(model)`` (with GECO's ``w``),
  ``task.after_step``. Every contender has its own task and optimizer.
* **probunet**: ``ProbUNet`` with its default config (depth 4, base 16, latent 6), the same way.
* **unet**: ``UNet`` depth ``--unet-depth`` (4), same padding, no norm, nearest upsampling,
  whose ``base_features`` gives the parameter count closest to the HPU-Net's (searched over
  1..256; both counts are printed), trained with plain cross-entropy (all pixels), Adam.

After ``--warmup`` steps each, the contenders are interleaved (the order reversed every round)
for ``--rounds`` rounds and the median seconds per step are kept. Memory: the bytes of the
tensors autograd saves for the backward pass during one forward + loss
(``torch.autograd.graph.saved_tensors_hooks``, each storage once; the activation memory of
training, exact and independent of the allocator), and on CUDA also the peak allocated memory
of one step. Printed: parameters, seconds per step and activation MiB, and both as ratios to the
U-Net. Absolute times on a shared machine are noise; the ratios are the result.

    .venv/bin/python benchmarks/hpunet_step.py                    # 2-D, batch 4 x 128^2, 5 rounds
    .venv/bin/python benchmarks/hpunet_step.py --batch 2 --json hpunet_step.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from benchcommon import PROBABILISTIC_MODELS as MODELS
from benchcommon import (
    add_probabilistic_args,
    interleaved_medians,
    load,
    machine,
    saved_tensor_bytes,
    with_threads,
    write_report,
)
from benchcommon import build_probabilistic as build
from torch import Tensor, nn

from unetkit.models import UNet
from unetkit.tasks.probabilistic import ProbabilisticTask
from unetkit.training.trainer import parameter_groups


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def unet(base: int, args: argparse.Namespace) -> UNet:
    return UNet(1, args.classes, ndim=2, depth=args.unet_depth, base_features=base, padding="same",
                upsampling="nearest", norm=None)


def matched_unet_base(target: int, args: argparse.Namespace) -> int:
    """``base_features`` in 1..256 whose U-Net has the parameter count closest to ``target``
    (the count grows monotonically with the width: stop once it passes the target)."""
    best, best_gap = 1, None
    for base in range(1, 257):
        count = n_params(unet(base, args))
        if best_gap is None or abs(count - target) < best_gap:
            best, best_gap = base, abs(count - target)
        if count > target:
            break
    return best


class Contender:
    """A model with its loss and optimizer: ``loss()`` is one forward + objective, ``step()`` one
    timed training step."""

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, task: ProbabilisticTask | None) -> None:
        self.model, self.task, self.batch = model.train(), task, {"image": x, "target": y}
        if task is not None:
            task.setup(model)
            params = parameter_groups(task.trainable_parameters(model))  # GECO's w: a group of its own
        else:
            params = parameter_groups(model.parameters())
        self.opt = torch.optim.Adam(params, lr=1e-4)
        self.count = 0

    def loss(self) -> Tensor:
        if self.task is None:
            return nn.functional.cross_entropy(self.model(self.batch["image"]), self.batch["target"])
        return self.task.training_step(self.model, self.batch)[0]

    def step(self) -> float:
        device = self.batch["image"].device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        loss = self.loss()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.task is not None:
            self.task.after_step(self.model, self.count)
        self.count += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    def saved_bytes(self) -> int:
        """Bytes of the tensors saved for backward by one forward + loss (each storage once)."""
        count = saved_tensor_bytes(self.loss)
        self.opt.zero_grad(set_to_none=True)
        return count

    def cuda_peak(self) -> int | None:
        device = self.batch["image"].device
        if device.type != "cuda":
            return None
        torch.cuda.reset_peak_memory_stats(device)
        self.step()
        return int(torch.cuda.max_memory_allocated(device))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128, help="edge length P (multiple of 16)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="probabilistic contenders (the U-Net always runs, matched to the HPU-Net config)")
    add_probabilistic_args(ap)
    ap.add_argument("--unet-depth", type=int, default=4, help="depth of the matched U-Net")
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
    x = torch.randn(args.batch, 1, args.size, args.size, generator=g).to(device)
    y = torch.randint(0, args.classes, (args.batch, args.size, args.size), generator=g).to(device)

    hpunet_params = n_params(build("hpunet", args))
    base = matched_unet_base(hpunet_params, args)
    torch.manual_seed(args.seed)
    models: dict[str, nn.Module] = {"unet": unet(base, args)}
    for name in args.models:
        models[name] = build(name, args)
    contenders = {k: Contender(m.to(device), x, y, None if k == "unet" else ProbabilisticTask(args.classes))
                  for k, m in models.items()}
    params = {k: n_params(m) for k, m in models.items()}
    memory = {k: c.saved_bytes() for k, c in contenders.items()}
    peaks = {k: c.cuda_peak() for k, c in contenders.items()}
    load_before = load()
    med, times = interleaved_medians({k: c.step for k, c in contenders.items()}, args.rounds, args.warmup)
    load_after = load()
    time_ratio = {k: med[k] / med["unet"] for k in models}
    memory_ratio = {k: memory[k] / memory["unet"] for k in models}

    print(f"2-D, batch {args.batch} x {args.size}^2, {args.classes} classes, {device}, "
          f"{torch.get_num_threads()} threads; load {load_before:.1f} -> {load_after:.1f}")
    print(f"U-Net depth {args.unet_depth}, base {base}: {params['unet']:,} parameters "
          f"(HPU-Net: {hpunet_params:,}; closest base_features)")
    print(f"{'model':<9} {'params':>10} {'s/step':>8} {'x U-Net':>8} {'act MiB':>9} {'x U-Net':>8}")
    for k in models:
        print(f"{k:<9} {params[k]:>10,} {med[k]:>8.4f} {time_ratio[k]:>8.2f} {memory[k] / 2**20:>9.1f} "
              f"{memory_ratio[k]:>8.2f}")
    if device.type == "cuda":
        print("CUDA peak MiB per step: " + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in peaks.items() if v is not None))
    report = {
        "median_seconds": med, "all_seconds": times, "activation_bytes": memory, "cuda_peak_bytes": peaks,
        "parameters": params, "unet_base_features": base, "hpunet_parameters": hpunet_params,
        "time_ratio_to_unet": time_ratio, "memory_ratio_to_unet": memory_ratio,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(load_before=load_before, load_after=load_after),
    }
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
