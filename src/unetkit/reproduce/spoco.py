"""``unetkit reproduce spoco``: SPOCO's claims on synthetic crowded cells, sized for a CPU.

Wolny et al., "Sparse object-level supervision for instance segmentation with pixel
embeddings" (papers/spoco-sparse-object-supervision.txt; method notes section 3). Data:
:func:`unetkit.data.synthetic.blobs` (touching cells with instance labels), 2-D and a small
3-D case. Every net: the same small same-padding U-Net (depth 3, 16 base features, batch norm,
E = 16), Adam (lr 2e-3, cosine decay), batches of 2 patches with flips and 90-degree rotations,
momentum m = 0.999 for g, seed 0, the same iterations.

Settings (2-D):

* ``embedding``: the discriminative loss with every object and the background labelled;
* ``spoco@p`` for p in 0.1, 0.4, 1.0: L_SSO with ``round(p n)`` of each image's ``n`` objects
  labelled (p < 1: everything else, background included, unlabelled);
* ``spoco@0.1_no_ucon`` / ``spoco@0.1_no_upush``: SPOCO@0.1 without L_U-con / L_U-push
  (the paper's ablation);
* annotation budget (paper Appendix A.5): the same ``N`` labelled objects as one densely
  labelled image (``budget_dense_1_image``, background labelled) or one object on each of
  ``N`` images (``budget_sparse_N_images``, background unlabelled).

3-D: ``embedding`` and ``spoco@0.4`` on small volumes.

Evaluation: held-out fully labelled images, whole-image embeddings clustered by the mutex
watershed (background: the largest segment and every segment within ``delta_v`` of its mean
embedding; segments under :data:`MIN_SIZE` pixels dropped);
symmetric best Dice (SBD), |DiC| and mean segmentation accuracy (mSA, IoU thresholds
0.5..0.95), averaged over the images. A clustering table compares mutex watershed, mean shift, HDBSCAN and consistency clustering on the
``spoco@0.4`` net. Figures: PCA of the embeddings of every pixel (background too, as in the
paper's Fig. 3) and the segmentations.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetkit.data.datasets import Sample, make_sample
from unetkit.data.synthetic import blobs
from unetkit.inference import predict
from unetkit.reproduce.training import experiment_clock, train_in_memory
from unetkit.training import Trainer

OUTPUTS = ("report.md", "results.json", "embeddings_pca.png", "segmentations.png", "runs")
"""What :func:`run` writes into its folder (``unetkit reproduce`` refuses to replace them without --overwrite)."""

DELTA_V, DELTA_D = 0.5, 2.0
MIN_SIZE = {2: 30, 3: 20}
"""Size filter of the clustering (pixels / voxels): below the smallest cell (2-D: radius 5, semi-axes
down to 0.75 r: about 44 px; 3-D: radius 3, about 48 voxels), above most fragments."""
LR = 2e-3  # Adam, cosine decay to 0 (few iterations on a shared CPU)
FRACTIONS = (0.1, 0.4, 1.0)
METRICS = ("sbd", "abs_dic", "msa")
CLUSTERINGS = ("mutex_watershed", "mean_shift", "hdbscan", "consistency")


@dataclass
class Budget:
    """Sizes of the run: ``full`` (the report, minutes) or ``smoke`` (tests, seconds)."""

    iterations: int
    train_images: int
    test_images: int
    size: int  # 2-D image side
    patch: int  # 2-D training patch side
    budget_objects: int  # N of the annotation-budget comparison
    iterations_3d: int
    size_3d: int
    patch_3d: int
    base_features: int = 16
    embedding_dim: int = 16
    depth: int = 3
    batch_size: int = 2

    @classmethod
    def named(cls, name: str) -> Budget:
        if name == "full":
            return cls(iterations=1200, train_images=8, test_images=4, size=96, patch=64, budget_objects=8,
                       iterations_3d=400, size_3d=32, patch_3d=24)
        if name == "smoke":
            return cls(iterations=2, train_images=2, test_images=1, size=40, patch=32, budget_objects=2,
                       iterations_3d=1, size_3d=16, patch_3d=16, base_features=4, embedding_dim=4, depth=2,
                       batch_size=1)
        raise ValueError(f"budget must be 'full' or 'smoke', got {name!r}")


# ----------------------------------------------------------------------------- data
def cells(n: int, shape: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` crowded-cell images with instance labels (radius 5..10 px in 2-D, 3..5 in 3-D)."""
    radius = (5.0, 10.0) if len(shape) == 2 else (3.0, 5.0)
    return [blobs(shape, radius=radius, density=0.8, seed=1000 * seed + i) for i in range(n)]


def samples(pairs: list[tuple[np.ndarray, np.ndarray]], ndim: int) -> list[Sample]:
    return [make_sample(img, lab.astype(np.int64), ndim=ndim) for img, lab in pairs]


def budget_labels(pairs: list[tuple[np.ndarray, np.ndarray]], n_objects: int, seed: int
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """Appendix A.5: ``n_objects`` labelled objects, dense on one image or spread over ``n_objects`` images.

    Dense: the first image keeps the ``n_objects`` objects nearest its centre; the other
    objects are painted over with the background intensity, so the image is fully labelled
    (background too) with exactly ``n_objects`` objects. Spread: image ``1 + k`` keeps one
    random object, everything else unlabelled (0).
    """
    rng = np.random.default_rng(seed)
    img, lab = pairs[0]
    ids = np.unique(lab[lab > 0])
    centre = np.array(lab.shape) / 2
    dist = np.array([np.linalg.norm(np.argwhere(lab == i).mean(0) - centre) for i in ids])
    keep = ids[np.argsort(dist)[:n_objects]]
    dense_lab = np.where(np.isin(lab, keep), lab, 0)
    background = float(np.median(img[lab == 0])) if (lab == 0).any() else float(img.min())
    dense_img = np.where((lab > 0) & ~np.isin(lab, keep), background, img).astype(np.float32)
    spread = []
    for k in range(n_objects):
        im, lb = pairs[1 + k]
        ids_k = np.unique(lb[lb > 0])
        one = rng.choice(ids_k)
        spread.append((im, np.where(lb == one, lb, 0)))
    return [(dense_img, dense_lab)], spread


# ----------------------------------------------------------------------------- training
def train(out: Path, name: str, task: dict[str, Any], train_set: list[Sample], b: Budget, *, ndim: int = 2,
          iterations: int | None = None, progress: bool = False) -> Trainer:
    patch = [b.patch] * 2 if ndim == 2 else [b.patch_3d] * 3
    iterations = iterations or b.iterations
    model = {"ndim": ndim, "depth": b.depth, "base_features": b.base_features, "norm": "batch",
             "out_channels": b.embedding_dim, "padding": "same"}
    data = {"patch_shape": patch, "batch_size": b.batch_size, "augment": {"flip": True, "rot90": True},
            "normalize": {"mode": "none"}}
    return train_in_memory(out, name, train_set, task=task, model=model, data=data, iterations=iterations, lr=LR,
                           progress=progress)


def spoco_task(fraction: float = 1.0, labels: str = "dense", **weights: float) -> dict[str, Any]:
    return {"name": "spoco", "fraction": fraction, "labels": labels, "delta_v": DELTA_V, "delta_d": DELTA_D,
            "momentum": 0.999, **weights}


EMBEDDING_TASK = {"name": "embedding", "delta_v": DELTA_V, "delta_d": DELTA_D, "background": "instance"}


def embed(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    return np.asarray(predict(model, image, memory_budget=None))


def labelled_objects(trainer: Trainer) -> list[int]:
    """Labelled objects (ids > 0) in each training image as the trainer sees them."""
    return [int(np.unique(s.labels[s.labels > 0]).size) for s in trainer.train_samples]


# ----------------------------------------------------------------------------- evaluation
def scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    from unetkit.metrics import dic, mean_segmentation_accuracy, symmetric_best_dice

    return {"sbd": float(symmetric_best_dice(pred, gt)), "abs_dic": float(dic(pred, gt, absolute=True)),
            "msa": float(mean_segmentation_accuracy(pred, gt))}


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def mws(emb: np.ndarray) -> np.ndarray:
    from unetkit.clustering import mutex_watershed

    return np.asarray(mutex_watershed(emb, delta_d=DELTA_D, min_size=MIN_SIZE[emb.ndim - 1],
                                      background_radius=DELTA_V))


def evaluate(model: torch.nn.Module, test: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, float], list]:
    embs, rows = [], []
    for img, lab in test:
        e = embed(model, make_sample(img, lab.astype(np.int64), ndim=lab.ndim).image[0])
        embs.append(e)
        rows.append(scores(mws(e), lab))
    return mean_scores(rows), embs


def clustering_table(trainer: Trainer, test: list[tuple[np.ndarray, np.ndarray]], embs: list[np.ndarray],
                     min_size: int) -> dict[str, dict[str, float]]:
    from unetkit.clustering import consistency_clustering, hdbscan, mean_shift

    g = trainer.task.g  # type: ignore[attr-defined]
    views = trainer.task.views  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    methods = {
        "mutex_watershed": lambda e, e2: mws(e),
        "mean_shift": lambda e, e2: np.asarray(mean_shift(e, bandwidth=DELTA_V, kernel="flat",
                                                           largest_is_background=True, min_size=min_size)),
        "hdbscan": lambda e, e2: np.asarray(hdbscan(e, min_size=min_size)),
        "consistency": lambda e, e2: np.asarray(consistency_clustering(e, e2, delta_v=DELTA_V, kernel="flat",
                                                                       min_size=min_size)),
    }
    g_embs = []
    for (img, lab), e in zip(test, embs):
        x = make_sample(img, lab.astype(np.int64), ndim=lab.ndim).image
        view = np.asarray(views(x, None, rng)[0], dtype=np.float32)
        g_embs.append(embed(g.net, view[0]))
    for name, fn in methods.items():
        rows, secs = [], []
        for (img, lab), e, e2 in zip(test, embs, g_embs):
            t0 = time.perf_counter()
            pred = fn(e, e2)
            secs.append(time.perf_counter() - t0)
            rows.append(scores(pred, lab))
        out[name] = {**mean_scores(rows), "seconds_per_image": float(np.mean(secs))}
    return out


# ----------------------------------------------------------------------------- figures
def pca_rgb(emb: np.ndarray) -> np.ndarray:
    """Every pixel's embedding (background too) projected on its first 3 principal components -> RGB in [0, 1]."""
    e = emb.reshape(emb.shape[0], -1).T.astype(np.float64)
    e = e - e.mean(0)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    k = min(3, vt.shape[0])
    p = e @ vt[:k].T
    if k < 3:
        p = np.concatenate([p, np.zeros((p.shape[0], 3 - k))], 1)
    lo, hi = np.percentile(p, 1, axis=0), np.percentile(p, 99, axis=0)
    p = np.clip((p - lo) / np.maximum(hi - lo, 1e-12), 0, 1)
    return p.reshape(*emb.shape[1:], 3)


def colour(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    lut = rng.uniform(0.2, 1.0, size=(int(labels.max()) + 1, 3))
    lut[0] = 0
    return lut[labels]


def _figures(out: Path, image: np.ndarray, gt: np.ndarray, embs: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(embs)
    for fname, panel in (("embeddings_pca.png", pca_rgb), ("segmentations.png", lambda e: colour(mws(e)))):
        fig, axes = plt.subplots(1, len(names) + 2, figsize=(2.4 * (len(names) + 2), 2.6))
        axes[0].imshow(image, cmap="gray")
        axes[0].set_title("image", fontsize=8)
        axes[1].imshow(colour(gt))
        axes[1].set_title("ground truth", fontsize=8)
        for ax, n in zip(axes[2:], names):
            ax.imshow(panel(embs[n]))
            ax.set_title(n, fontsize=8)
        for ax in axes:
            ax.axis("off")
        fig.suptitle("PCA (3 components -> RGB) of every pixel's embedding" if fname.startswith("emb")
                     else "mutex watershed segmentations (random colours)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)


# ----------------------------------------------------------------------------- report
def _row(name: str, m: dict[str, float], extra: str = "") -> str:
    return f"| {name} | {m['sbd']:.3f} | {m['abs_dic']:.2f} | {m['msa']:.3f} |{extra}"


def claims(r: dict[str, Any]) -> list[str]:
    s = r["settings_2d"]
    out = []
    emb, p01, p04, p10 = (s[k]["metrics"]["sbd"] for k in ("embedding", "spoco@0.1", "spoco@0.4", "spoco@1.0"))
    gap = emb - p01
    out.append(f"- *SPOCO@0.1 comes close to full-label training* (paper Tab. 1-3): SBD {p01:.3f} vs "
               f"{emb:.3f} (discriminative loss, all labels): "
               + ("**holds** (within 0.05)." if gap <= 0.05 else f"**does not hold** here (gap {gap:.3f})."))
    out.append(f"- *More labelled objects help*: SBD at p = 0.1 / 0.4 / 1.0: {p01:.3f} / {p04:.3f} / {p10:.3f}: "
               + ("**holds** (monotone)." if p01 <= p04 <= p10 else "**not monotone** at this scale."))
    full01 = s["spoco@0.1"]["metrics"]["sbd"]
    for k, term in (("spoco@0.1_no_ucon", "L_U-con"), ("spoco@0.1_no_upush", "L_U-push")):
        v = s[k]["metrics"]["sbd"]
        out.append(f"- *Removing {term} hurts SPOCO@0.1* (paper's ablation): SBD {v:.3f} without vs "
                   f"{full01:.3f} with: " + ("**holds**." if v < full01 else "**does not hold** here."))
    d, sp = (s[k]["metrics"]["sbd"] for k in ("budget_dense_1_image", "budget_sparse_N_images"))
    out.append(f"- *Spreading N labelled objects over N images beats one dense image* (App. A.5): SBD {sp:.3f} "
               f"spread vs {d:.3f} dense: " + ("**holds**." if sp > d else "**does not hold** here."))
    c = r["clustering"]
    best = max(c, key=lambda k: c[k]["sbd"])
    out.append(f"- Clustering (paper Tab. 5-6, mutex watershed and consistency clustering competitive): best "
               f"SBD here by **{best}** ({c[best]['sbd']:.3f}).")
    if c["consistency"]["sbd"] < 0.5 * c["mean_shift"]["sbd"]:
        it = r["budget_sizes"]["iterations"]
        m = r["settings_2d"]["spoco@0.4"]["task"]["momentum"]
        out.append(f"- Consistency clustering keeps few objects here (SBD {c['consistency']['sbd']:.3f} against "
                   f"{c['mean_shift']['sbd']:.3f} for the mean shift it filters). It keeps an object only where f "
                   f"and g agree; the likely cause is that after {it} steps with m = {m} the momentum network g "
                   f"still holds {m ** it:.0%} of its initial weights (the paper trains far longer than "
                   f"1 / (1 - m) = {1 / (1 - m):.0f} steps).")
    t = r["settings_3d"]
    out.append(f"- 3-D: SBD embedding {t['embedding']['metrics']['sbd']:.3f}, SPOCO@0.4 "
               f"{t['spoco@0.4']['metrics']['sbd']:.3f} (one small case only).")
    return out


def _report(out: Path, r: dict[str, Any], b: Budget) -> None:
    lines = [
        "# SPOCO on synthetic crowded cells (unetkit reproduce spoco)", "",
        f"Budget `{r['budget']}`: {b.iterations} iterations per 2-D net ({b.iterations_3d} in 3-D), "
        f"{b.train_images} training and {b.test_images} held-out test images of {b.size}^2 px "
        f"({b.size_3d}^3 voxels in 3-D), U-Net depth {b.depth}, {b.base_features} base features, "
        f"E = {b.embedding_dim}, delta_v = {DELTA_V}, delta_d = {DELTA_D}. Wall time {r['seconds']:.0f} s.", "",
        "Test metrics: held-out fully labelled images, mutex watershed on the whole-image embeddings, "
        "mean over images. SBD and mSA: higher is better; |DiC|: lower is better.", "",
        "## Settings (2-D)", "",
        "| setting | SBD | abs DiC | mSA | labelled objects per training image |",
        "|---|---|---|---|---|",
    ]
    for name, v in r["settings_2d"].items():
        lines.append(_row(name, v["metrics"], f" {v['labelled_objects']} |"))
    lines += ["", "## 3-D", "", "| setting | SBD | abs DiC | mSA | labelled objects per training image |",
              "|---|---|---|---|---|"]
    for name, v in r["settings_3d"].items():
        lines.append(_row(name, v["metrics"], f" {v['labelled_objects']} |"))
    lines += ["", f"## Clustering ({r['clustering_model']} net, 2-D test images)", "",
              "| method | SBD | abs DiC | mSA | seconds per image |", "|---|---|---|---|---|"]
    for name, v in r["clustering"].items():
        lines.append(_row(name, v, f" {v['seconds_per_image']:.3f} |"))
    lines += ["", "## The paper's claims at this scale", "", *claims(r), "",
              "Caveats: small nets, few iterations, synthetic cells and one seed; differences of a few "
              "hundredths are within run-to-run noise and prove nothing either way.", "",
              "## Figures", "", "![embeddings](embeddings_pca.png)", "", "![segmentations](segmentations.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


# ----------------------------------------------------------------------------- run
def run(out: str | Path, *, budget: str = "full", verbose: bool = False) -> dict[str, Any]:
    """Run every setting, write ``report.md``, ``results.json``, the figures and ``runs/``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = Budget.named(budget)
    with experiment_clock(verbose) as clock:
        runs = out / "runs"
        shape = (b.size, b.size)
        n_extra = b.budget_objects + 1
        data = cells(b.train_images + b.test_images + n_extra, shape, seed=0)
        train_pairs, test = data[:b.train_images], data[b.train_images:b.train_images + b.test_images]
        dense, spread = budget_labels(data[b.train_images + b.test_images:], b.budget_objects, seed=0)
        train_set = samples(train_pairs, 2)
        settings: dict[str, tuple[dict[str, Any], list[Sample]]] = {
            "embedding": (EMBEDDING_TASK, train_set),
            **{f"spoco@{p}": (spoco_task(p), train_set) for p in FRACTIONS},
            "spoco@0.1_no_ucon": (spoco_task(0.1, u_con_weight=0.0), train_set),
            "spoco@0.1_no_upush": (spoco_task(0.1, u_push_weight=0.0), train_set),
            "budget_dense_1_image": (spoco_task(1.0), samples(dense, 2)),
            "budget_sparse_N_images": (spoco_task(1.0, labels="sparse"), samples(spread, 2)),
        }
        s2: dict[str, Any] = {}
        embs2: dict[str, list[np.ndarray]] = {}
        trainers: dict[str, Trainer] = {}
        for name, (task, tset) in settings.items():
            clock.say(f"2-D {name}")
            ts = time.perf_counter()
            tr = train(runs, name.replace("@", "_"), task, tset, b, progress=verbose)
            metrics, embs = evaluate(tr.model, test)
            s2[name] = {"metrics": metrics, "labelled_objects": labelled_objects(tr),
                        "objects": [int(np.unique(s.labels[s.labels > 0]).size) for s in tset],
                        "fraction": task.get("fraction"), "task": task, "seconds": time.perf_counter() - ts}
            embs2[name] = embs
            trainers[name] = tr
        clock.say("clustering comparison")
        clustering = clustering_table(trainers["spoco@0.4"], test, embs2["spoco@0.4"], min_size=MIN_SIZE[2])
        shape3 = (b.size_3d,) * 3
        data3 = cells(3, shape3, seed=1)
        train3, test3 = samples(data3[:2], 3), data3[2:]
        s3: dict[str, Any] = {}
        for name, task in (("embedding", EMBEDDING_TASK), ("spoco@0.4", spoco_task(0.4))):
            clock.say(f"3-D {name}")
            ts = time.perf_counter()
            tr = train(runs, "3d_" + name.replace("@", "_"), task, train3, b, ndim=3, iterations=b.iterations_3d,
                       progress=verbose)
            metrics, _ = evaluate(tr.model, test3)
            s3[name] = {"metrics": metrics, "labelled_objects": labelled_objects(tr),
                        "objects": [int(np.unique(s.labels[s.labels > 0]).size) for s in train3],
                        "fraction": task.get("fraction"), "seconds": time.perf_counter() - ts}
        clock.say("figures")
        img0, gt0 = test[0]
        shown = ("embedding", "spoco@0.1", "spoco@1.0", "spoco@0.1_no_ucon", "budget_sparse_N_images")
        _figures(out, make_sample(img0, gt0.astype(np.int64), ndim=2).image[0], gt0,
                 {k: embs2[k][0] for k in shown})
        seconds = clock.seconds()
        results = {"budget": budget, "budget_sizes": asdict(b), "settings_2d": s2, "settings_3d": s3,
                   "clustering": clustering, "clustering_model": "spoco@0.4",
                   "test_objects": [int(np.unique(l[l > 0]).size) for _, l in test], "seconds": seconds}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        _report(out, results, b)
    return results
