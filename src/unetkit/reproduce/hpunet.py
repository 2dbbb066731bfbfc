"""``unetkit reproduce hpunet``: HPU-Net against the probabilistic U-Net on synthetic ambiguous data, CPU.

Kohl et al., "A hierarchical probabilistic U-Net for modeling multi-scale ambiguities"
(papers/hierarchical-probabilistic-unet.txt; method notes, section 4). Two synthetic tasks
whose true distribution is known (:mod:`unetkit.data.ambiguous`):

* **Ambiguous objects** (the LIDC stand-in): discs of different contrast, each present for a
  grader with a known probability (0.25, 0.5, 0.75 or 1; fainter discs are less often marked)
  and with a radius that varies by -1/0/+1 px between graders; 4 graders per image. Training
  pairs each image with every grader's mask. Test: held-out images, ``n`` samples each, against
  the 4 graders: GED^2 (d = 1 - IoU of the foreground, a correctly empty pair counts IoU 1),
  Hungarian-matched IoU, IoU_rec (posterior-mean reconstruction of each grader's mask), and the
  mean absolute difference between each model's per-pixel foreground frequency over its samples
  and the TRUE per-pixel probability (over all pixels and over the ambiguous ones, 0 < p < 1).
  An oracle that draws ``n`` masks from the true distribution gives the floor of each number
  at this sample size.
* **Instance colouring** (the SNEMI3D stand-in): touching cells, every cell coloured with a
  random id from a small set, redrawn per grader. Samples are clustered into instances by
  Hamming distance (:func:`unetkit.clustering.hamming_clustering`, ``n`` = 16 samples, alpha =
  n); score: adapted Rand error against the true instances. The oracle clusters ``n`` true
  random colourings (a check of the clustering alone).

Models: ``hpunet`` (GECO, kappa 0.05 per pixel, stochastic top-k 2 %, the project's defaults;
on instance colouring the reconstruction uses all pixels, because with top-k it stayed at
chance level, 2.1 nats per pixel for 9 classes, after 750 of 1,500 probe steps while all pixels
reached 0.1) and ``probunet`` (the standard probabilistic U-Net: 6-D global latent, ELBO with
beta 1, all pixels). Adam (lr 1e-3) with cosine decay, batches of 8 whole 64^2 images with
flips and rotations, seed 0.
The hierarchy's "global only / local only" sampling (the paper's figure 3) is measured as the
per-pixel standard deviation over samples inside the cores of uncertain discs (presence
varies) and on the boundary rings of certain discs (only the boundary varies) when every
latent scale but the most global (local) one is fixed to its prior mean.

Budget and timing (2 CPU threads): an HPU-Net step (levels 5, 16 -> 32 channels, 1 block per
level, 3 latent scales: 4x4, 8x8, 16x16) on a batch of 8 x 64^2 takes ~0.1 s, a probabilistic
U-Net step (depth 4, 8 base features) ~0.07 s. ``full`` trains four nets (see :class:`Budget`),
about 11-13 minutes on 2 idle cores; ``smoke`` is a seconds-long check of the pipeline.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from unetkit.clustering.hamming import hamming_clustering
from unetkit.data.ambiguous import (
    AmbiguousObjects,
    ambiguous_objects,
    instance_colouring,
    sample_truth,
)
from unetkit.data.datasets import make_sample
from unetkit.metrics.distribution import ged, hungarian_matched_iou, iou_rec
from unetkit.metrics.instance import adapted_rand_error
from unetkit.report import training_records
from unetkit.reproduce.training import experiment_clock, train_in_memory

OUTPUTS = ("report.md", "results.json", "samples.png", "instances.png", "training.png", "runs")
"""What :func:`run` writes into its folder (``unetkit reproduce`` refuses to replace them without --overwrite)."""

MODELS = ("hpunet", "probunet")
LR = 1e-3
TIE = 0.02
"""Differences below this are called ties in the claims (one seed, small nets)."""


@dataclass
class Budget:
    """Sizes of the run: ``full`` (the report, minutes) or ``smoke`` (tests, seconds)."""

    iterations: int
    instance_iterations: int
    train_images: int
    test_images: int
    size: int = 64
    samples: int = 16
    batch_size: int = 8
    colours: int = 8
    levels: int = 5
    base: int = 16
    max_channels: int = 32
    blocks: int = 1
    latent_scales: int = 3
    pu_depth: int = 4
    pu_base: int = 8

    @classmethod
    def named(cls, name: str) -> Budget:
        if name == "full":
            return cls(iterations=2000, instance_iterations=1500, train_images=48, test_images=16)
        if name == "smoke":
            return cls(iterations=2, instance_iterations=2, train_images=2, test_images=2, size=32, samples=4,
                       batch_size=2, levels=3, base=4, max_channels=8, blocks=1, latent_scales=2, pu_depth=2, pu_base=4)
        raise ValueError(f"budget must be 'full' or 'smoke', got {name!r}")


def model_config(name: str, b: Budget, classes: int) -> dict[str, Any]:
    """The ``model`` section of ``hpunet`` or ``probunet`` with ``classes`` output channels."""
    if name == "hpunet":
        return {"name": "hpunet", "out_channels": classes, "levels": b.levels, "base_channels": b.base,
                "max_channels": b.max_channels, "blocks_per_level": b.blocks, "latent_scales": b.latent_scales}
    if name == "probunet":
        return {"name": "probunet", "out_channels": classes, "depth": b.pu_depth, "base_features": b.pu_base,
                "latent_dim": 6}
    raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")


def task_config(name: str, *, topk: bool = True) -> dict[str, Any]:
    """HPU-Net: GECO with top-k (the task's defaults; ``topk=False``: all pixels); probabilistic
    U-Net: ELBO, beta 1, all pixels."""
    if name == "hpunet":
        return {"name": "probabilistic"} if topk else {"name": "probabilistic", "topk": None}
    return {"name": "probabilistic", "objective": "elbo", "beta": 1.0, "topk": None}


def train(out: Path, run: str, name: str, images: np.ndarray, graders: np.ndarray, classes: int, b: Budget,
          iterations: int, *, topk: bool = True, progress: bool = False) -> Any:
    """Train ``name`` on every (image, grader) pair into ``out/run``; returns the trainer (model in eval mode)."""
    samples = [make_sample(img, graders[i, g], ndim=2, normalize_mode="none")
               for i, img in enumerate(images) for g in range(graders.shape[1])]
    data = {"patch_shape": [b.size, b.size], "batch_size": b.batch_size, "augment": {"flip": True, "rot90": True},
            "normalize": {"mode": "none"}}
    return train_in_memory(out, run, samples, task=task_config(name, topk=topk), model=model_config(name, b, classes),
                           data=data, iterations=iterations, lr=LR, progress=progress,
                           log_every=max(1, iterations // 60))


# ----------------------------------------------------------------------------- sampling
@torch.no_grad()
def draw(model: Any, images: np.ndarray, n: int, *, mean_scales: tuple[int, ...] = (), seed: int = 0) -> np.ndarray:
    """``n`` samples per image: ``(B, *S)`` images -> ``(B, n, *S)`` int64 class maps."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    generator = torch.Generator().manual_seed(seed)
    return model.sample(x, n, mean_scales=mean_scales, generator=generator).argmax(dim=2).numpy()


@torch.no_grad()
def reconstruct(model: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Posterior-mean reconstructions ``(B, *S)`` of label maps ``(B, *S)``."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    return model.reconstruct(x, torch.from_numpy(labels.astype(np.int64))).argmax(dim=1).numpy()


def regions(data: AmbiguousObjects, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of image ``i``: the cores of uncertain discs (presence < 1; inside the smallest
    radius, so only presence varies there) and the boundary rings of certain discs (presence 1;
    between the smallest and largest radius, where only the boundary varies)."""
    shape = data.images.shape[1:]
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"))
    core = np.zeros(shape, dtype=bool)
    ring = np.zeros(shape, dtype=bool)
    lo, hi = float(data.offsets.min()), float(data.offsets.max())
    for j in range(int(data.n_objects[i])):
        d = np.sqrt(((grid - data.centres[i, j].reshape(-1, *[1] * len(shape))) ** 2).sum(0))
        r = float(data.radii[i, j])
        if data.presence[i, j] < 1:
            core |= d <= r + lo - 0.5
        else:
            ring |= (d > r + lo - 0.5) & (d <= r + hi + 0.5)
    return core, ring


def ambiguous_metrics(samples: np.ndarray, data: AmbiguousObjects, recon: np.ndarray | None) -> dict[str, float]:
    """Mean over test images of GED^2, Hungarian-matched IoU, frequency error and (given the
    reconstructions ``(B, G, *S)``) IoU_rec. ``samples``: ``(B, n, *S)`` binary."""
    per: dict[str, list[float]] = {"ged": [], "hungarian_iou": [], "freq_mae": [], "freq_mae_ambiguous": [],
                                   "iou_rec": []}
    for i, s in enumerate(samples):
        g = data.graders[i]
        per["ged"].append(ged(s, g, empty=1.0))
        per["hungarian_iou"].append(hungarian_matched_iou(s, g, empty=1.0))
        p = data.probability[i]
        err = np.abs(s.mean(axis=0) - p)
        per["freq_mae"].append(float(err.mean()))
        amb = (p > 0) & (p < 1)
        per["freq_mae_ambiguous"].append(float(err[amb].mean()) if amb.any() else float("nan"))
        if recon is not None:
            per["iou_rec"].append(iou_rec(recon[i], g, empty=1.0, batch=True))
    return {k: float(np.nanmean(v)) for k, v in per.items() if v}


def spread(samples: np.ndarray, data: AmbiguousObjects) -> dict[str, float]:
    """Mean per-pixel standard deviation over samples in the uncertain discs' cores and the
    certain discs' boundary rings (:func:`regions`). ``samples``: ``(B, n, *S)`` binary."""
    core_std, ring_std = [], []
    for i, s in enumerate(samples):
        core, ring = regions(data, i)
        std = s.std(axis=0)
        if core.any():
            core_std.append(float(std[core].mean()))
        if ring.any():
            ring_std.append(float(std[ring].mean()))
    return {"core_std": float(np.mean(core_std)) if core_std else float("nan"),
            "ring_std": float(np.mean(ring_std)) if ring_std else float("nan")}


def instance_scores(samples: np.ndarray, truth: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Hamming clustering of every image's samples ``(B, n, *S)``; (instances, mean adapted Rand error)."""
    found = [hamming_clustering(s) for s in samples]
    errors = [adapted_rand_error(f, t) for f, t in zip(found, truth)]
    return found, float(np.nanmean(errors))


# ----------------------------------------------------------------------------- figures
def _samples_figure(path: Path, data: AmbiguousObjects, draws: dict[str, np.ndarray], shown: int = 2) -> None:
    from unetkit.report import _pyplot

    plt = _pyplot()
    rows: list[tuple[str, list[tuple[np.ndarray, str]]]] = []
    for i in range(min(shown, len(data.images))):
        rows.append((f"test image {i}", [(data.images[i], "image"), (data.probability[i], "true p(fg)")]
                     + [(data.graders[i, g], f"grader {g + 1}") for g in range(data.graders.shape[1])]))
        singles = sorted(k for k in draws if k.startswith("hpunet_only_"))
        for key, label in (("hpunet", "HPU-Net"), *[(k, f"HPU scale {k.rsplit('_', 1)[1]} only") for k in singles],
                           ("probunet", "prob. U-Net")):
            s = draws[key][i]
            rows.append((label, [(s.mean(0), "mean"), (s.std(0), "std")] + [(s[k], f"sample {k + 1}") for k in range(4)]))
    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.7 * cols, 1.8 * len(rows)), squeeze=False)
    for r, (label, panels) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c >= len(panels):
                continue
            img, title = panels[c]
            ax.imshow(img, cmap="gray" if title == "image" else "magma", vmin=None if title == "image" else 0,
                      vmax=None if title == "image" else (0.5 if title == "std" else 1))
            ax.set_title(title, fontsize=7)
        axes[r, 0].text(-0.1, 0.5, label, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _instances_figure(path: Path, images: np.ndarray, truth: np.ndarray, samples: dict[str, np.ndarray],
                      found: dict[str, list[np.ndarray]], shown: int = 2) -> None:
    from unetkit.report import _pyplot, label_colors

    plt = _pyplot()
    cols = 6
    fig, axes = plt.subplots(shown * 2, cols, figsize=(1.8 * cols, 1.9 * shown * 2), squeeze=False)
    for i in range(shown):
        for m, (name, label) in enumerate((("hpunet", "HPU-Net"), ("probunet", "prob. U-Net"))):
            r = 2 * i + m
            panels = [(images[i], "image"), (truth[i], "true instances")] + \
                     [(samples[name][i, k], f"{label} sample {k + 1}") for k in range(3)] + \
                     [(found[name][i], f"{label} clustered")]
            for c, (img, title) in enumerate(panels):
                ax = axes[r, c]
                ax.set_axis_off()
                if title == "image":
                    ax.imshow(img, cmap="gray")
                else:
                    ax.imshow(label_colors(img), interpolation="nearest")
                ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _training_figure(path: Path, records: list[dict[str, Any]]) -> None:
    """Reconstruction term, KL per scale and lambda of the HPU-Net on the ambiguous task, from its
    log ``records`` (:func:`unetkit.report.training_records`)."""
    from unetkit.report import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    steps = [r["step"] for r in records]
    axes[0].plot(steps, [r.get("train/rec_ma", np.nan) for r in records], label="rec (moving average)")
    axes[0].plot(steps, [r.get("train/rec", np.nan) for r in records], alpha=0.5, label="rec (batch)")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    for k in sorted(k for k in records[-1] if k.startswith("train/kl_")):
        axes[1].plot(steps, [r.get(k, np.nan) for r in records], label=k[6:])
    axes[1].set_title("KL per latent scale (0 = most global)", fontsize=9)
    axes[1].legend(fontsize=7)
    axes[2].plot(steps, [r.get("train/lambda", np.nan) for r in records])
    axes[2].set_title("GECO lambda", fontsize=9)
    for ax in axes:
        ax.set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- claims and report
def _vs(a: float, b: float, higher_better: bool) -> str:
    if abs(a - b) < TIE:
        return "ties with"
    return "beats" if (a > b) == higher_better else "loses to"


def claims(r: dict[str, Any]) -> list[str]:
    """The paper's claims, each answered from the measured numbers."""
    h, p, o = r["ambiguous"]["hpunet"], r["ambiguous"]["probunet"], r["ambiguous"]["oracle"]
    sp, inst = r["spread"], r["instances"]
    singles = sorted((k for k in sp if k.startswith("hpunet_only_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    glob, loc = sp[singles[0]], sp[singles[-1]]
    top_core = max(singles, key=lambda k: sp[k]["core_std"])
    top_ring = max(singles, key=lambda k: sp[k]["ring_std"])
    kl = r["geco"].get("kl_last", [])
    kl_text = ", ".join(f"scale {i} {v:.2f}" for i, v in enumerate(kl)) if kl else "not logged"
    return [
        f"- **Distribution match** (paper, LIDC: HPU-Net better in Hungarian-matched IoU, 0.53 vs 0.50; GED^2 "
        f"0.27 vs 0.32). Hungarian-matched IoU: HPU-Net {h['hungarian_iou']:.3f} "
        f"{_vs(h['hungarian_iou'], p['hungarian_iou'], True)} prob. U-Net {p['hungarian_iou']:.3f} (oracle "
        f"{o['hungarian_iou']:.3f}). GED^2: HPU-Net {h['ged']:.3f} {_vs(h['ged'], p['ged'], False)} prob. U-Net "
        f"{p['ged']:.3f} (oracle {o['ged']:.3f}; lower is better).",
        f"- **Reconstruction fidelity** (paper: IoU_rec 0.97 vs 0.75). HPU-Net {h['iou_rec']:.3f} "
        f"{_vs(h['iou_rec'], p['iou_rec'], True)} prob. U-Net {p['iou_rec']:.3f}.",
        f"- **Per-pixel probabilities** (not in the paper; known here). Mean |frequency - true p| over ambiguous "
        f"pixels: HPU-Net {h['freq_mae_ambiguous']:.3f}, prob. U-Net {p['freq_mae_ambiguous']:.3f}, oracle with "
        f"the same number of samples {o['freq_mae_ambiguous']:.3f}.",
        f"- **Global scales decide presence, local scales fill in boundaries** (paper, figure 3). Per-pixel std "
        f"in uncertain discs' cores (presence varies): all scales sampled {sp['hpunet']['core_std']:.3f}, most "
        f"global scale only {glob['core_std']:.3f}, most local only {loc['core_std']:.3f}; on certain discs' "
        f"boundary rings: {sp['hpunet']['ring_std']:.3f}, {glob['ring_std']:.3f}, {loc['ring_std']:.3f}. The most "
        f"global scale {'carries more' if glob['core_std'] > loc['core_std'] + TIE else 'does not carry more'} of "
        f"the presence variation than the most local one, and the most local scale "
        f"{'carries more' if loc['ring_std'] > glob['ring_std'] + TIE else 'does not carry more'} of the boundary "
        f"variation than the most global one. Most presence variation: {top_core.replace('hpunet_only_', 'scale ')} "
        f"alone ({sp[top_core]['core_std']:.3f}); most boundary variation: "
        f"{top_ring.replace('hpunet_only_', 'scale ')} alone ({sp[top_ring]['ring_std']:.3f}). KL per scale at the "
        f"end of training (nats per image): {kl_text}.",
        f"- **Instances from samples** (paper, SNEMI3D: HPU-Net Rand error 0.06; the sPU-Net fails). Adapted Rand "
        f"error after Hamming clustering of {r['budget_sizes']['samples']} samples: HPU-Net "
        f"{inst['hpunet']['rand_error']:.3f} {_vs(inst['hpunet']['rand_error'], inst['probunet']['rand_error'], False)} "
        f"prob. U-Net {inst['probunet']['rand_error']:.3f}; connected components of the true foreground "
        f"{inst['foreground_components']['rand_error']:.3f}; clustering of true colourings "
        f"{inst['oracle']['rand_error']:.3f}. The HPU-Net "
        f"{'beats' if inst['hpunet']['rand_error'] < inst['foreground_components']['rand_error'] - TIE else 'does not beat'}"
        f" foreground components. IoU_rec of the colourings: {inst['hpunet']['iou_rec']:.3f} vs "
        f"{inst['probunet']['iou_rec']:.3f}; distinct colours per sample: {inst['hpunet']['colours_per_sample']:.1f} vs "
        f"{inst['probunet']['colours_per_sample']:.1f} (of {r['budget_sizes']['colours']}).",
        f"- **GECO dynamics** (paper: lambda rises until the reconstruction reaches kappa, then falls). Lambda "
        f"went from {r['geco']['lambda_first']:.2f} to a maximum of {r['geco']['lambda_max']:.2f} at iteration "
        f"{r['geco']['lambda_max_step']} and ended at {r['geco']['lambda_last']:.2f}; the reconstruction per loss "
        f"pixel ended at {r['geco']['rec_per_pixel_last']:.3f} (kappa {r['geco']['kappa']:g}).",
    ]


def _report(out: Path, r: dict[str, Any], b: Budget) -> None:
    amb, inst = r["ambiguous"], r["instances"]
    lines = [
        "# HPU-Net against the probabilistic U-Net, synthetic ambiguous data (unetkit reproduce hpunet)", "",
        f"Budget `{r['budget']}`: {b.iterations} iterations per model on ambiguous objects, {b.instance_iterations} "
        f"on instance colouring; {b.train_images} training images x 4 graders, {b.test_images} held-out test "
        f"images of {b.size}^2 px; {b.samples} samples per image; batches of {b.batch_size}. HPU-Net: "
        f"{b.levels} levels, {b.base} -> {b.max_channels} channels, {b.blocks} blocks per level, {b.latent_scales} "
        f"latent scales, GECO (kappa 0.05; top-k 2 % on ambiguous objects, all pixels on instance colouring). "
        f"Prob. U-Net: depth {b.pu_depth}, {b.pu_base} base features, 6-D global latent, ELBO (beta 1), all pixels. "
        f"Parameters (ambiguous task): HPU-Net {r['parameters']['hpunet']:,}, prob. U-Net "
        f"{r['parameters']['probunet']:,}. Wall time {r['seconds']:.0f} s.", "",
        "## Ambiguous objects", "",
        "| model | GED^2 (lower better) | Hungarian IoU | IoU_rec | mean abs freq - p (all px) | "
        "(ambiguous px) | train s |", "|---|---|---|---|---|---|---|",
    ]
    for m in (*MODELS, "oracle"):
        v = amb[m]
        rec = f"{v['iou_rec']:.3f}" if "iou_rec" in v else "-"
        secs = f"{r['train_seconds'].get('ambiguous_' + m, float('nan')):.0f}" if m != "oracle" else "-"
        lines.append(f"| {m} | {v['ged']:.3f} | {v['hungarian_iou']:.3f} | {rec} | {v['freq_mae']:.3f} | "
                     f"{v['freq_mae_ambiguous']:.3f} | {secs} |")
    lines += ["", "The oracle draws the same number of masks from the true distribution: the best each number "
              "can be with this many samples.", "",
              "## Sampling from one latent scale (HPU-Net)", "",
              "| sampling | GED^2 | Hungarian IoU | std in uncertain cores | std on certain rings |", "|---|---|---|---|---|"]
    singles = sorted((k for k in r["spread"] if k.startswith("hpunet_only_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    named = [(k, f"scale {k.rsplit('_', 1)[1]} only" + (" (most global)" if i == 0 else
                                                          " (most local)" if i == len(singles) - 1 else ""))
             for i, k in enumerate(singles)]
    for key, label in (("hpunet", "all scales"), *named, ("oracle", "true distribution")):
        scores = r["ambiguous_scales"].get(key, r["ambiguous"].get(key))
        lines.append(f"| {label} | {scores['ged']:.3f} | {scores['hungarian_iou']:.3f} | "
                     f"{r['spread'][key]['core_std']:.3f} | {r['spread'][key]['ring_std']:.3f} |")
    lines += ["", "## Instance colouring", "",
              f"{b.colours} colours, Hamming clustering of {b.samples} samples (alpha = n, erosion 5, majority 11).", "",
              "| model | adapted Rand error | instances found / true | colours per sample | IoU_rec (colours) | train s |",
              "|---|---|---|---|---|---|"]
    for m in (*MODELS, "oracle", "foreground_components"):
        v = inst[m]
        rec = f"{v['iou_rec']:.3f}" if "iou_rec" in v else "-"
        secs = f"{r['train_seconds'].get('instances_' + m, float('nan')):.0f}" if m in MODELS else "-"
        colours = f"{v['colours_per_sample']:.1f}" if "colours_per_sample" in v else "-"
        lines.append(f"| {m} | {v['rand_error']:.3f} | {v['found']:.1f} / {v['true']:.1f} | {colours} | {rec} | "
                     f"{secs} |")
    lines += ["", "oracle: the same clustering of random colourings of the true instances (checks the clustering "
              "alone); foreground_components: connected components of the true foreground, what a method that "
              "cannot tell touching cells apart reaches.", "",
              "## The paper's claims at this scale", "", *claims(r), "",
              f"Caveats: small nets, one seed, short training, synthetic data; differences under {TIE} are called "
              "ties and larger ones may still be noise.", "",
              "## Figures", "", "![samples](samples.png)", "", "![instances](instances.png)", "",
              "![HPU-Net training: reconstruction, KL per scale, lambda](training.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


# ----------------------------------------------------------------------------- run
def run(out: str | Path, *, budget: str = "full", verbose: bool = False) -> dict[str, Any]:
    """Train the four nets, evaluate them, write the report, figures, ``results.json`` and ``runs/``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = Budget.named(budget)
    shape = (b.size, b.size)
    with experiment_clock(verbose) as clock:
        train_a = ambiguous_objects(b.train_images, shape, 4, seed=0)
        test_a = ambiguous_objects(b.test_images, shape, 4, seed=1)
        train_c = instance_colouring(b.train_images, shape, 4, b.colours, seed=2)
        test_c = instance_colouring(b.test_images, shape, 4, b.colours, seed=3)
        train_seconds: dict[str, float] = {}
        amb: dict[str, dict[str, float]] = {}
        amb_scales: dict[str, dict[str, float]] = {}
        spreads: dict[str, dict[str, float]] = {}
        draws: dict[str, np.ndarray] = {}
        geco: dict[str, float] = {}
        parameters: dict[str, int] = {}
        for name in MODELS:
            clock.say(f"train {name} on ambiguous objects")
            ts = time.perf_counter()
            tr = train(out / "runs", f"ambiguous_{name}", name, train_a.images, train_a.graders, 2, b, b.iterations,
                       progress=verbose)
            train_seconds[f"ambiguous_{name}"] = time.perf_counter() - ts
            model = tr.model
            parameters[name] = sum(p.numel() for p in model.parameters())
            draws[name] = draw(model, test_a.images, b.samples)
            recon = np.stack([reconstruct(model, test_a.images, test_a.graders[:, g])
                              for g in range(test_a.graders.shape[1])], axis=1)
            amb[name] = ambiguous_metrics(draws[name], test_a, recon)
            if name == "hpunet":
                scales = range(model.latent_scales)
                for k in scales:  # sample scale k only, every other scale at its prior mean
                    draws[f"hpunet_only_{k}"] = draw(model, test_a.images, b.samples,
                                                     mean_scales=tuple(j for j in scales if j != k))
                for key in ("hpunet", *(f"hpunet_only_{k}" for k in scales)):
                    amb_scales[key] = ambiguous_metrics(draws[key], test_a, None)
                    spreads[key] = spread(draws[key], test_a)
                hpu_log = training_records(out / "runs" / "ambiguous_hpunet" / "metrics.jsonl")
                geco = _geco_summary(hpu_log, tr.cfg.task.kappa)
        rng = np.random.default_rng(4)
        oracle = np.stack([sample_truth(test_a, i, b.samples, rng) for i in range(b.test_images)])
        amb["oracle"] = ambiguous_metrics(oracle, test_a, None)
        spreads["oracle"] = spread(oracle, test_a)
        draws["oracle"] = oracle
        _samples_figure(out / "samples.png", test_a, draws)
        _training_figure(out / "training.png", hpu_log)

        inst: dict[str, dict[str, float]] = {}
        inst_draws: dict[str, np.ndarray] = {}
        found: dict[str, list[np.ndarray]] = {}
        classes = b.colours + 1
        for name in MODELS:
            clock.say(f"train {name} on instance colouring")
            ts = time.perf_counter()
            tr = train(out / "runs", f"instances_{name}", name, train_c.images, train_c.graders, classes, b,
                       b.instance_iterations, topk=False, progress=verbose)
            train_seconds[f"instances_{name}"] = time.perf_counter() - ts
            inst_draws[name] = draw(tr.model, test_c.images, b.samples)
            found[name], err = instance_scores(inst_draws[name], test_c.instances)
            recon = np.stack([reconstruct(tr.model, test_c.images, test_c.graders[:, g])
                              for g in range(test_c.graders.shape[1])], axis=1)
            colours = tuple(range(1, classes))
            rec = float(np.nanmean([iou_rec(recon[i], test_c.graders[i], classes=colours, empty=float("nan"),
                                            batch=True) for i in range(b.test_images)]))
            used = [len(np.unique(s[s > 0])) for per_image in inst_draws[name] for s in per_image]
            inst[name] = {"rand_error": err, "iou_rec": rec, "found": float(np.mean([f.max() for f in found[name]])),
                          "true": float(np.mean([t.max() for t in test_c.instances])),
                          "colours_per_sample": float(np.mean(used))}
        components = [ndi.label(t > 0)[0] for t in test_c.instances]
        inst["foreground_components"] = {
            "rand_error": float(np.nanmean([adapted_rand_error(c, t) for c, t in zip(components, test_c.instances)])),
            "found": float(np.mean([c.max() for c in components])),
            "true": float(np.mean([t.max() for t in test_c.instances]))}
        truth_draws = _random_colourings(test_c.instances, b.samples, b.colours, np.random.default_rng(5))
        oracle_found, oracle_err = instance_scores(truth_draws, test_c.instances)
        inst["oracle"] = {"rand_error": oracle_err, "found": float(np.mean([f.max() for f in oracle_found])),
                          "true": float(np.mean([t.max() for t in test_c.instances]))}
        _instances_figure(out / "instances.png", test_c.images, test_c.instances, inst_draws, found,
                          shown=min(2, b.test_images))
        results = {"budget": budget, "budget_sizes": asdict(b), "models": list(MODELS),
                   "model_configs": {m: model_config(m, b, 2) for m in MODELS},
                   "task_configs": {"ambiguous": {m: task_config(m) for m in MODELS},
                                    "instances": {m: task_config(m, topk=False) for m in MODELS}}, "parameters": parameters, "ambiguous": amb,
                   "ambiguous_scales": amb_scales, "spread": spreads, "instances": inst, "geco": geco,
                   "train_seconds": train_seconds, "seconds": clock.seconds()}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        _report(out, results, b)
    return results


def _random_colourings(instances: np.ndarray, n: int, colours: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random colourings of each true instance map ``(B, *S)`` -> ``(B, n, *S)`` (colours
    1..``colours``, background 0): what a perfect model of the colouring task samples."""
    out = []
    for inst in instances:
        table = rng.integers(1, colours + 1, size=(n, int(inst.max()) + 1))
        table[:, 0] = 0
        out.append(table[:, inst])
    return np.stack(out)


def _geco_summary(records: list[dict[str, Any]], kappa: float) -> dict[str, float]:
    """Lambda's first, largest (and its step) and last logged value, the last reconstruction per
    loss pixel and the KL per scale at the end, from a GECO run's log ``records``."""
    records = [r for r in records if "train/lambda" in r]
    if not records:
        return {}
    lam = [r["train/lambda"] for r in records]
    k = int(np.argmax(lam))
    last = records[-1]
    # constraint = rec_ma - kappa * n (n: loss pixels per image), so n = (rec_ma - constraint) / kappa
    n = (last["train/rec_ma"] - last["train/constraint"]) / kappa
    per_pixel = last["train/rec_ma"] / n if n > 0 else float("nan")
    tail = records[-5:]  # the KL of single batches is noisy: mean of the last five logged steps
    scales = sorted((key for key in last if key.startswith("train/kl_")), key=lambda key: int(key.rsplit("_", 1)[1]))
    kl_last = [float(np.mean([r[key] for r in tail])) for key in scales]
    return {"lambda_first": lam[0], "lambda_max": lam[k], "lambda_max_step": records[k]["step"],
            "lambda_last": lam[-1], "rec_per_pixel_last": per_pixel, "kappa": kappa, "kl_last": kl_last}
