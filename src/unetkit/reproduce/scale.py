"""``unetkit reproduce scale``: SEU-Net against U-Net on unseen scales, synthetic data, CPU.

Sangalli et al., "Scale equivariant U-Net" (papers/scale-equivariant-unet.txt; method notes,
section 1). Data: :func:`unetkit.data.synthetic.textured_objects`, 3 classes (background,
boundary ring, object interior) with objects of ONE size (radius :data:`RADIUS` +- 10 %), the
interior striped at a period proportional to the radius, the background smooth noise; so the
segmentation depends on the object scale. Training at that one scale; test: held-out images
rescaled by ``2 ** linspace(-2, 2, 17)`` (:func:`unetkit.metrics.scales.evaluate_scales`:
mean IoU over the foreground classes boundary and interior, as the semantic task computes it,
and scale consistency per factor).

Models, all with depth 3, :attr:`Budget.base_features` first-layer features, batch norm, same
padding, semantic task (CE + Dice), Adam (lr 2e-3, cosine decay), batches of
:attr:`Budget.batch_size` patches with flips and 90-degree rotations, seed 0, the same iterations:

* ``unet``: the plain U-Net;
* ``unet_jitter``: the same with scale-jitter augmentation, factors in [1/2, 2] (``r = 2``);
* ``sresnet``: SResNet (projection, then one upsampling), S = :attr:`Budget.scales` scales;
* ``seunet_p0`` / ``seunet_p0.25``: SEU-Net, S scales, scale dropout p = 0 / 0.25.

Budget and timing (2 CPU threads, 64^2 patches, batch 4, depth 3, base 8 features, S = 3;
probed with 20 training steps per model through the Trainer, data loading included, and one
96^2 test image through all 17 factors): U-Net 0.05 s/step (eval 0.4 s per image), U-Net with
jitter 0.05 s/step (0.4 s), SResNet 0.07 s/step (0.8 s), SEU-Net 0.13 s/step (6.1 s: tiling
with the halo of S = 3 scales). ``full`` (1000 iterations each, 4 test images): about
50 + 50 + 70 + 130 + 130 s of training and 60 s of evaluation, an estimated 8 minutes on 2
idle cores (up to twice that on busy ones), inside the 20-minute limit. ``smoke``: 2
iterations, tiny nets and 32^2 images, about 8 s.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetkit.data.datasets import make_sample
from unetkit.data.rescale import DEFAULT_SCALE_FACTORS
from unetkit.data.synthetic import textured_objects
from unetkit.metrics.scales import evaluate_scales, plot_scale_curves
from unetkit.reproduce.training import experiment_clock, train_in_memory
from unetkit.training import Trainer

OUTPUTS = ("report.md", "results.json", "scale_curves.png", "runs")
"""What :func:`run` writes into its folder (``unetkit reproduce`` refuses to replace them without --overwrite)."""

MODELS = ("unet", "unet_jitter", "sresnet", "seunet_p0", "seunet_p0.25")
RADIUS = 8.0  # object radius at the training scale (pixels)
JITTER_R = 2.0
LR = 2e-3
TIE = 0.02
"""Differences in mean IoU below this are called ties in the claims (one seed, small nets)."""


@dataclass
class Budget:
    """Sizes of the run: ``full`` (the report, minutes) or ``smoke`` (tests, seconds)."""

    iterations: int
    train_images: int
    test_images: int
    size: int  # image side (2-D)
    patch: int  # training patch side
    base_features: int = 8
    scales: int = 3
    depth: int = 3
    batch_size: int = 4
    radius: float = RADIUS

    @classmethod
    def named(cls, name: str) -> Budget:
        if name == "full":
            return cls(iterations=1000, train_images=8, test_images=4, size=96, patch=64)
        if name == "smoke":
            return cls(iterations=2, train_images=1, test_images=1, size=32, patch=16, base_features=2, scales=2,
                       depth=1, batch_size=1, radius=4.0)
        raise ValueError(f"budget must be 'full' or 'smoke', got {name!r}")


def model_config(name: str, b: Budget) -> dict[str, Any]:
    """The ``model`` config section of experiment model ``name`` (one of :data:`MODELS`)."""
    common = {"ndim": 2, "in_channels": 1, "out_channels": 3, "depth": b.depth, "base_features": b.base_features,
              "norm": "batch"}
    if name in ("unet", "unet_jitter"):
        return {"name": "unet", **common, "padding": "same"}
    if name == "sresnet":
        return {"name": "sresnet", **common, "scales": b.scales}
    if name.startswith("seunet_p"):
        return {"name": "seunet", **common, "scales": b.scales, "scale_dropout": float(name[len("seunet_p"):])}
    raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")


def data(n: int, b: Budget, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` images ``(Y, X)`` with class maps ``(Y, X)`` (0, 1, 2) of side ``b.size``."""
    return [textured_objects((b.size, b.size), radius=b.radius, seed=1000 * seed + i) for i in range(n)]


def train(out: Path, name: str, pairs: list[tuple[np.ndarray, np.ndarray]], b: Budget, *,
          progress: bool = False) -> Trainer:
    """Train model ``name`` on ``pairs`` (no validation set); the trainer, its model in eval mode."""
    augment: dict[str, Any] = {"flip": True, "rot90": True}
    if name == "unet_jitter":
        augment["scale_jitter"] = JITTER_R
    samples = [make_sample(img, lab.astype(np.int64), ndim=2) for img, lab in pairs]
    data = {"patch_shape": [b.patch] * 2, "batch_size": b.batch_size, "augment": augment, "normalize": {"mode": "none"}}
    return train_in_memory(out, name, samples, task={"name": "semantic"}, model=model_config(name, b), data=data,
                           iterations=b.iterations, lr=LR, progress=progress)


# ----------------------------------------------------------------------------- claims
def mean_over(result: dict[str, Any], key: str, where: Any) -> float:
    """Mean of ``key`` over the rows of an :func:`evaluate_scales` result whose factor satisfies ``where``."""
    vals = [r[key] for r in result["rows"] if where(r["factor"])]
    return float(np.mean(vals)) if vals else float("nan")


def away(f: float) -> bool:
    """Factors far from the training scale: <= 0.5 or >= 2."""
    return f <= 0.5 + 1e-9 or f >= 2.0 - 1e-9


def at_one(f: float) -> bool:
    return abs(f - 1.0) < 1e-9


def summary(scales: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model: mean IoU and consistency away from factor 1, IoU at factor 1, mean IoU over all factors."""
    return {m: {"iou_away": mean_over(r, "iou", away), "consistency_away": mean_over(r, "consistency", away),
                "iou_at_1": mean_over(r, "iou", at_one), "iou_all": mean_over(r, "iou", lambda f: True)}
            for m, r in scales.items()}


def _compare(a: float, b: float) -> str:
    return "ties with" if abs(a - b) < TIE else ("beats" if a > b else "loses to")


def claims(s: dict[str, dict[str, float]]) -> list[str]:
    """The paper's claims, each answered from the numbers in ``summary`` (``s``)."""
    seu, unet, jit = s["seunet_p0"], s["unet"], s["unet_jitter"]
    gap = seu["iou_away"] - unet["iou_away"]
    if gap < TIE:
        jitter = "there is no gap to close (SEU-Net p=0 is not ahead of the U-Net away from factor 1)"
    elif jit["iou_away"] >= seu["iou_away"] - TIE:
        jitter = "it closes the gap"
    elif jit["iou_away"] > unet["iou_away"] + TIE:
        jitter = "it narrows the gap but does not close it"
    else:
        jitter = "it does not narrow the gap"
    p25 = s["seunet_p0.25"]
    return [
        f"- **Unseen scales** (paper: SEU-Net clearly ahead of U-Net, Pet and HeLa). Mean IoU over factors "
        f"<= 0.5 and >= 2: SEU-Net p=0 {seu['iou_away']:.3f} {_compare(seu['iou_away'], unet['iou_away'])} "
        f"U-Net {unet['iou_away']:.3f}; SEU-Net p=0.25 {p25['iou_away']:.3f}; SResNet "
        f"{s['sresnet']['iou_away']:.3f}.",
        f"- **Training scale** (paper: SEU-Net no worse, even better). IoU at factor 1: SEU-Net p=0 "
        f"{seu['iou_at_1']:.3f} {_compare(seu['iou_at_1'], unet['iou_at_1'])} U-Net {unet['iou_at_1']:.3f}, "
        f"so SEU-Net {'loses' if unet['iou_at_1'] - seu['iou_at_1'] >= TIE else 'does not lose'} at factor 1.",
        f"- **Scale jitter** (paper: the jittered U-Net stays behind SEU-Net, except at the largest Pet "
        f"scales against p=0). U-Net with jitter r={JITTER_R:g}: {jit['iou_away']:.3f} away from factor 1 "
        f"(U-Net {unet['iou_away']:.3f}, SEU-Net p=0 {seu['iou_away']:.3f}): {jitter}.",
        f"- **Scale dropout** (paper: helps on Pet, not on HeLa). SEU-Net p=0.25 {p25['iou_away']:.3f} "
        f"{_compare(p25['iou_away'], seu['iou_away'])} p=0 {seu['iou_away']:.3f} away from factor 1 "
        f"(all factors: {p25['iou_all']:.3f} vs {seu['iou_all']:.3f}), so dropout "
        f"{'helps' if p25['iou_away'] - seu['iou_away'] >= TIE else 'does not help'} here.",
        "- **Consistency** away from factor 1: " + ", ".join(f"{m} {v['consistency_away']:.3f}" for m, v in s.items())
        + ".",
    ]


# ----------------------------------------------------------------------------- report
def _report(out: Path, r: dict[str, Any], b: Budget) -> None:
    scales = r["scales"]
    factors = scales[MODELS[0]]["factors"]
    head = "| factor | " + " | ".join(MODELS) + " |"
    rule = "|---" * (len(MODELS) + 1) + "|"
    lines = [
        "# SEU-Net on unseen scales, synthetic textured objects (unetkit reproduce scale)", "",
        f"Budget `{r['budget']}`: {b.iterations} iterations per model, {b.train_images} training and "
        f"{b.test_images} held-out test images of {b.size}^2 px, objects of radius {b.radius:g} px (+-10 %), "
        f"depth {b.depth}, {b.base_features} base features, S = {b.scales} scales, batches of {b.batch_size} "
        f"patches of {b.patch}^2. Wall time {r['seconds']:.0f} s.", "",
        "IoU: mean over the foreground classes (boundary, interior) of the confusion matrix over all test "
        "images at each factor; consistency: fraction of pixels whose class on the original image equals the "
        "class of the rescaled image's logits resized back (method notes, section 1).", "",
        "## Mean IoU per factor", "", head, rule,
    ]
    lines += [table_row(f, [scales[m]["rows"][i]["iou"] for m in MODELS]) for i, f in enumerate(factors)]
    lines += ["", "## Consistency per factor", "", head, rule]
    lines += [table_row(f, [scales[m]["rows"][i]["consistency"] for m in MODELS]) for i, f in enumerate(factors)]
    lines += ["", "## Summary", "", "| model | IoU away (<= 0.5, >= 2) | IoU at 1 | IoU all | consistency away | "
              "train s |", "|---|---|---|---|---|---|"]
    for m in MODELS:
        v = r["summary"][m]
        lines.append(f"| {m} | {v['iou_away']:.3f} | {v['iou_at_1']:.3f} | {v['iou_all']:.3f} | "
                     f"{v['consistency_away']:.3f} | {r['train_seconds'][m]:.0f} |")
    lines += ["", "## The paper's claims at this scale", "", *claims(r["summary"]), "",
              f"Caveats: small nets, one seed, synthetic data; differences under {TIE} are called ties and "
              "larger ones may still be run-to-run noise.", "",
              "## Figure", "", "![IoU and consistency per factor](scale_curves.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


def table_row(factor: float, values: list[float]) -> str:
    """One table line: the factor (3 decimals) and one value per model (3 decimals)."""
    return f"| {factor:.3f} | " + " | ".join(f"{v:.3f}" for v in values) + " |"


# ----------------------------------------------------------------------------- run
def run(out: str | Path, *, budget: str = "full", verbose: bool = False) -> dict[str, Any]:
    """Train the five models, evaluate them on every factor, write ``report.md``, ``results.json``,
    ``scale_curves.png`` and ``runs/``; returns the results."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = Budget.named(budget)
    with experiment_clock(verbose) as clock:
        train_pairs, test = data(b.train_images, b, seed=0), data(b.test_images, b, seed=1)
        scales: dict[str, Any] = {}
        train_seconds: dict[str, float] = {}
        eval_seconds: dict[str, float] = {}
        for name in MODELS:
            clock.say(f"train {name}")
            ts = time.perf_counter()
            tr = train(out / "runs", name, train_pairs, b, progress=verbose)
            train_seconds[name] = time.perf_counter() - ts
            clock.say(f"evaluate {name}")
            ts = time.perf_counter()
            with torch.no_grad():
                scales[name] = evaluate_scales(tr.model, tr.task, tr.cfg, [img for img, _ in test],
                                               [lab for _, lab in test], DEFAULT_SCALE_FACTORS)
            eval_seconds[name] = time.perf_counter() - ts
        plot_scale_curves(scales, out / "scale_curves.png")
        results = {"budget": budget, "budget_sizes": asdict(b), "models": list(MODELS),
                   "model_configs": {m: model_config(m, b) for m in MODELS}, "jitter_r": JITTER_R,
                   "scales": scales, "summary": summary(scales), "train_seconds": train_seconds,
                   "eval_seconds": eval_seconds, "seconds": clock.seconds()}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        _report(out, results, b)
    return results
