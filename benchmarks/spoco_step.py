"""Price of SPOCO's second view and momentum network: SpocoTask vs EmbeddingTask training steps.

Both tasks train the same ``unetkit.models.UNet`` (same seed, so the same initial weights; one
copy each) on the same synthetic images of ``--objects`` Voronoi-cell instances, one
``PatchSampler`` each with the same seed and patch shape. One *step* is what the Trainer does,
without the Trainer: ``task.make_batch(sampler)`` (SPOCO: plus the second, photometrically
augmented view), NumPy -> torch, ``task.training_step`` (SPOCO: f on view 1, the momentum
network g on view 2 without gradients, L_SSO; embedding: f, discriminative loss),
``zero_grad`` / ``backward`` / optimizer ``step`` (Adam, lr 1e-4), ``task.after_step`` (SPOCO: the EMA update of g).
After ``--warmup`` steps each the two are interleaved (A B, B A, ...) for ``--rounds`` rounds
and the median seconds per step are kept. Printed: both medians and the ratio spoco / embedding
(the price of SPOCO per step; > 1 = SPOCO slower).

The SPOCO task runs with dense labels (``fraction 1``: background is a labelled cluster, no
unlabelled region, so L_U-push and L_U-con have no pixels) unless ``--fraction p < 1`` (SPOCO@p:
a fraction of the objects labelled, the rest and the background unlabelled, so all terms run).

    .venv/bin/python benchmarks/spoco_step.py                        # 2-D, 128^2, batch 2, 16-D
    .venv/bin/python benchmarks/spoco_step.py --fraction 0.4 --json spoco_step.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from benchcommon import interleaved_medians, load, machine, with_threads, write_report

from unetkit.data.datasets import PatchSampler, Sample
from unetkit.models import UNet
from unetkit.tasks.base import Task
from unetkit.tasks.embedding import EmbeddingTask
from unetkit.tasks.spoco import SpocoTask


def synthetic_samples(n: int, size: int, objects: int, seed: int) -> list[Sample]:
    """``n`` images ``(1, size, size)``: Voronoi cells (half of them background) of distinct intensity."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for i in range(n):
        pts = rng.uniform(0, size, size=(2 * objects, 2))
        cell = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1)
        labels = np.where(cell < objects, cell + 1, 0).astype(np.int64)
        image = rng.uniform(0.2, 1.0, size=objects + 1)[labels] * (labels > 0) + rng.normal(0, 0.1, labels.shape)
        out.append(Sample(image[None].astype(np.float32), labels, name=f"synthetic{i}"))
    return out


class Contender:
    """One task with its own model, optimizer and sampler."""

    def __init__(self, task: Task, model: torch.nn.Module, samples: list[Sample], patch: int, batch: int,
                 seed: int, optimizer: str) -> None:
        self.task, self.model = task, model
        prepared = [Sample(s.image, task.prepare_labels(s.labels), s.name) for s in samples]
        self.sampler = PatchSampler(prepared, (patch, patch), (patch, patch), batch_size=batch,
                                    rng=np.random.default_rng(seed))
        task.setup(model)
        params = list(task.trainable_parameters(model))
        self.optimizer = (torch.optim.Adam(params, lr=1e-4) if optimizer == "adam"
                          else torch.optim.SGD(params, lr=1e-3, momentum=0.9))
        self.steps = 0
        self.model.train()

    def step(self) -> float:
        t0 = time.perf_counter()
        batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.task.make_batch(self.sampler).items()}
        loss, _ = self.task.training_step(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        self.task.after_step(self.model, self.steps)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dim", type=int, default=16, help="embedding dimension (model.out_channels)")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--objects", type=int, default=30, help="objects per synthetic 256^2 image")
    ap.add_argument("--fraction", type=float, default=1.0, help="SPOCO label fraction (< 1: SPOCO@p)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                    help="adam (the Trainer's default; its first use imports torch._dynamo, seconds) or sgd")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    return with_threads(args.threads, lambda: run(args))


def run(args: argparse.Namespace) -> dict:

    samples = synthetic_samples(2, max(256, args.patch), args.objects, args.seed)

    def model() -> torch.nn.Module:
        torch.manual_seed(args.seed)
        return UNet(1, args.dim, ndim=2, depth=args.depth, base_features=args.features, padding="same")

    contenders = {
        "embedding": Contender(EmbeddingTask(args.dim, delta_v=0.5, delta_d=2.0), model(), samples, args.patch,
                               args.batch, args.seed, args.optimizer),
        "spoco": Contender(SpocoTask(args.dim, fraction=args.fraction), model(), samples, args.patch,
                           args.batch, args.seed, args.optimizer),
    }
    params = sum(p.numel() for p in contenders["spoco"].model.parameters())
    load_before = load()
    med, times = interleaved_medians({name: c.step for name, c in contenders.items()}, args.rounds, args.warmup)
    ratio = med["spoco"] / med["embedding"]
    load_after = load()
    print(f"2-D U-Net depth {args.depth}, {args.features} base features ({params:,} parameters), "
          f"{args.dim}-D embeddings, batch {args.batch} x {args.patch}^2, SPOCO fraction {args.fraction}; "
          f"torch threads {torch.get_num_threads()}, load {load_before:.1f} -> {load_after:.1f}")
    for name, m in med.items():
        print(f"  {name:10s} {m * 1000:8.1f} ms/step (median of {args.rounds})")
    print(f"  spoco / embedding: x{ratio:.2f} per training step")
    report = {"config": vars(args) | {"json": None}, "median_seconds": med, "all_seconds": times,
              "ratio_spoco_to_embedding": ratio, "parameters": params,
              "machine": machine(load_before=load_before, load_after=load_after)}
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
