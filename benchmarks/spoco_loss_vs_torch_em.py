"""unetkit's SPOCO loss against torch-em's ``torch_em.loss.spoco_loss.SPOCOLoss``: values and speed.

Inputs: ``--batch`` images of ``--size`` x ``--size`` with ``--objects`` Voronoi-cell objects
(ids 0..K consecutive, 0 = the other half of the cells) and ``--dim``-D float32 embeddings (one
random centre per object plus Gaussian noise 0.3 per channel, so every term is non-zero); the
momentum network's embeddings are the same plus noise 0.05.

Two settings, each term compared on the first image (torch-em's private term functions, our
``spoco_loss`` parts; both with delta_v = 0.5, delta_d = 2, t = ``pmaps_threshold`` = 0.9, the
default of both, and our ``anchor="mean"``, the anchor torch-em uses):

* **dense**: every object and the background (0) labelled (ours ``background=0,
  unlabelled=None``; torch-em ``unlabeled_push_weight=0``): pull, push, reg and L_obj.
* **sparse** (SPOCO@p, ``--fraction`` of the objects labelled, the rest and the background 0 =
  unlabelled; ours ``unlabelled=0``; torch-em ``unlabeled_push_weight=1``): pull, push, reg,
  L_U-push, L_U-con.

Speed: forward + backward of the whole loss (sparse setting, with g's embeddings, L_U-push off:
torch-em's default, and its backward fails with it on, see the printout), ours and
torch-em's interleaved for ``--rounds`` rounds after ``--warmup``; median seconds and the ratio
torch-em / unetkit (> 1: unetkit faster).

torch-em is a benchmark extra (``pip install -c constraints.txt torch-em``). ``import torch_em``
fails beside the CPU-only torch (its torchvision wheel is built for CUDA torch), so the four files
the loss needs (``torch_em/loss/{spoco_loss,contrastive_impl,dice,affinity_side_loss}.py``, torch
and numpy only) are loaded from the installed package on their own. The loss also needs
``torch_scatter.scatter_mean`` (not installed; no wheel for this torch): where it is missing a
plain-torch ``scatter_mean`` (``index_add_`` sums / counts, the same function) is put in its
place, and the script says so. Without torch-em the script prints that and returns.

    .venv/bin/python benchmarks/spoco_loss_vs_torch_em.py             # 2 x 256^2, 16-D, 40 objects
    .venv/bin/python benchmarks/spoco_loss_vs_torch_em.py --json spoco_loss.json
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchcommon import interleaved_medians, load, machine, with_threads, write_report

from unetkit.losses.spoco import spoco_loss

FILES = ("dice", "contrastive_impl", "affinity_side_loss", "spoco_loss")


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """``torch_scatter.scatter_mean(src, index, dim=-1, dim_size)`` for a 2-D ``src`` (E, P)."""
    sums = src.new_zeros(src.shape[0], dim_size).index_add_(1, index, src)
    counts = torch.bincount(index, minlength=dim_size).clamp(min=1).to(src.dtype)
    return sums / counts


def load_torch_em_spoco() -> tuple[Any | None, str]:
    """``(torch_em.loss.spoco_loss module, note)`` or ``(None, reason)``."""
    note = []
    try:
        from torch_em.loss import spoco_loss as module  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch_em":
            return None, "torch_em not installed (pip install torch-em)"
        module, error = None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 (any import failure of the optional extra)
        module, error = None, f"{type(exc).__name__}: {exc}"
    if module is None:
        spec = importlib.util.find_spec("torch_em")
        if spec is None or not spec.submodule_search_locations:
            return None, f"import torch_em failed ({error})"
        folder = Path(next(iter(spec.submodule_search_locations))) / "loss"
        package = types.ModuleType("_torch_em_loss")
        package.__path__ = [str(folder)]
        sys.modules["_torch_em_loss"] = package
        try:
            for name in FILES:
                file_spec = importlib.util.spec_from_file_location(f"_torch_em_loss.{name}", folder / f"{name}.py")
                assert file_spec is not None and file_spec.loader is not None
                mod = importlib.util.module_from_spec(file_spec)
                sys.modules[file_spec.name] = mod
                file_spec.loader.exec_module(mod)
                setattr(package, name, mod)
        except Exception as exc2:  # noqa: BLE001
            return None, f"import torch_em failed ({error}); loading {folder}/*.py failed too ({exc2})"
        module = package.spoco_loss
        note.append(f"`import torch_em` failed ({error.splitlines()[0][:100]}); loaded "
                    f"torch_em/loss/{{{','.join(FILES)}}}.py directly")
    if module.scatter_mean is None:
        module.scatter_mean = scatter_mean
        note.append("torch_scatter missing: torch-em's scatter_mean replaced by a plain-torch one")
    return module, "; ".join(note)


def synthetic(batch: int, size: int, dim: int, objects: int, seed: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]:
    """Embeddings f, g ``(N, E, S, S)`` and labels ``(N, S, S)`` with ids 0..K (0 = background)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labs, embs = [], []
    for _ in range(batch):
        pts = rng.uniform(0, size, size=(2 * objects, 2))
        cell = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1)
        lab = np.where(cell < objects, cell + 1, 0)
        lab = np.unique(lab, return_inverse=True)[1].reshape(lab.shape)  # consecutive ids
        centres = rng.uniform(-0.6, 0.6, size=(lab.max() + 1, dim))  # pairs closer than 2 delta_d
        embs.append(np.moveaxis(centres[lab] + rng.normal(scale=0.3, size=(size, size, dim)), -1, 0))
        labs.append(lab)
    f = torch.tensor(np.stack(embs), dtype=torch.float32)
    g = f + 0.05 * torch.randn(f.shape, generator=torch.Generator().manual_seed(seed))
    return f, g, torch.tensor(np.stack(labs), dtype=torch.int64)


def sparsify(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Keep ``fraction`` of the objects of each image (ids renumbered 1..k), the rest -> 0."""
    rng = np.random.default_rng(seed)
    out = torch.zeros_like(labels)
    for b, lab in enumerate(labels):
        ids = [i for i in torch.unique(lab).tolist() if i != 0]
        keep = rng.choice(ids, size=max(1, round(fraction * len(ids))), replace=False)
        for new, old in enumerate(sorted(keep), start=1):
            out[b][lab == old] = new
    return out


def tem_terms(tem: Any, x: torch.Tensor, t: torch.Tensor, ignore_zero: bool, g: torch.Tensor | None) -> dict:
    """torch-em's terms on one image ``x (E, *S)``, ``t (*S)``, through its own private functions."""
    mod = sys.modules[type(tem).__module__]
    ids, counts = torch.unique(t, return_counts=True)
    cm = mod.compute_cluster_means(x, t, ids.numel())
    out = {"pull": tem._compute_variance_term(cm, x, t, counts, ignore_zero),
           "push": tem._compute_distance_term(cm, ignore_zero),
           "reg": tem._compute_regularizer_term(cm)}
    if ignore_zero:
        out["u_push"] = tem._compute_unlabeled_push(cm, x, t)
        mask = (t == 0).int()
        np.random.seed(0)
        out["u_con"] = tem.emb_consistency(x, g, mask)
    else:
        out["obj"] = tem.compute_instance_term(x, cm, t)
    return {k: float(v) for k, v in out.items()}


def rowwise_obj(x: torch.Tensor, t: torch.Tensor, t_kernel: float = 0.9, delta_v: float = 0.5) -> float:
    """torch-em's L_obj written out: per object (not 0), mean anchor, Dice of each image *row*
    (its ``DiceLoss`` on a ``(1, H, W)`` mask takes axis 1, H, as the channels), summed over rows."""
    scale = -(delta_v ** 2) / np.log(t_kernel)
    vals = []
    for i in torch.unique(t).tolist():
        if i == 0:
            continue
        mask = (t == i).float()
        mean = x[:, t == i].mean(1)
        p = torch.exp(-((x - mean[:, None, None]) ** 2).sum(0) / scale)
        vals.append((1 - 2 * (p * mask).sum(1) / ((p * p).sum(1) + (mask * mask).sum(1)).clamp(min=1e-7)).sum())
    return float(torch.stack(vals).mean())


def ours_terms(x: torch.Tensor, t: torch.Tensor, g: torch.Tensor | None, sparse: bool) -> dict:
    kw = {"unlabelled": 0, "background": None} if sparse else {"unlabelled": None, "background": 0}
    _, parts = spoco_loss(x[None], t[None], None if g is None else g[None], anchor="mean",
                          generator=torch.Generator().manual_seed(0), **kw)
    keys = ("pull", "push", "reg", "u_push", "u_con") if sparse else ("pull", "push", "reg", "obj")
    return {k: float(parts[k]) for k in keys}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--objects", type=int, default=40)
    ap.add_argument("--fraction", type=float, default=0.4)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    return with_threads(args.threads, lambda: run(args))


def run(args: argparse.Namespace) -> dict:
    module, note = load_torch_em_spoco()
    report: dict = {"config": vars(args) | {"json": None}, "torch_em": module is not None, "note": note}
    if module is None:
        print(f"torch-em not available: {note}")
        return report
    if note:
        print(f"note: {note}")

    f, g, dense = synthetic(args.batch, args.size, args.dim, args.objects, args.seed)
    sparse = sparsify(dense, args.fraction, args.seed)
    tem_dense = module.SPOCOLoss(0.5, 2.0, unlabeled_push_weight=0.0, pmaps_threshold=0.9)
    tem_sparse = module.SPOCOLoss(0.5, 2.0, unlabeled_push_weight=1.0, pmaps_threshold=0.9)
    values = {
        "dense": {"unetkit": ours_terms(f[0], dense[0], None, False),
                  "torch_em": tem_terms(tem_dense, f[0], dense[0], False, None)},
        "sparse": {"unetkit": ours_terms(f[0], sparse[0], g[0], True),
                   "torch_em": tem_terms(tem_sparse, f[0], sparse[0], True, g[0])},
    }
    # torch-em's contrastive forward (without the consistency term, which its SPOCOLoss.forward
    # adds on the label-0 pixels even for dense labels) on one image against its own terms
    one = module.ContrastiveLossBase.forward(tem_dense, f[:1], dense[:1, None])
    d = values["dense"]["torch_em"]
    total_terms = d["pull"] + d["push"] + 0.001 * d["reg"] + d["obj"]
    values["dense"]["torch_em_forward_over_sum_of_terms"] = float(one) / total_terms
    values["dense"]["torch_em_obj_rowwise_reproduced"] = rowwise_obj(f[0], dense[0])

    # torch-em with unlabeled_push_weight > 0: does its backward run?
    try:
        tem_sparse((f.clone().requires_grad_(True), g), sparse[:, None]).backward()
        values["sparse"]["torch_em_backward_with_u_push"] = "ok"
    except RuntimeError as exc:
        values["sparse"]["torch_em_backward_with_u_push"] = f"RuntimeError: {str(exc).splitlines()[0][:160]}"

    # speed: forward + backward, sparse setting with g, L_U-push off (torch-em's default)
    tem_timed = module.SPOCOLoss(0.5, 2.0, pmaps_threshold=0.9)

    def run_ours() -> float:
        x = f.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss, _ = spoco_loss(x, sparse, g, unlabelled=0, background=None, anchor="mean", u_push_weight=0.0)
        loss.backward()
        return time.perf_counter() - t0

    def run_tem() -> float:
        x = f.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss = tem_timed((x, g), sparse[:, None])
        loss.backward()
        return time.perf_counter() - t0

    runs = {"unetkit": run_ours, "torch_em": run_tem}
    load_before = load()
    med, times = interleaved_medians(runs, args.rounds, args.warmup)
    ratio = med["torch_em"] / med["unetkit"]
    load_after = load()

    print(f"{args.batch} x {args.size}^2, {args.dim}-D, {args.objects} objects; sparse: {args.fraction} of them "
          f"labelled; torch threads {torch.get_num_threads()}, load {load_before:.1f} -> {load_after:.1f}")
    for setting in ("dense", "sparse"):
        ours, theirs = values[setting]["unetkit"], values[setting]["torch_em"]
        print(f"  {setting} (image 0): term  unetkit  torch-em")
        for k in ours:
            print(f"    {k:7s} {ours[k]:10.5f} {theirs[k]:10.5f}")
    print(f"  torch-em obj reproduced as a per-row Dice summed over rows: "
          f"{values['dense']['torch_em_obj_rowwise_reproduced']:.5f}")
    print(f"  torch-em contrastive forward / its own weighted sum of terms (1 dense image): "
          f"{values['dense']['torch_em_forward_over_sum_of_terms']:.3f}")
    print(f"  torch-em backward with unlabeled_push_weight=1: {values['sparse']['torch_em_backward_with_u_push']}")
    print(f"  forward+backward (sparse, with g, no L_U-push): unetkit {med['unetkit'] * 1000:.1f} ms, torch-em "
          f"{med['torch_em'] * 1000:.1f} ms (medians of {args.rounds}); torch-em / unetkit x{ratio:.2f}")
    report |= {"values": values, "median_seconds": med, "all_seconds": times, "ratio_torch_em_to_unetkit": ratio,
               "machine": machine(load_before=load_before, load_after=load_after)}
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
