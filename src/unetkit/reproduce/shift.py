"""``unetkit reproduce shift``: the shift-equivariance paper's claims on synthetic discs.

Rumberger et al., "How shift equivariance impacts metric learning for instance segmentation"
(papers/shift-equivariance-metric-learning.txt). A valid U-Net with l poolings of factor f is
periodic-f^l shift equivariant and can implement at most f^(d l) relative-distinct functions.
Three experiments, all on 2-D images of same-looking discs (radius 5) on a regular grid, with
a U-Net of depth l = 3, f = 2 (f^l = 8, f^(d l) = 64) trained by the discriminative loss:

(a) Same-looking objects. Trained on discs spaced 16 = 2 f^l apart, every disc gets the same
    embedding; spaced 15 (co-prime with 8) the discs fall on all 64 phases of the pooling grid
    and receive up to 64 distinct embeddings. Counted as distinct disc-centre embeddings and as
    mean-shift clusters of the per-disc mean embeddings.
(b) Tile and stitch. (1) trained with output window w = f^l (loss on an 8x8 crop of the
    output), predicted whole: jumps on the f^l grid lines where the functions that never were
    neighbours in the crop meet; (2) trained with w = 20 > f^l, tiles of 20 stitched uncropped:
    jumps at the tile borders; (3) the same net, tiles cropped to n f^l = 16 and placed on the
    f^l grid (unetkit's exact plan): identical to the whole-image prediction.
    Seam score (see :func:`seam_score`): at every within-object pair of neighbouring pixels
    across a boundary line, how much the prediction's jump differs from the jump between the
    same two pixels in a *reference* prediction in which no boundary lies between them,
    relative to the reference's typical within-object jump (0: no seam).
(c) Constant input. Fixed (nearest) upsampling maps a constant image to a constant output;
    learnt (transposed-conv) upsampling yields f^(d l) = 64 distinct output vectors.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unetkit.data.datasets import Sample, make_sample
from unetkit.data.synthetic import disc_grid
from unetkit.data.windows import read_window
from unetkit.inference import predict
from unetkit.models import UNet
from unetkit.training import Trainer, validate_config
from unetkit.tasks import EmbeddingTask

OUTPUTS = ("report.md", "results.json", "a_same_looking_objects.png", "b_tile_and_stitch.png",
           "c_constant_input.png", "runs")
"""What :func:`run` writes into its folder (``unetkit reproduce`` refuses to replace them without --overwrite)."""

DEPTH, FACTOR = 3, 2
PERIOD = FACTOR**DEPTH  # f^l = 8
RADIUS = 5
TASK = {"delta_v": 0.0, "delta_d": 3.0, "gamma": 1e-4, "background": "instance"}  # the authors' notebooks


@dataclass
class Budget:
    """Sizes of the run: ``full`` (the report, a few CPU minutes) or ``smoke`` (tests)."""

    iterations: int
    grid: int  # discs per axis in the evaluation image
    embedding_dim: int = 4
    base_features: int = 12

    @classmethod
    def named(cls, name: str) -> Budget:
        if name == "full":
            return cls(iterations=4000, grid=12)
        if name == "smoke":
            return cls(iterations=4, grid=4, embedding_dim=3, base_features=4)
        raise ValueError(f"budget must be 'full' or 'smoke', got {name!r}")


class AlignedCropTask(EmbeddingTask):
    """Embedding task whose loss only sees the first ``window`` output pixels per axis.

    Emulates training with output window w = f^l (no valid U-Net of this family outputs exactly
    f^l pixels): the crop starts at output pixel 0, so the functions u_0 ... u_{f^l - 1} are all
    trained but u_{f^l - 1} and u_0 never as neighbours.
    """

    def __init__(self, window: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = window

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        w = self.window
        return super().loss(output[..., :w, :w], target[..., :w, :w])


def disc_samples(spacing: int, n: int, size: int, seed: int) -> list[Sample]:
    """``n`` disc images of ``size`` px with random grid offsets (instance labels)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        off = tuple(int(v) for v in rng.integers(RADIUS, RADIUS + spacing, size=2))
        img, lab = disc_grid((size, size), spacing=spacing, radius=RADIUS, offset=off)
        out.append(make_sample(img, lab, ndim=2, normalize_mode="none"))
    return out


def train(out: Path, name: str, spacing: int, budget: Budget, *, output_window: int, crop: int | None,
          upsampling: str = "transposed", seed: int = 0, progress: bool = False) -> UNet:
    """Train a valid U-Net with the discriminative loss on disc images; returns it in eval mode.

    ``progress`` shows the trainer's progress bar (on a terminal only).
    """
    probe = UNet(1, budget.embedding_dim, depth=DEPTH, factor=FACTOR)
    patch = list(probe.input_shape_for(probe.valid_output_shapes((output_window, output_window))[0]))
    cfg = validate_config({
        "out": str(out / name), "seed": seed,
        "task": {"name": "embedding", **TASK},
        "model": {"depth": DEPTH, "factor": FACTOR, "base_features": budget.base_features, "norm": None,
                  "out_channels": budget.embedding_dim, "upsampling": upsampling, "padding": "valid"},
        "data": {"patch_shape": patch, "batch_size": 1, "augment": None, "normalize": {"mode": "none"}},
        "optimizer": {"name": "adam", "lr": 2e-3},
        "training": {"iterations": budget.iterations, "val_every": max(1, budget.iterations // 5),
                     "checkpoint_every": budget.iterations, "device": "cpu",
                     "threads": 1},  # small tensors: one thread is fastest, and robust on a shared machine
    })
    task = AlignedCropTask(crop, budget.embedding_dim, **TASK) if crop else None
    samples = disc_samples(spacing, 8, 160, seed)
    trainer = Trainer(cfg, train_samples=samples, val_samples=[], progress=progress, task=task)
    trainer.fit()
    return trainer.model.eval()


def embed(model: UNet, image: np.ndarray) -> np.ndarray:
    """Whole-image embeddings ``(E, H, W)`` (one tile)."""
    return predict(model, image, memory_budget=None)


def distinct_rows(vectors: np.ndarray, rel: float = 1e-4) -> int:
    """Number of distinct rows of ``vectors (K, E)``, up to ``rel`` times their largest magnitude.

    Rows closer than the tolerance are joined (connected components), so float noise of the
    convolution kernels (which differs by position in a tensor) does not count as distinct.
    """
    from scipy.sparse.csgraph import connected_components

    v = np.asarray(vectors, dtype=np.float64)
    tol = rel * max(float(np.abs(v).max()), 1e-30)
    close = np.abs(v[:, None, :] - v[None, :, :]).max(-1) <= tol
    return int(connected_components(close, directed=False)[0])


def disc_table(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre pixel ``(K, 2)``, centre embedding ``(K, E)``, mean embedding ``(K, E)``) per disc."""
    ids = np.arange(1, labels.max() + 1)
    flat = labels.ravel()
    e = emb.reshape(emb.shape[0], -1)
    counts = np.bincount(flat, minlength=ids.size + 1)[1:]
    means = np.stack([np.bincount(flat, weights=e[c], minlength=ids.size + 1)[1:] for c in range(e.shape[0])], 1)
    means /= counts[:, None]
    coords = np.argwhere(labels > 0)
    lab_at = labels[labels > 0]
    centres = np.stack([coords[lab_at == i].mean(0).round().astype(int) for i in ids])
    return centres, emb[:, centres[:, 0], centres[:, 1]].T, means


def cluster(vectors: np.ndarray, bandwidth: float) -> np.ndarray:
    """Mean-shift cluster label of each per-object embedding vector ``(K, E)`` -> ``(K,)``."""
    from unetkit.clustering import mean_shift

    return np.asarray(mean_shift(vectors.T.reshape(vectors.shape[1], -1, 1), bandwidth=bandwidth)).ravel()


def neighbours_separated(where: np.ndarray, labels: np.ndarray, spacing: int) -> float:
    """Fraction of lattice-neighbour disc pairs (centres ``spacing`` apart) in different clusters."""
    d = np.abs(where[:, None, :] - where[None, :, :]).sum(-1)
    i, j = np.nonzero(np.triu(d == spacing))
    return float((labels[i] != labels[j]).mean()) if len(i) else float("nan")


def naive_stitch(model: UNet, image: np.ndarray, keep: int) -> np.ndarray:
    """Stitch tile outputs [0, keep) of every tile at a stride of ``keep`` (no grid alignment)."""
    h = model.halo[0]
    tile_out = model.valid_output_shapes((keep, keep))[0]
    assert all(t >= keep for t in tile_out)
    tile_in = model.input_shape_for(tile_out)
    H, W = image.shape
    out = np.zeros((model.out_channels, H, W), dtype=np.float32)
    with torch.no_grad():
        for y in range(0, H, keep):
            for x in range(0, W, keep):
                window = read_window(image, (y - h, x - h), tile_in)[None, None].astype(np.float32)
                res = model(torch.from_numpy(window))[0].numpy()
                ys, xs = min(keep, H - y), min(keep, W - x)
                out[:, y : y + ys, x : x + xs] = res[:, :ys, :xs]
    return out


def pair_jumps(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Differences between neighbouring pixels of ``emb (E, H, W)`` along y and x.

    Returns ``(E, H - 1, W)`` and ``(E, H, W - 1)``: entry ``[:, y, x]`` is the embedding at
    ``(y + 1, x)`` (resp. ``(y, x + 1)``) minus the one at ``(y, x)``.
    """
    return np.diff(emb, axis=1), np.diff(emb, axis=2)


def boundary_pairs(labels: np.ndarray, lines: tuple[np.ndarray, np.ndarray], region: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the within-object neighbour pairs that straddle a boundary line.

    ``labels (H, W)`` instance labels (0 = background); ``lines[ax]`` the coordinates c along
    axis ``ax`` where a boundary lies between pixel c - 1 and c; ``region = (lo, hi)`` keeps
    only pairs whose pixels both lie in ``[lo, hi)`` on both axes. Masks have the shapes of
    :func:`pair_jumps`.
    """
    lo, hi = max(region[0], 0), region[1]
    same = (labels[1:] == labels[:-1]) & (labels[1:] > 0), (labels[:, 1:] == labels[:, :-1]) & (labels[:, 1:] > 0)
    masks = []
    for ax in (0, 1):
        c = np.arange(1, labels.shape[ax])  # pair (c - 1, c) along this axis
        across = np.isin(c, lines[ax]) & (c - 1 >= lo) & (c < hi)
        other = np.arange(labels.shape[1 - ax])
        other = (other >= lo) & (other < hi)
        masks.append(same[ax] & (np.outer(across, other) if ax == 0 else np.outer(other, across)))
    return masks[0], masks[1]


def seam_score(test: np.ndarray, reference: np.ndarray, labels: np.ndarray,
               lines: tuple[np.ndarray, np.ndarray], region: tuple[int, int]) -> dict[str, float]:
    """How much a prediction jumps across boundary lines, measured against a seam-free reference.

    For every within-object pair of neighbouring pixels (p, q) straddling a line, the excess
    jump is ``|(t_q - t_p) - (r_q - r_p)|`` for the tested embeddings ``t`` and the reference
    ``r`` (a prediction of the same net with no boundary between p and q). The seam score is
    the mean excess jump divided by the reference's mean jump ``|r_q - r_p|`` over the same
    pairs: 0 when the boundaries are invisible (``t`` has the reference's local structure
    there), 1 when a seam adds as much as the jump that belongs there.

    Args:
        test, reference: ``(E, H, W)`` embeddings (reference may hold NaN outside ``region``).
        labels: ``(H, W)`` instance labels, 0 = background.
        lines: per axis, the coordinates c of the boundary between pixels c - 1 and c.
        region: ``(lo, hi)``, the square window ``[lo, hi)^2`` where pairs are measured.

    Returns:
        ``seam_score``; ``mean_excess_jump`` and ``max_excess_jump`` (embedding units);
        ``reference_jump``, the reference's mean jump over the pairs; ``pairs``, their count.

    Raises:
        ValueError: no within-object pair straddles a line inside ``region``.
    """
    tj, rj = pair_jumps(test), pair_jumps(reference)
    at = boundary_pairs(labels, lines, region)
    excess = np.concatenate([np.linalg.norm(t - r, axis=0)[m] for t, r, m in zip(tj, rj, at)])
    if excess.size == 0:
        raise ValueError(f"no within-object pixel pair straddles a line inside region {region}")
    ref = float(np.concatenate([np.linalg.norm(r, axis=0)[m] for r, m in zip(rj, at)]).mean())
    return {"seam_score": float(excess.mean()) / max(ref, 1e-12), "mean_excess_jump": float(excess.mean()),
            "max_excess_jump": float(excess.max()), "reference_jump": ref, "pairs": int(excess.size)}


def jump_map(emb: np.ndarray) -> np.ndarray:
    """``(H, W)`` largest jump of each pixel of ``emb (E, H, W)`` to its lower or right neighbour."""
    out = np.zeros(emb.shape[1:], dtype=np.float32)
    dy, dx = pair_jumps(emb)
    out[:-1] = np.linalg.norm(dy, axis=0)
    out[:, :-1] = np.fmax(out[:, :-1], np.linalg.norm(dx, axis=0))
    return np.nan_to_num(out)


def excess_map(test: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(H, W)`` largest excess jump (:func:`seam_score`) of each pixel to its lower or right neighbour."""
    return jump_map(test - reference)


def rgb(emb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` view of embeddings: first 3 principal components scaled to [0, 1]."""
    e = emb.reshape(emb.shape[0], -1).T
    e = e - e.mean(0)
    _, _, vt = np.linalg.svd(e[:: max(1, len(e) // 20000)], full_matrices=False)
    p = e @ vt[:3].T
    p = (p - p.min(0)) / np.maximum(p.max(0) - p.min(0), 1e-9)
    if p.shape[1] < 3:
        p = np.concatenate([p, np.zeros((len(p), 3 - p.shape[1]))], 1)
    return p.reshape(*emb.shape[1:], 3)


def experiment_a(out: Path, budget: Budget, progress: bool = False) -> tuple[dict[str, Any], dict[int, UNet]]:
    results, models, views = {}, {}, {}
    for spacing in (16, 15):
        model = train(out, f"a_spacing{spacing}", spacing, budget, output_window=20, crop=None, progress=progress)
        models[spacing] = model
        # evaluate only discs whose receptive field (halo + up to f^l - 1 for the pooling phase) sees the
        # complete lattice: discs that would cross the image border are missing within 2 R of it
        margin = model.halo[0] + PERIOD + 2 * RADIUS + 1
        size = spacing * (budget.grid - 1) + 2 * margin + 1
        first = margin % spacing + (spacing if margin % spacing <= RADIUS else 0)  # lattice through `margin`,
        img, lab = disc_grid((size, size), spacing=spacing, radius=RADIUS, offset=first)  # complete near the border
        emb = embed(model, img)
        where, centres, means = disc_table(emb, lab)
        inner = ((where >= margin) & (where < size - margin)).all(1)  # context entirely inside the image
        where, centres, means = where[inner], centres[inner], means[inner]
        phases = len({(int(y) % PERIOD, int(x) % PERIOD) for y, x in where})
        groups = cluster(means, TASK["delta_d"])
        results[f"spacing_{spacing}"] = {
            "discs": len(centres),
            "grid_phases_covered": phases,
            "distinct_centre_embeddings": distinct_rows(centres),
            "mean_shift_clusters_of_disc_means": len(np.unique(groups)),
            "neighbour_pairs_in_different_clusters": neighbours_separated(where, groups, spacing),
        }
        views[spacing] = (img, emb)
    return {"results": results, "views": views}, models


def experiment_b(out: Path, budget: Budget, model_15: UNet, progress: bool = False) -> dict[str, Any]:
    """The three tile-and-stitch cases on a disc image (spacing 15), each with its seam score."""
    from unetkit.inference import plan_tiles

    model_w8 = train(out, "b_window8", 15, budget, output_window=12, crop=PERIOD, progress=progress)
    halo, shift = model_15.halo[0], PERIOD // 2
    margin = halo + PERIOD  # measure where mirrored context at the image border plays no role
    size = 2 * margin + 15 * budget.grid + 2 * RADIUS + 2
    big, big_lab = disc_grid((size + shift, size + shift), spacing=15, radius=RADIUS, offset=RADIUS + 1)
    img, lab = big[:size, :size], big_lab[:size, :size]
    region = (margin, size - margin)

    # case 1: the loss saw output pixels 0..f^l - 1 of each patch, i.e. grid phases halo .. halo + f^l - 1;
    # phases halo - 1 and halo (image pixels c - 1, c with c = halo mod f^l) never met in one crop.
    # Reference: the same net on the image shifted by f^l / 2, which moves those pairs mid-crop.
    whole_w8 = embed(model_w8, img)
    shifted = embed(model_w8, big[shift:, shift:])
    ref_w8 = np.full_like(whole_w8, np.nan)
    ref_w8[:, shift:, shift:] = shifted[:, : size - shift, : size - shift]
    grid_lines = np.arange(halo % PERIOD, size, PERIOD)

    whole = embed(model_15, img)
    stitched_20 = naive_stitch(model_15, img, 20)
    exact_tile = model_15.valid_input_shapes(model_15.input_shape_for((20, 20)))[0]
    exact = predict(model_15, img, tile_shape=exact_tile)
    plan = plan_tiles(model_15, img.shape, tile_shape=exact_tile)
    core = plan.core_shape[0]
    borders = tuple(np.array([t.image_start for t in plan.axes[ax]][1:]) for ax in (0, 1))
    every_20 = np.arange(20, size, 20)
    cases = {
        "1_train_w_eq_f^l": (whole_w8, ref_w8, (grid_lines, grid_lines),
                             f"f^l grid lines (pixels c - 1, c with c = {halo % PERIOD} mod 8)"),
        "2_train_w_gt_f^l_uncropped_20": (stitched_20, whole, (every_20, every_20), "tile borders every 20 px"),
        f"3_train_w_gt_f^l_cropped_{core}": (exact, whole, borders, f"tile borders every {core} px"),
    }
    results: dict[str, Any] = {}
    for name, (emb, ref, lines, where) in cases.items():
        results[name] = {**seam_score(emb, ref, lab, lines, region), "boundaries": where}
    for name, emb in (("2_train_w_gt_f^l_uncropped_20", stitched_20), (f"3_train_w_gt_f^l_cropped_{core}", exact)):
        results[name]["max_abs_diff_to_whole_image"] = float(np.abs(emb - whole).max())
    results["tiles_in_case_3"] = plan.n_tiles
    results["max_abs_whole_image_embedding"] = float(np.abs(whole).max())
    results["delta_d"] = TASK["delta_d"]
    views = {k: (v[0], v[2][1], excess_map(v[0], v[1])) for k, v in cases.items()}
    return {"results": results, "views": views, "labels": lab, "region": region}


def experiment_c(budget: Budget) -> dict[str, Any]:
    out = {}
    views = {}
    for up in ("nearest", "transposed"):
        torch.manual_seed(0)
        model = UNet(1, budget.embedding_dim, depth=DEPTH, factor=FACTOR, base_features=budget.base_features,
                     upsampling=up).eval()  # type: ignore[arg-type]
        with torch.no_grad():  # default init leaves the deep levels' share below float rounding; scale it up
            for p in model.parameters():
                p.mul_(2.0)
        shape = model.input_shape_for(model.valid_output_shapes((64, 64))[0])
        with torch.no_grad():
            y = model(torch.ones(1, 1, *shape))[0].numpy()
        rows = np.unique(y.reshape(y.shape[0], -1).T, axis=0)  # a 60x60 output: merge exact repeats first
        out[up] = {"distinct_output_vectors": distinct_rows(rows, rel=1e-6),
                   "bound_f^(d l)": FACTOR ** (2 * DEPTH)}
        views[up] = y
    return {"results": out, "views": views}


def _figures(out: Path, a: dict, b: dict, c: dict) -> list[str]:
    from unetkit.report import _pyplot

    plt = _pyplot()
    names: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names.append(name)

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
    for k, spacing in enumerate((16, 15)):
        img, emb = a["views"][spacing]
        axes[2 * k].imshow(img, cmap="gray")
        axes[2 * k].set_title(f"discs, spacing {spacing}")
        axes[2 * k + 1].imshow(rgb(emb))
        r = a["results"][f"spacing_{spacing}"]
        axes[2 * k + 1].set_title(f"embeddings: {r['distinct_centre_embeddings']} distinct")
    for ax in axes:
        ax.set_axis_off()
    save(fig, "a_same_looking_objects.png")

    from matplotlib.colors import LogNorm

    views = b["views"]
    lo, hi = b["region"]
    zoom = slice(lo, min(hi, lo + 48))  # a window of the measured region, large enough to see single pixels
    jumps = {k: jump_map(v[0])[zoom, zoom] for k, v in views.items()}
    excess = {k: v[2][zoom, zoom] for k, v in views.items()}
    jmax = max(float(j.max()) for j in jumps.values()) or 1.0  # one colour scale per row
    emax = max(float(e.max()) for e in excess.values()) or 1.0
    fig, axes = plt.subplots(3, 3, figsize=(12, 12.5))
    for k, (name, (emb, lines, _)) in enumerate(views.items()):
        r = b["results"][name]
        axes[0, k].imshow(rgb(emb))
        axes[0, k].add_patch(plt.Rectangle((zoom.start - 0.5,) * 2, zoom.stop - zoom.start, zoom.stop - zoom.start,
                                           fill=False, ec="w", lw=1))
        axes[0, k].set_title(f"{name}\n{r['boundaries']}\n(white square: zoom below)", fontsize=9)
        im_j = axes[1, k].imshow(np.maximum(jumps[name], 1e-4), cmap="magma", norm=LogNorm(vmin=1e-3, vmax=jmax))
        axes[1, k].set_title("jump between neighbouring pixels", fontsize=9)
        im_e = axes[2, k].imshow(np.maximum(excess[name], 1e-7), cmap="magma", norm=LogNorm(vmin=1e-6, vmax=emax))
        axes[2, k].set_title(f"|jump - seam-free reference jump|\nseam score {r['seam_score']:.3g}", fontsize=9)
        for row in (1, 2):
            for line in lines[(lines > zoom.start) & (lines < zoom.stop)] - zoom.start:
                axes[row, k].axhline(line - 0.5, color="c", lw=0.7, ls=":")
                axes[row, k].axvline(line - 0.5, color="c", lw=0.7, ls=":")
        for ax in axes[:, k]:
            ax.set_axis_off()
    fig.colorbar(im_j, ax=axes[1].tolist(), shrink=0.8, label="embedding units (log)")
    fig.colorbar(im_e, ax=axes[2].tolist(), shrink=0.8, label="embedding units (log)")
    fig.savefig(out / "b_tile_and_stitch.png", dpi=80)
    plt.close(fig)
    names.append("b_tile_and_stitch.png")

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, up in zip(axes, ("nearest", "transposed")):
        ax.imshow(rgb(c["views"][up]))
        ax.set_title(f"constant input, {up}: {c['results'][up]['distinct_output_vectors']} distinct")
        ax.set_axis_off()
    save(fig, "c_constant_input.png")
    return names


def _report(out: Path, results: dict, seconds: float, budget: Budget) -> Path:
    a, b, c = results["a"], results["b"], results["c"]
    c1, c2, c3 = (next(v for k, v in b.items() if k.startswith(f"{i}_")) for i in (1, 2, 3))
    rel3 = c3["max_abs_diff_to_whole_image"] / max(b["max_abs_whole_image_embedding"], 1e-30)
    lines = [
        "# Shift equivariance and tile-and-stitch: reproduction on synthetic discs", "",
        f"Valid U-Net, depth l = {DEPTH}, pooling factor f = {FACTOR} (f^l = {PERIOD}, f^(d l) = {FACTOR ** (2 * DEPTH)}), "
        f"{budget.base_features} base features, {budget.embedding_dim}-D embeddings, discriminative loss "
        f"(delta_v = {TASK['delta_v']}, delta_d = {TASK['delta_d']}, gamma = {TASK['gamma']}, background as an instance), "
        f"{budget.iterations} iterations per model, batch size 1. Run time {seconds:.0f} s on the CPU. "
        "Every number below was computed by this run.", "",
        "## (a) Same-looking objects", "",
        "| disc spacing | discs | grid phases covered | distinct centre embeddings (rel. tol. 1e-4) "
        "| mean-shift clusters of disc means | neighbouring discs told apart |",
        "|---|---|---|---|---|---|",
    ]
    for spacing in (16, 15):
        r = a[f"spacing_{spacing}"]
        lines.append(f"| {spacing} | {r['discs']} | {r['grid_phases_covered']} | {r['distinct_centre_embeddings']} | "
                     f"{r['mean_shift_clusters_of_disc_means']} | {100 * r['neighbour_pairs_in_different_clusters']:.0f} % |")
    lines += ["", "Spacing 16 is a multiple of f^l: all discs sit on the same phase of the pooling grid and get one "
              "embedding. Spacing 15 is co-prime with 8: the discs cover the grid phases, and the network can give them "
              "up to f^(d l) = 64 distinct embeddings. The discriminative loss only asks discs that share a training "
              "window to differ, so the trained network reuses a few clusters across the image (like a map colouring); "
              "what matters for instance segmentation is that neighbouring discs fall into different clusters.", "",
              "![a](a_same_looking_objects.png)", "",
              "## (b) Tile and stitch", "",
              "| case | boundaries | seam score | mean / max excess jump | pairs | max abs diff to whole-image prediction |",
              "|---|---|---|---|---|---|"]
    for name, r in b.items():
        if not isinstance(r, dict):
            continue
        diff = r.get("max_abs_diff_to_whole_image")
        lines.append(f"| {name} | {r['boundaries']} | {r['seam_score']:.3g} | {r['mean_excess_jump']:.3g} / "
                     f"{r['max_excess_jump']:.3g} | {r['pairs']} | {'-' if diff is None else f'{diff:.2e}'} |")
    lines += ["", "Seam score: for every pair of neighbouring pixels inside one disc that straddles a boundary line, "
              "the excess jump |(t_q - t_p) - (r_q - r_p)| of the tested embeddings t over a seam-free reference r; "
              "the score is the mean excess divided by the reference's mean jump |r_q - r_p| over the same pairs "
              "(0: the boundaries are invisible; 1: the seam adds as much as the jump that belongs there). "
              "Reference for cases 2 and 3: the whole-image prediction of the same net. Reference for case 1 (whose lines are in the whole-image prediction itself): the same net on "
              f"the image shifted by f^l / 2, which moves the pairs off the lines. Only pixels at least halo + f^l "
              f"from the image border are measured. For scale: the push margin is 2 delta_d = {2 * b['delta_d']:g}.", "",
              "Case 1 is the whole-image prediction of a net whose loss saw an 8x8 output window: functions on "
              "either side of the f^l grid lines never met in one window, so nothing made their embeddings agree "
              f"(mean excess jump {c1['mean_excess_jump']:.3g}). Case 2's uncropped tiles of 20 px start on grid "
              "phases that differ by 20 mod 8 = 4 between neighbouring tiles, so each tile computes other functions "
              "than its neighbour and than the whole-image pass; how visible the seams are depends on how much the "
              f"embeddings depend on that phase (here the stitched prediction differs from the whole-image one by up "
              f"to {c2['max_abs_diff_to_whole_image']:.3g}). Case 3 places tiles on the f^l grid and crops them to "
              f"cores of n f^l ({b['tiles_in_case_3']} tiles): its largest difference to the whole-image prediction is "
              f"{c3['max_abs_diff_to_whole_image']:.1e}, {rel3:.1e} of the largest embedding value "
              f"({b['max_abs_whole_image_embedding']:.3g}){', float rounding' if rel3 < 1e-5 else ''}.", "",
              "![b](b_tile_and_stitch.png)", "",
              "## (c) Constant input", "", "| upsampling | distinct output vectors | bound f^(d l) |", "|---|---|---|"]
    for up in ("nearest", "transposed"):
        r = c[up]
        lines.append(f"| {up} | {r['distinct_output_vectors']} | {r['bound_f^(d l)']} |")
    lines += ["", "With fixed (nearest) upsampling a constant image maps to a constant output; learnt upsampling "
              "implements f^(d l) relative-distinct output functions (random weights scaled by 2 so that every level "
              "contributes above float rounding; the count is structural, no training needed).",
              "", "![c](c_constant_input.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def run(out: str | Path = "unetkit-reproduce/shift", *, budget: str = "full", verbose: bool = True) -> dict[str, Any]:
    """Run the three experiments; write ``report.md``, ``results.json`` and figures into ``out``."""
    t0 = time.perf_counter()
    b = Budget.named(budget)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = print if verbose else (lambda *a, **k: None)
    say("(c) constant input")
    c = experiment_c(b)
    say("(a) training on discs spaced 16 and 15")
    a, models = experiment_a(out / "runs", b, progress=verbose)
    say("(b) training with a window of f^l and stitching three ways")
    bb = experiment_b(out / "runs", b, models[15], progress=verbose)
    seconds = time.perf_counter() - t0
    results = {"a": a["results"], "b": bb["results"], "c": c["results"], "seconds": seconds, "budget": budget}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _figures(out, a, bb, c)
    _report(out, results, seconds, b)
    return results
