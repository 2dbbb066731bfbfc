"""``unetkit reproduce shift``: the shift-equivariance paper's claims on synthetic discs.

Rumberger et al., "How shift equivariance impacts metric learning for instance segmentation"
(papers/shift-equivariance-metric-learning.txt). A valid U-Net with l poolings of factor f is
periodic-f^l shift equivariant and can implement at most f^(d l) relative-distinct functions.
All nets: depth l = 3, f = 2 (f^l = 8, f^(d l) = 64), discriminative loss with the authors'
settings (push margin 2 delta_d = 6). Every trained net is reported next to its *untrained
baseline*: the same architecture with the same seed, i.e. the very weights training started
from. What tells trained from untrained is separability at the push margin, not a count of
"distinct" vectors (an untrained net's 64 pooling phases are distinct too, only tiny).

(a) Same-looking objects (paper Fig. 2). Discs of radius 5 on a lattice; nets trained on
    discs spaced 16 = 2 f^l (learnt upsampling) and 15, co-prime with 8 (learnt and fixed
    upsampling, Fig. 2b / 2c). Per net and for its untrained baseline: the distance between
    the mean embeddings of the same-phase discs (periodicity: 0 up to float rounding), and
    what is *separable* (:func:`separation`): neighbouring discs' mean distance against the
    margin, the fraction of neighbour / all disc pairs farther apart than the margin, the
    size of a greedy set of discs pairwise beyond the margin, mean-shift clusters.
(b) Tile and stitch (Fig. 3). Case 1: a net trained with output window w = f^l (loss on an
    8x8 crop), predicted whole, seams on the f^l grid lines. Cases 2 and 3: one net trained
    with w = 20 > f^l (the spacing-15 net of (a)), tiles of 20 stitched uncropped (2) or
    cropped to n f^l = 16 on the f^l grid (3, unetkit's exact plan). Case 1 needs its own
    net: its seams come from what the loss window let the net learn. Controls: every net
    under every inference. Seam strength (:func:`seam_excess`): at each within-disc pair of
    neighbouring pixels across a boundary line, the excess of the prediction's jump over the
    jump of a seam-free reference at the same pixels, in units of the push margin.
(c) Constant input (Fig. 4, 5). Valid nets, fixed and learnt upsampling, untrained and
    trained to give every pixel of an f^l x f^l window its own instance: with nearest
    upsampling the output is exactly constant, with transposed upsampling it has 64 phase
    outputs (:func:`constant_output_stats`). A zero-padding ("same") U-Net with nearest
    upsampling, untrained and trained the same way on 24 x 24 patches, is location aware:
    its output on a constant image varies with the distance from the image border
    (:func:`border_profile`, :func:`band_width`). The paper trains the valid net of Fig. 4
    and does not say whether the zero-padding net of Fig. 5 was trained; both are shown.

Training: Adam, lr 1e-3 with cosine decay to 0, batch size 1, seed 0 for every net (so nets
of one architecture share their initial weights). Numbers are those of the last step.
"""

from __future__ import annotations

import copy
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
           "c_constant_input.png", "c_same_padding_border.png", "runs")
"""What :func:`run` writes into its folder (``unetkit reproduce`` refuses to replace them without --overwrite)."""

DEPTH, FACTOR = 3, 2
PERIOD = FACTOR**DEPTH  # f^l = 8
BOUND = FACTOR ** (2 * DEPTH)  # f^(d l) = 64
RADIUS = 5
TASK = {"delta_v": 0.0, "delta_d": 3.0, "gamma": 1e-4, "background": "instance"}  # the authors' notebooks
MARGIN = 2 * TASK["delta_d"]  # the push margin: cluster means are pushed until this far apart
LR = 1e-3  # Adam, cosine decay to 0 (at a constant 2e-3 the fixed-upsampling net of (a) collapsed to one embedding)
BANDWIDTH = TASK["delta_d"]  # mean-shift bandwidth (Gaussian exp(-d^2 / bandwidth), the notebooks' convention)
A_NETS = (("spacing_16_transposed", 16, "transposed"), ("spacing_15_transposed", 15, "transposed"),
          ("spacing_15_nearest", 15, "nearest"))


@dataclass
class Budget:
    """Sizes of the run: ``full`` (the report, several CPU minutes) or ``smoke`` (tests)."""

    iterations: int  # per net trained on discs
    grid: int  # discs per axis in the evaluation image
    constant_iterations: int  # per net trained on a constant image
    border_image: int  # side of the constant image of the same-padding experiment
    embedding_dim: int = 4
    base_features: int = 12

    @classmethod
    def named(cls, name: str) -> Budget:
        if name == "full":
            return cls(iterations=4000, grid=12, constant_iterations=1000, border_image=160)
        if name == "smoke":
            return cls(iterations=4, grid=4, constant_iterations=4, border_image=120, embedding_dim=3,
                       base_features=4)
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


def constant_samples(size: int) -> list[Sample]:
    """One constant image (all ones) of ``size`` px in which every pixel is its own instance."""
    labels = np.arange(1, size * size + 1, dtype=np.int64).reshape(size, size)
    return [make_sample(np.ones((size, size), np.float32), labels, ndim=2, normalize_mode="none")]


def train(out: Path, name: str, samples: list[Sample], budget: Budget, *, output_window: int,
          crop: int | None = None, upsampling: str = "transposed", padding: str = "valid",
          iterations: int | None = None, seed: int = 0, progress: bool = False) -> tuple[UNet, UNet]:
    """Train a U-Net with the discriminative loss; returns ``(trained, untrained)`` in eval mode.

    ``untrained`` is a copy of the net taken before the first step: the same architecture and
    seed, the weights training started from (the baseline every trained number is compared
    with). ``crop`` restricts the loss to the first ``crop`` output pixels per axis
    (:class:`AlignedCropTask`). ``progress`` shows the trainer's progress bar (terminal only).
    """
    probe = UNet(1, budget.embedding_dim, depth=DEPTH, factor=FACTOR, padding=padding)  # type: ignore[arg-type]
    patch = list(probe.input_shape_for(probe.valid_output_shapes((output_window, output_window))[0]))
    iterations = iterations or budget.iterations
    cfg = validate_config({
        "out": str(out / name), "seed": seed,
        "task": {"name": "embedding", **TASK},
        "model": {"depth": DEPTH, "factor": FACTOR, "base_features": budget.base_features, "norm": None,
                  "out_channels": budget.embedding_dim, "upsampling": upsampling, "padding": padding},
        "data": {"patch_shape": patch, "batch_size": 1, "augment": None, "normalize": {"mode": "none"}},
        "optimizer": {"name": "adam", "lr": LR}, "scheduler": {"name": "cosine", "min_lr": 0.0},
        "training": {"iterations": iterations, "val_every": max(1, iterations // 5),
                     "checkpoint_every": iterations, "device": "cpu",
                     "threads": 1},  # small tensors: one thread is fastest, and robust on a shared machine
    })
    task = AlignedCropTask(crop, budget.embedding_dim, **TASK) if crop else None
    trainer = Trainer(cfg, train_samples=samples, val_samples=[], progress=progress, task=task)
    untrained = copy.deepcopy(trainer.model).eval()
    trainer.fit()
    return trainer.model.eval(), untrained


def embed(model: UNet, image: np.ndarray) -> np.ndarray:
    """Whole-image embeddings ``(E, H, W)`` (one tile)."""
    return predict(model, image, memory_budget=None)


def forward(model: UNet, image: np.ndarray) -> np.ndarray:
    """``model`` on one whole image ``(H, W)`` (any shape it accepts, same padding included) -> ``(E, h, w)``."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None])[0].numpy()


# ----------------------------------------------------------------------------- separability
def disc_table(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per disc: centre pixel ``(K, 2)``, centre embedding ``(K, E)``, mean embedding ``(K, E)``
    and within-disc spread ``(K,)`` (root mean square distance of its pixels to the mean)."""
    ids = np.arange(1, labels.max() + 1)
    flat = labels.ravel()
    e = emb.reshape(emb.shape[0], -1).astype(np.float64)
    counts = np.bincount(flat, minlength=ids.size + 1)[1:]
    means = np.stack([np.bincount(flat, weights=e[c], minlength=ids.size + 1)[1:] for c in range(e.shape[0])], 1)
    means /= counts[:, None]
    inside = flat > 0
    sq = ((e[:, inside] - means[flat[inside] - 1].T) ** 2).sum(0)
    spread = np.sqrt(np.bincount(flat[inside], weights=sq, minlength=ids.size + 1)[1:] / counts)
    coords = np.argwhere(labels > 0)
    lab_at = labels[labels > 0]
    centres = np.stack([coords[lab_at == i].mean(0).round().astype(int) for i in ids])
    return centres, emb[:, centres[:, 0], centres[:, 1]].T, means, spread


def cluster(vectors: np.ndarray, bandwidth: float) -> np.ndarray:
    """Mean-shift cluster label of each per-object embedding vector ``(K, E)`` -> ``(K,)``."""
    from unetkit.clustering import mean_shift

    v = np.ascontiguousarray(vectors, dtype=np.float32)
    return np.asarray(mean_shift(v.T.reshape(v.shape[1], -1, 1), bandwidth=bandwidth)).ravel()


def lattice_neighbours(where: np.ndarray, spacing: int) -> np.ndarray:
    """Index pairs ``(P, 2)`` (i < j) of objects whose centres ``where (K, 2)`` are lattice
    neighbours: ``spacing`` apart along one axis."""
    d = np.abs(where[:, None, :] - where[None, :, :]).sum(-1)
    return np.argwhere(np.triu(d == spacing))


def greedy_separable(vectors: np.ndarray, margin: float, max_graph: int = 2048) -> int:
    """Size of a set of rows of ``vectors (K, E)`` pairwise farther apart than ``margin``.

    A greedy independent set of the conflict graph (rows within ``margin`` of each other):
    repeatedly keep the row with the fewest conflicts left and drop the rows it conflicts
    with. With more than ``max_graph`` distinct rows, row order instead (keep a row if it is
    beyond ``margin`` from every kept one), which needs no K x K matrix. Either way a lower
    bound on the largest such set: how many objects the embeddings tell apart at the margin
    for certain. Identical rows count once.
    """
    v = np.unique(np.asarray(vectors, dtype=np.float64), axis=0)
    if len(v) <= max_graph:
        conflict = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)) <= margin
        np.fill_diagonal(conflict, False)
        alive = np.ones(len(v), dtype=bool)
        degree = conflict.sum(1)
        kept = 0
        while alive.any():
            candidates = np.flatnonzero(alive)
            i = candidates[np.argmin(degree[candidates])]
            drop = conflict[i] & alive
            drop[i] = True
            alive &= ~drop
            degree -= conflict[:, drop].sum(1)
            kept += 1
        return kept
    rows = np.empty((0, v.shape[1]))
    for row in v:
        if rows.shape[0] == 0 or np.sqrt(((rows - row) ** 2).sum(1)).min() > margin:
            rows = np.vstack([rows, row])
    return int(rows.shape[0])


def separation(vectors: np.ndarray, margin: float, *, pairs: np.ndarray | None = None,
               bandwidth: float | None = None) -> dict[str, float]:
    """What the per-object embeddings ``vectors (K, E)`` separate at the push ``margin``.

    Returns ``pairs_beyond_margin`` (fraction of all K (K - 1) / 2 pairs farther apart than
    ``margin``), ``min_distance_per_margin``, ``separable_set`` (:func:`greedy_separable`);
    with ``bandwidth``: ``mean_shift_clusters`` (:func:`cluster`); with ``pairs (P, 2)`` (e.g.
    :func:`lattice_neighbours`): ``neighbour_pairs_beyond_margin`` (and ``_beyond_half_margin``:
    the loss stops pushing at the margin, so trained pairs settle around it),
    ``neighbour_distance_min_per_margin`` / ``_median_per_margin`` and, with ``bandwidth``,
    ``neighbour_pairs_in_different_clusters``.
    """
    v = np.asarray(vectors, dtype=np.float64)
    d = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1))
    upper = d[np.triu_indices(len(v), 1)]
    r: dict[str, float] = {
        "objects": len(v),
        "pairs_beyond_margin": float((upper > margin).mean()) if upper.size else float("nan"),
        "min_distance_per_margin": float(upper.min() / margin) if upper.size else float("nan"),
        "separable_set": greedy_separable(v, margin),
    }
    groups = cluster(v, bandwidth) if bandwidth is not None else None
    if groups is not None:
        r["mean_shift_clusters"] = len(np.unique(groups))
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
        pd = d[pairs[:, 0], pairs[:, 1]]
        nan = float("nan")
        r["neighbour_pairs"] = len(pairs)
        r["neighbour_pairs_beyond_margin"] = float((pd > margin).mean()) if pd.size else nan
        r["neighbour_pairs_beyond_half_margin"] = float((pd > margin / 2).mean()) if pd.size else nan
        r["neighbour_distance_min_per_margin"] = float(pd.min() / margin) if pd.size else nan
        r["neighbour_distance_median_per_margin"] = float(np.median(pd) / margin) if pd.size else nan
        if groups is not None:
            r["neighbour_pairs_in_different_clusters"] = (
                float((groups[pairs[:, 0]] != groups[pairs[:, 1]]).mean()) if pd.size else nan)
    return r


def phase_spread(vectors: np.ndarray, phases: np.ndarray) -> tuple[float, float]:
    """``(within, between)`` for objects ``vectors (K, E)`` on pooling-grid ``phases (K,)``.

    ``within``: the largest distance of an object to the mean of its phase class (0 when the
    net is periodic-f^l, up to float rounding); ``between``: the smallest distance between two
    class means (NaN for a single class).
    """
    v = np.asarray(vectors, dtype=np.float64)
    classes, inv = np.unique(phases, return_inverse=True)
    means = np.stack([v[inv == k].mean(0) for k in range(len(classes))])
    within = float(np.sqrt(((v - means[inv]) ** 2).sum(1)).max())
    if len(classes) < 2:
        return within, float("nan")
    d = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))
    return within, float(d[np.triu_indices(len(means), 1)].min())


def constant_output_stats(y: np.ndarray, margin: float = MARGIN, bandwidth: float | None = BANDWIDTH
                          ) -> dict[str, float]:
    """A valid net's output ``y (E, H, W)`` on a constant image, by pooling phase.

    The pooling grid is aligned with the output (every valid net here is), so output pixel
    ``(y, x)`` is computed by function ``u`` of phase ``(y mod f^l, x mod f^l)``. Returns the
    exact (bitwise) count of distinct output vectors, the spread within a phase class and the
    smallest distance between classes (see :func:`phase_spread`), the output scale and the
    :func:`separation` of the phase classes' means at ``margin``.
    """
    E, H, W = y.shape
    v = y.reshape(E, -1).T.astype(np.float64)
    yy, xx = np.divmod(np.arange(H * W), W)
    phases = (yy % PERIOD) * PERIOD + xx % PERIOD
    within, between = phase_spread(v, phases)
    means = np.stack([v[phases == p].mean(0) for p in np.unique(phases)])
    scale = float(np.abs(v).max())
    return {
        "output_pixels": H * W,
        "distinct_output_vectors_exact": int(len(np.unique(y.reshape(E, -1).T, axis=0))),
        "phase_classes": len(means),
        "within_phase_max_spread": within,
        "between_phase_min_distance": between,
        "between_phase_min_distance_per_scale": between / max(scale, 1e-30),
        "output_scale": scale,
        **{f"phase_means_{k}": val for k, val in separation(means, margin, bandwidth=bandwidth).items()},
    }


def border_distance(shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` distance of every pixel from the nearest image border (0 on the border)."""
    H, W = shape
    yy, xx = np.mgrid[:H, :W]
    return np.minimum.reduce([yy, xx, H - 1 - yy, W - 1 - xx])


def border_profile(y: np.ndarray, interior: np.ndarray | None = None) -> np.ndarray:
    """Largest deviation from the interior value per distance from the image border.

    ``y (E, H, W)``; ``interior (E,)`` defaults to the value at the centre pixel. Entry ``d`` is
    ``max ||y(p) - interior||`` over the pixels ``p`` at distance ``d`` from the nearest border
    (:func:`border_distance`), ``d = 0 .. (min(H, W) - 1) // 2``.
    """
    E, H, W = y.shape
    ref = y[:, H // 2, W // 2] if interior is None else np.asarray(interior)
    dev = np.sqrt(((y.astype(np.float64) - ref.reshape(E, 1, 1)) ** 2).sum(0))
    d = border_distance((H, W)).ravel()
    out = np.zeros(int(d.max()) + 1)
    np.maximum.at(out, d, dev.ravel())
    return out


def band_width(profile: np.ndarray, threshold: float) -> int:
    """Width of the border band where ``profile`` (:func:`border_profile`) exceeds ``threshold``:
    one more than the largest distance ``d`` with ``profile[d] > threshold``, 0 if there is none."""
    above = np.flatnonzero(np.asarray(profile) > threshold)
    return int(above[-1] + 1) if above.size else 0


# ----------------------------------------------------------------------------- tile and stitch
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


def seam_excess(test: np.ndarray, reference: np.ndarray, labels: np.ndarray,
                lines: tuple[np.ndarray, np.ndarray], region: tuple[int, int], margin: float = MARGIN
                ) -> dict[str, float]:
    """How much a prediction jumps across boundary lines beyond a seam-free reference, in margins.

    For every within-object pair of neighbouring pixels (p, q) straddling a line, the excess
    jump is ``|(t_q - t_p) - (r_q - r_p)|`` for the tested embeddings ``t`` and the reference
    ``r`` (a prediction of the same net with no boundary between p and q). Dividing by the push
    ``margin`` (2 delta_d) makes the number comparable across nets and tilings: 0 when the
    boundaries are invisible, 1 when a seam alone moves a pixel's embedding as far as two
    instances are pushed apart.

    Args:
        test, reference: ``(E, H, W)`` embeddings (reference may hold NaN outside ``region``).
        labels: ``(H, W)`` instance labels, 0 = background.
        lines: per axis, the coordinates c of the boundary between pixels c - 1 and c.
        region: ``(lo, hi)``, the square window ``[lo, hi)^2`` where pairs are measured.
        margin: the unit of the ``*_per_margin`` numbers.

    Returns:
        ``mean_excess_per_margin`` and ``max_excess_per_margin`` (the headline);
        ``mean_excess_jump`` and ``max_excess_jump`` (embedding units); ``reference_jump``, the
        reference's mean jump over the pairs; ``pairs``, their count.

    Raises:
        ValueError: no within-object pair straddles a line inside ``region``.
    """
    tj, rj = pair_jumps(test), pair_jumps(reference)
    at = boundary_pairs(labels, lines, region)
    excess = np.concatenate([np.linalg.norm(t - r, axis=0)[m] for t, r, m in zip(tj, rj, at)])
    if excess.size == 0:
        raise ValueError(f"no within-object pixel pair straddles a line inside region {region}")
    ref = float(np.concatenate([np.linalg.norm(r, axis=0)[m] for r, m in zip(rj, at)]).mean())
    return {"mean_excess_per_margin": float(excess.mean()) / margin, "max_excess_per_margin": float(excess.max()) / margin,
            "mean_excess_jump": float(excess.mean()), "max_excess_jump": float(excess.max()),
            "reference_jump": ref, "pairs": int(excess.size)}


def jump_map(emb: np.ndarray) -> np.ndarray:
    """``(H, W)`` largest jump of each pixel of ``emb (E, H, W)`` to its lower or right neighbour."""
    out = np.zeros(emb.shape[1:], dtype=np.float32)
    dy, dx = pair_jumps(emb)
    out[:-1] = np.linalg.norm(dy, axis=0)
    out[:, :-1] = np.fmax(out[:, :-1], np.linalg.norm(dx, axis=0))
    return np.nan_to_num(out)


def excess_map(test: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(H, W)`` largest excess jump (:func:`seam_excess`) of each pixel to its lower or right neighbour."""
    return jump_map(test - reference)


def rgb(emb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` view of embeddings: first 3 principal components, each stretched to [0, 1]."""
    e = emb.reshape(emb.shape[0], -1).T.astype(np.float64)
    e = e - e.mean(0)
    _, _, vt = np.linalg.svd(e[:: max(1, len(e) // 20000)], full_matrices=False)
    p = e @ vt[:3].T
    p = (p - p.min(0)) / np.maximum(p.max(0) - p.min(0), 1e-30)
    if p.shape[1] < 3:
        p = np.concatenate([p, np.zeros((len(p), 3 - p.shape[1]))], 1)
    return p.reshape(*emb.shape[1:], 3)


# ----------------------------------------------------------------------------- experiments
def disc_image(halo: int, spacing: int, grid: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Evaluation image of ``grid`` x ``grid`` measured discs; returns image, labels and the
    border ``margin``: discs whose receptive field (halo + up to f^l - 1 for the pooling phase)
    sees the complete lattice lie at least ``margin`` from the image border."""
    margin = halo + PERIOD + 2 * RADIUS + 1
    size = spacing * (grid - 1) + 2 * margin + 1
    first = margin % spacing + (spacing if margin % spacing <= RADIUS else 0)  # lattice through `margin`,
    img, lab = disc_grid((size, size), spacing=spacing, radius=RADIUS, offset=first)  # complete near the border
    return img, lab, margin


def disc_measures(model: UNet, img: np.ndarray, lab: np.ndarray, margin: int, spacing: int
                  ) -> tuple[dict[str, float], np.ndarray, np.ndarray, int]:
    """Separability of the measured discs' mean embeddings; also the embeddings, the
    neighbouring discs' distances and the number of grid phases covered."""
    emb = embed(model, img)
    where, _, means, spread = disc_table(emb, lab)
    inner = ((where >= margin) & (where < img.shape[0] - margin)).all(1)  # context entirely inside the image
    where, means, spread = where[inner], means[inner], spread[inner]
    phases = (where[:, 0] % PERIOD) * PERIOD + where[:, 1] % PERIOD
    within, between = phase_spread(means, phases)
    pairs = lattice_neighbours(where, spacing)
    nd = np.linalg.norm(means[pairs[:, 0]] - means[pairs[:, 1]], axis=1)
    r = {
        "embedding_scale": float(np.linalg.norm(means, axis=1).max()),
        "same_phase_max_distance": within,
        "between_phase_min_distance": between,
        "neighbour_distance_over_within_disc_spread": float(np.median(nd) / max(float(np.median(spread)), 1e-30)),
        **separation(means, MARGIN, pairs=pairs, bandwidth=BANDWIDTH),
    }
    return r, emb, nd, len(np.unique(phases))


def experiment_a(out: Path, budget: Budget, progress: bool = False) -> tuple[dict[str, Any], dict[str, tuple[UNet, UNet]]]:
    """Nets trained on discs spaced 16 and 15 (learnt and fixed upsampling) and their untrained baselines."""
    results: dict[str, Any] = {}
    views: dict[str, Any] = {}
    models: dict[str, tuple[UNet, UNet]] = {}
    for key, spacing, up in A_NETS:
        trained, untrained = train(out, f"a_{key}", disc_samples(spacing, 8, 160, 0), budget, output_window=20,
                                   upsampling=up, progress=progress)
        models[key] = (trained, untrained)
        img, lab, margin = disc_image(trained.halo[0], spacing, budget.grid)
        entry: dict[str, Any] = {"spacing": spacing, "upsampling": up}
        for state, model in (("trained", trained), ("untrained", untrained)):
            r, emb, nd, phases = disc_measures(model, img, lab, margin, spacing)
            entry.update(discs=r["objects"], grid_phases_covered=phases)
            entry[state] = r
            views[f"{key}/{state}"] = (img, emb, nd)
        results[key] = entry
    return {"results": results, "views": views}, models


def experiment_b(out: Path, budget: Budget, w20: tuple[UNet, UNet], progress: bool = False) -> dict[str, Any]:
    """The three tile-and-stitch cases (and every other net x inference pair as a control)."""
    from unetkit.inference import plan_tiles

    w8 = train(out, "b_window8", disc_samples(15, 8, 160, 0), budget, output_window=12, crop=PERIOD,
               progress=progress)
    same_init = all(torch.equal(a, b) for a, b in zip(w8[1].state_dict().values(), w20[1].state_dict().values()))
    nets = {"trained_w8": w8[0], "trained_w20": w20[0], "untrained": w20[1]}
    model = w20[0]
    halo, shift = model.halo[0], PERIOD // 2
    margin = halo + PERIOD  # measure where mirrored context at the image border plays no role
    size = 2 * margin + 15 * budget.grid + 2 * RADIUS + 2
    big, big_lab = disc_grid((size + shift, size + shift), spacing=15, radius=RADIUS, offset=RADIUS + 1)
    img, lab = big[:size, :size], big_lab[:size, :size]
    region = (margin, size - margin)
    exact_tile = model.valid_input_shapes(model.input_shape_for((20, 20)))[0]
    plan = plan_tiles(model, img.shape, tile_shape=exact_tile)
    core = plan.core_shape[0]
    borders = tuple(np.array([t.image_start for t in plan.axes[ax]][1:]) for ax in (0, 1))
    every_20 = np.arange(20, size, 20)
    # the loss of the w = f^l net saw output pixels 0..f^l - 1 of each patch, i.e. grid phases halo .. halo + f^l - 1;
    # image pixels c - 1, c with c = halo mod f^l were never in one crop. Reference: the same net on the image
    # shifted by f^l / 2, which moves those pairs mid-crop.
    grid_lines = np.arange(halo % PERIOD, size, PERIOD)
    inferences = {
        "whole_image_fl_grid_lines": ((grid_lines, grid_lines), f"f^l grid lines (pixels c - 1, c with c = {halo % PERIOD} mod 8)"),
        "stitched_uncropped_20": ((every_20, every_20), "tile borders every 20 px"),
        f"stitched_cropped_{core}": (borders, f"tile borders every {core} px"),
    }
    matrix: dict[str, dict[str, Any]] = {inf: {} for inf in inferences}
    views: dict[str, Any] = {}
    scale = 0.0
    for name, net in nets.items():
        whole = embed(net, img)
        shifted = embed(net, big[shift:, shift:])
        ref_shifted = np.full_like(whole, np.nan)
        ref_shifted[:, shift:, shift:] = shifted[:, : size - shift, : size - shift]
        preds = {"whole_image_fl_grid_lines": (whole, ref_shifted),
                 "stitched_uncropped_20": (naive_stitch(net, img, 20), whole),
                 f"stitched_cropped_{core}": (predict(net, img, tile_shape=exact_tile), whole)}
        for inf, (emb, ref) in preds.items():
            r = seam_excess(emb, ref, lab, inferences[inf][0], region)
            if inf != "whole_image_fl_grid_lines":
                diff = float(np.abs(emb - whole).max())
                r.update(max_abs_diff_to_whole_image=diff, max_abs_diff_to_whole_image_per_margin=diff / MARGIN)
            matrix[inf][name] = r
            views[(name, inf)] = (emb, inferences[inf][0][1], excess_map(emb, ref))
        if name == "trained_w20":
            scale = float(np.abs(whole).max())
    paper = {"1_train_w_eq_fl_whole_image": ("trained_w8", "whole_image_fl_grid_lines",
                                             "net trained with w = f^l (loss on an 8x8 output crop), predicted whole"),
             "2_train_w20_stitched_uncropped_20": ("trained_w20", "stitched_uncropped_20",
                                                   "net trained with w = 20, tiles of 20 stitched uncropped"),
             f"3_train_w20_stitched_cropped_{core}": ("trained_w20", f"stitched_cropped_{core}",
                                                      f"same net, tiles cropped to {core} = n f^l on the f^l grid")}
    cases = {case: {"net": net, "inference": inf, "setting": text, "boundaries": inferences[inf][1],
                    "trained": matrix[inf][net], "untrained": matrix[inf]["untrained"]}
             for case, (net, inf, text) in paper.items()}
    results = {"margin_2_delta_d": MARGIN, "cases": cases, "all_nets_x_inferences": matrix,
               "tiles_in_case_3": plan.n_tiles, "max_abs_whole_image_embedding_w20": scale,
               "untrained_weights_identical_for_w8_and_w20": same_init}
    case_views = {case: views[(net, inf)] for case, (net, inf, _) in paper.items()}
    return {"results": results, "views": case_views, "labels": lab, "region": region}


def experiment_c(out: Path, budget: Budget, progress: bool = False) -> dict[str, Any]:
    """Constant input: valid nets (fixed and learnt upsampling) and a same-padding net."""
    results: dict[str, Any] = {"bound_f^(d l)": BOUND}
    views: dict[str, Any] = {}
    for up in ("nearest", "transposed"):
        trained, untrained = train(out, f"c_valid_{up}", constant_samples(64), budget, output_window=12, crop=PERIOD,
                                   upsampling=up, iterations=budget.constant_iterations, progress=progress)
        scaled = copy.deepcopy(untrained)
        with torch.no_grad():  # default init leaves the deep levels' share near float rounding; scale it up
            for p in scaled.parameters():
                p.mul_(2.0)
        shape = trained.input_shape_for(trained.valid_output_shapes((64, 64))[0])
        entry: dict[str, Any] = {}
        for state, model in (("trained", trained), ("untrained", untrained), ("random_x2", scaled)):
            y = forward(model, np.ones(shape, np.float32))
            entry[state] = constant_output_stats(y)
            views[f"valid_{up}/{state}"] = y
        results[f"valid_{up}"] = entry

    trained, untrained = train(out, "c_same_nearest", constant_samples(24), budget, output_window=24,
                               upsampling="nearest", padding="same", iterations=budget.constant_iterations,
                               progress=progress)
    unaffected = trained.halo[0] + PERIOD  # farther from the border, no pixel's receptive field reaches it
    side = budget.border_image
    entry = {"image": side, "train_patch": 24, "unaffected_from_distance": unaffected}
    for state, model in (("trained", trained), ("untrained", untrained)):
        y = forward(model, np.ones((side, side), np.float32))
        prof = border_profile(y)
        floor = float(prof[unaffected:].max()) if prof.size > unaffected else float("nan")
        entry[state] = {
            "interior_norm": float(np.linalg.norm(y[:, side // 2, side // 2])),
            "max_deviation": float(prof.max()),
            "max_deviation_per_margin": float(prof.max() / MARGIN),
            "interior_floor": floor,
            "band_nonconstant": band_width(prof, floor),
            "band_beyond_tenth_margin": band_width(prof, 0.1 * MARGIN),
            "band_beyond_margin": band_width(prof, MARGIN),
            "distinguishable_pixels_at_margin": greedy_separable(y.reshape(y.shape[0], -1).T, MARGIN),
            "profile": prof.tolist(),
        }
        views[f"same/{state}"] = y
    results["same_padding_nearest"] = entry
    return {"results": results, "views": views}


# ----------------------------------------------------------------------------- figures and report
def _figures(out: Path, a: dict, b: dict, c: dict) -> list[str]:
    from matplotlib.colors import LogNorm

    from unetkit.report import _pyplot

    plt = _pyplot()
    names: list[str] = []

    def save(fig: Any, name: str, tight: bool = True) -> None:
        if tight:
            fig.tight_layout()
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        names.append(name)

    # (a): trained embeddings, and the neighbouring discs' distances against the margin, trained vs untrained
    fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    for row, spacing in enumerate((16, 15)):
        img = a["views"][f"spacing_{spacing}_transposed/trained"][0]
        axes[row, 0].imshow(img, cmap="gray")
        axes[row, 0].set_title(f"discs, spacing {spacing}")
        axes[row, 0].set_axis_off()
    for k, (key, spacing, up) in enumerate(A_NETS, start=1):
        r = a["results"][key]
        t = r["trained"]
        axes[0, k].imshow(rgb(a["views"][f"{key}/trained"][1]))
        axes[0, k].set_title(f"trained, spacing {spacing}, {up}\n{t['mean_shift_clusters']} mean-shift clusters, "
                             f"{100 * t['neighbour_pairs_beyond_margin']:.0f} % of neighbours > margin", fontsize=9)
        axes[0, k].set_axis_off()
        ax = axes[1, k]
        lo = 1e-8
        for state, style in (("trained", dict(color="C0", alpha=0.7)), ("untrained", dict(color="C3", alpha=0.7))):
            nd = np.maximum(a["views"][f"{key}/{state}"][2] / MARGIN, lo)
            ax.hist(nd, bins=np.logspace(-8, 1.5, 60), label=state, **style)
        ax.axvline(1.0, color="k", ls="--", lw=1, label="push margin 2 delta_d")
        ax.set_xscale("log")
        ax.set_xlabel("neighbouring discs: distance of mean embeddings / margin (0 drawn at 1e-8)", fontsize=8)
        ax.set_ylabel("neighbour pairs")
        ax.set_title(f"spacing {spacing}, {up}", fontsize=9)
        ax.legend(fontsize=8)
    save(fig, "a_same_looking_objects.png")

    views = b["views"]
    lo, hi = b["region"]
    zoom = slice(lo, min(hi, lo + 48))  # a window of the measured region, large enough to see single pixels
    jumps = {k: jump_map(v[0])[zoom, zoom] for k, v in views.items()}
    excess = {k: v[2][zoom, zoom] for k, v in views.items()}
    jmax = max(float(j.max()) for j in jumps.values()) or 1.0  # one colour scale per row
    emax = max(float(e.max()) for e in excess.values()) or 1.0
    fig, axes = plt.subplots(3, 3, figsize=(12, 12.5))
    for k, (name, (emb, lines, _)) in enumerate(views.items()):
        r = b["results"]["cases"][name]
        t, u = r["trained"], r["untrained"]
        axes[0, k].imshow(rgb(emb))
        axes[0, k].add_patch(plt.Rectangle((zoom.start - 0.5,) * 2, zoom.stop - zoom.start, zoom.stop - zoom.start,
                                           fill=False, ec="w", lw=1))
        axes[0, k].set_title(f"case {name}\n{r['boundaries']}\n(white square: zoom below)", fontsize=9)
        im_j = axes[1, k].imshow(np.maximum(jumps[name], 1e-4), cmap="magma", norm=LogNorm(vmin=1e-3, vmax=jmax))
        axes[1, k].set_title("jump between neighbouring pixels", fontsize=9)
        im_e = axes[2, k].imshow(np.maximum(excess[name], 1e-7), cmap="magma", norm=LogNorm(vmin=1e-6, vmax=emax))
        axes[2, k].set_title(f"|jump - seam-free reference jump|\nexcess mean / max = {t['mean_excess_per_margin']:.2g} / "
                             f"{t['max_excess_per_margin']:.2g} margins\n(untrained: {u['mean_excess_per_margin']:.1g} / "
                             f"{u['max_excess_per_margin']:.1g})", fontsize=9)
        for row in (1, 2):
            for line in lines[(lines > zoom.start) & (lines < zoom.stop)] - zoom.start:
                axes[row, k].axhline(line - 0.5, color="c", lw=0.7, ls=":")
                axes[row, k].axvline(line - 0.5, color="c", lw=0.7, ls=":")
        for ax in axes[:, k]:
            ax.set_axis_off()
    fig.colorbar(im_j, ax=axes[1].tolist(), shrink=0.8, label="embedding units (log)")
    fig.colorbar(im_e, ax=axes[2].tolist(), shrink=0.8, label="embedding units (log)")
    save(fig, "b_tile_and_stitch.png", tight=False)

    cr = c["results"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.8))
    fig.suptitle("constant input, valid padding", fontsize=10)
    for ax, key in zip(axes, ("valid_nearest/untrained", "valid_nearest/trained", "valid_transposed/untrained",
                              "valid_transposed/trained")):
        net, state = key.split("/")
        r = cr[net][state]
        ax.imshow(rgb(c["views"][key]))
        ax.set_title(f"{net.replace('_', ', ')}, {state}: {r['distinct_output_vectors_exact']} distinct outputs, "
                     f"scale {r['output_scale']:.2g}\n{r['phase_means_separable_set']} phases pairwise > margin "
                     "(colours stretched)", fontsize=9)
        ax.set_axis_off()
    save(fig, "c_constant_input.png")

    s = cr["same_padding_nearest"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, state in zip(axes, ("untrained", "trained")):
        ax.imshow(rgb(c["views"][f"same/{state}"]))
        r = s[state]
        ax.set_title(f"same padding, nearest, {state}: constant input\nnon-constant within {r['band_nonconstant']} px "
                     f"of the border; beyond the margin within {r['band_beyond_margin']} px\n(colours stretched)",
                     fontsize=9)
        ax.set_axis_off()
    ax = axes[2]
    for state, colour in (("trained", "C0"), ("untrained", "C3")):
        prof = np.asarray(s[state]["profile"])
        ax.semilogy(np.arange(prof.size), np.maximum(prof, 1e-12), color=colour, label=state)
    ax.axhline(MARGIN, color="k", ls="--", lw=1, label="push margin 2 delta_d")
    ax.axvline(s["unaffected_from_distance"], color="gray", ls=":", lw=1, label="receptive field no longer reaches the border")
    ax.set_xlabel("distance from the image border (px)")
    ax.set_ylabel("max |output - interior output|  (1e-12 = exactly 0)")
    ax.legend(fontsize=8)
    save(fig, "c_same_padding_border.png")
    return names


def _fmt(v: float) -> str:
    return "nan" if v != v else (f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}")


def _pct(v: float) -> str:
    if v != v:
        return "-"
    return f"{100 * v:.0f} %" if v in (0.0, 1.0) else f"{100 * v:.1f} %"


def _report(out: Path, results: dict, seconds: float, budget: Budget) -> Path:
    a, b, c = results["a"], results["b"], results["c"]
    lines = [
        "# Shift equivariance and tile-and-stitch: reproduction on synthetic discs", "",
        f"U-Nets of depth l = {DEPTH}, pooling factor f = {FACTOR} (f^l = {PERIOD}, f^(d l) = {BOUND}), "
        f"{budget.base_features} base features, {budget.embedding_dim}-D embeddings, discriminative loss "
        f"(delta_v = {TASK['delta_v']}, delta_d = {TASK['delta_d']}, push margin 2 delta_d = {MARGIN:g}, "
        f"gamma = {TASK['gamma']}, background as an instance), Adam lr {LR:g} with cosine decay to 0, batch size 1, {budget.iterations} "
        f"iterations per net trained on discs, {budget.constant_iterations} per net trained on a constant image. "
        f"Run time {seconds:.0f} s wall, {results['cpu_seconds']:.0f} s CPU (1 torch thread; wall time grows when other "
        "jobs share the machine). Every number below was computed by this run.", "",
        "Each trained net is listed next to its **untrained baseline**: the same architecture with the same seed, "
        "i.e. the weights its training started from. Distances are in units of the push margin 2 delta_d "
        "(the distance the loss pushes instance means apart).", "",
        "## (a) Same-looking objects", "",
        "Mean embedding per disc, over the discs whose receptive field sees the complete lattice. "
        "*Same-phase distance*: largest distance between discs on the same phase of the pooling grid "
        "(periodic-f^l equivariance: 0 up to float rounding, trained or not). *Between-phase*: smallest distance "
        "between discs on different phases. *Separable set*: discs chosen greedily so that all are pairwise farther "
        "apart than the margin (a lower bound on how many the net tells apart for certain; at most the phases covered). "
        "Mean-shift: bandwidth delta_d on the disc means.", "",
        "| net | discs / phases | state | embedding scale | same-phase / between-phase distance | "
        "neighbour distance, median (min), margins | neighbour pairs > margin (> margin / 2) | all pairs > margin "
        "| separable set | mean-shift clusters | neighbours in different clusters | neighbour distance / within-disc spread |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, spacing, up in A_NETS:
        r = a[key]
        for state in ("trained", "untrained"):
            s = r[state]
            lines.append(
                f"| spacing {spacing}, {up} | {r['discs']} / {r['grid_phases_covered']} | {state} | {_fmt(s['embedding_scale'])} "
                f"| {_fmt(s['same_phase_max_distance'])} / {_fmt(s['between_phase_min_distance'])} "
                f"| {_fmt(s['neighbour_distance_median_per_margin'])} ({_fmt(s['neighbour_distance_min_per_margin'])}) "
                f"| {_pct(s['neighbour_pairs_beyond_margin'])} ({_pct(s['neighbour_pairs_beyond_half_margin'])}) "
                f"| {_pct(s['pairs_beyond_margin'])} | {s['separable_set']} "
                f"| {s['mean_shift_clusters']} | {_pct(s['neighbour_pairs_in_different_clusters'])} "
                f"| {_fmt(s['neighbour_distance_over_within_disc_spread'])} |")
    s16 = a["spacing_16_transposed"]
    t15, u15 = a["spacing_15_transposed"]["trained"], a["spacing_15_transposed"]["untrained"]
    n15, nu15 = a["spacing_15_nearest"]["trained"], a["spacing_15_nearest"]["untrained"]
    one16 = all(s16[st]["same_phase_max_distance"] <= 1e-5 * s16[st]["embedding_scale"] for st in ("trained", "untrained"))
    text16 = ("trained or untrained the net gives all discs the same embedding (same-phase distance at float rounding), "
              "so none can be told apart" if one16 else
              f"yet the discs' embeddings differ by up to {_fmt(s16['trained']['same_phase_max_distance'])} (trained), "
              "more than float rounding: check the evaluation")
    nothing = all(s["separable_set"] == 1 and s["neighbour_pairs_beyond_margin"] == 0 for s in (u15, nu15))
    lines += ["", f"Spacing 16 is a multiple of f^l: every disc sits on the same pooling phase, and {text16}. "
              "Spacing 15 is co-prime with 8: the discs cover the phases, and already the untrained nets give the "
              f"phases different embeddings (smallest between-phase distance {_fmt(u15['between_phase_min_distance'])} "
              f"learnt, {_fmt(nu15['between_phase_min_distance'])} fixed upsampling), but only "
              f"{_fmt(u15['neighbour_distance_median_per_margin'])} resp. {_fmt(nu15['neighbour_distance_median_per_margin'])} "
              "of a margin apart (median over neighbours)" + (": nothing is separable" if nothing else "") + ". "
              "That difference is capacity (Lemma 1), not a result of training; counting 'distinct' vectors cannot "
              "tell it from a trained net. Trained with learnt upsampling (Fig. 2b), "
              f"{_pct(t15['neighbour_pairs_beyond_margin'])} of neighbouring discs lie more than a margin apart and "
              f"{_pct(t15['neighbour_pairs_beyond_half_margin'])} more than half a margin (the push stops at the margin, "
              f"so pairs settle around it); {t15['separable_set']} discs are pairwise separable, mean-shift finds "
              f"{t15['mean_shift_clusters']} clusters and puts {_pct(t15['neighbour_pairs_in_different_clusters'])} "
              "of neighbours in different clusters. With fixed upsampling (Fig. 2c): "
              f"{_pct(n15['neighbour_pairs_beyond_margin'])} and {_pct(n15['neighbour_pairs_beyond_half_margin'])}; "
              f"{n15['separable_set']} pairwise separable, {n15['mean_shift_clusters']} clusters, "
              f"{_pct(n15['neighbour_pairs_in_different_clusters'])} "
              "of neighbours in different clusters. The discriminative loss only asks discs that share a training "
              "window to differ, so a trained net reuses embeddings across the image (like a map colouring) and need "
              f"not reach f^(d l) = {BOUND} separable discs; what instance segmentation needs is that neighbours are "
              "separated.", "",
              "![a](a_same_looking_objects.png)", "",
              "## (b) Tile and stitch", "",
              "Seam strength: at every pair of neighbouring pixels inside one disc that straddles a boundary line, the "
              "excess jump |(t_q - t_p) - (r_q - r_p)| of the prediction t over a seam-free reference r of the same net, "
              "in units of the push margin (1: a seam alone moves an embedding as far as two instances are pushed "
              "apart). Reference for stitched predictions: the whole-image prediction; for the whole-image prediction "
              "itself (whose lines are the f^l grid lines): the same net on the image shifted by f^l / 2, which moves "
              "the pairs off the lines. Only pixels at least halo + f^l from the image border are measured.", "",
              "| paper case | net and inference | boundaries | pairs | excess mean / max, trained (margins) "
              "| excess mean / max, untrained (margins) | max diff to whole image, trained (margins) |",
              "|---|---|---|---|---|---|---|"]
    for case, r in b["cases"].items():
        t, u = r["trained"], r["untrained"]
        diff = t.get("max_abs_diff_to_whole_image_per_margin")
        lines.append(f"| {case.split('_')[0]} | {r['setting']} | {r['boundaries']} | {t['pairs']} "
                     f"| {_fmt(t['mean_excess_per_margin'])} / {_fmt(t['max_excess_per_margin'])} "
                     f"| {_fmt(u['mean_excess_per_margin'])} / {_fmt(u['max_excess_per_margin'])} "
                     f"| {'-' if diff is None else _fmt(diff)} |")
    lines += ["", "Every net under every inference (mean / max excess in margins; the paper's cases in bold):", "",
              "| inference | trained w = f^l | trained w = 20 | untrained |", "|---|---|---|---|"]
    chosen = {(r["net"], r["inference"]) for r in b["cases"].values()}
    for inf, row in b["all_nets_x_inferences"].items():
        cells = []
        for net in ("trained_w8", "trained_w20", "untrained"):
            cell = f"{_fmt(row[net]['mean_excess_per_margin'])} / {_fmt(row[net]['max_excess_per_margin'])}"
            cells.append(f"**{cell}**" if (net, inf) in chosen else cell)
        lines.append(f"| {inf} | {' | '.join(cells)} |")
    c1, c2, c3 = (b["cases"][k] for k in b["cases"])
    grid_w20 = b["all_nets_x_inferences"]["whole_image_fl_grid_lines"]["trained_w20"]
    same = "the same weights" if b["untrained_weights_identical_for_w8_and_w20"] else "different weights (unexpected)"
    rel3 = c3["trained"]["max_abs_diff_to_whole_image"] / max(b["max_abs_whole_image_embedding_w20"], 1e-30)
    tiny_u = max(case["untrained"]["max_excess_per_margin"] for case in b["cases"].values()) < 1e-3
    lines += ["", "Case 1 needs a net of its own: its seams come from training (the functions on either side of an "
              "f^l grid line never met in one 8x8 loss window, so nothing made their embeddings agree), while the "
              "w = 20 net of cases 2 and 3 was trained on all neighbour pairs; the first row shows that net's "
              "whole-image prediction at the same grid lines (mean excess "
              f"{_fmt(grid_w20['mean_excess_per_margin'])} margins against case 1's "
              f"{_fmt(c1['trained']['mean_excess_per_margin'])}). Both nets start from {same} (one untrained column). "
              "Case 2: uncropped tiles of 20 px start on grid phases 20 mod 8 = 4 apart, so neighbouring tiles compute "
              "other functions than each other and than the whole-image pass (mean excess "
              f"{_fmt(c2['trained']['mean_excess_per_margin'])}, max {_fmt(c2['trained']['max_excess_per_margin'])} "
              f"margins). Case 3 crops tiles to n f^l on the f^l grid ({b['tiles_in_case_3']} tiles): excess "
              f"{_fmt(c3['trained']['max_excess_per_margin'])} margins at most, the largest difference to the "
              f"whole-image prediction {_fmt(c3['trained']['max_abs_diff_to_whole_image'])} of an embedding scale "
              f"{_fmt(b['max_abs_whole_image_embedding_w20'])}{' (float rounding)' if rel3 < 1e-5 else ''}."
              + (" The untrained net's seams are tiny in margins only because its embeddings are tiny." if tiny_u else ""),
              "", "![b](b_tile_and_stitch.png)", "",
              "## (c) Constant input", "",
              "### Valid padding", "",
              "Output on a constant image, grouped by pooling phase (output pixel mod f^l). Distinct outputs are "
              "counted exactly (bitwise, no tolerance); the within-phase spread says whether outputs of one phase are "
              "bitwise equal (0), so that any difference is between phases. *Trained*: trained to give each pixel of "
              "an f^l x f^l output window its own instance (paper Fig. 4). *random x2*: the untrained weights times 2 "
              "(default initialisation leaves the deepest levels' share near float rounding).", "",
              "| upsampling | state | distinct outputs (exact) | within-phase spread | smallest between-phase distance "
              "(relative to output scale) | smallest between-phase distance (margins) | phase pairs > margin "
              "| phases pairwise > margin (greedy) | mean-shift clusters of the phases |",
              "|---|---|---|---|---|---|---|---|---|"]
    for up in ("nearest", "transposed"):
        for state in ("trained", "untrained", "random_x2"):
            r = c[f"valid_{up}"][state]
            lines.append(f"| {up} | {state} | {r['distinct_output_vectors_exact']} | {_fmt(r['within_phase_max_spread'])} "
                         f"| {_fmt(r['between_phase_min_distance'])} ({_fmt(r['between_phase_min_distance_per_scale'])}) "
                         f"| {_fmt(r['phase_means_min_distance_per_margin'])} "
                         f"| {_pct(r['phase_means_pairs_beyond_margin'])} | {r['phase_means_separable_set']} "
                         f"| {r['phase_means_mean_shift_clusters']} |")
    vn, vt = c["valid_nearest"], c["valid_transposed"]
    const = all(vn[st]["distinct_output_vectors_exact"] == 1 for st in vn)
    none_sep = all(vt[st]["phase_means_separable_set"] == 1 for st in ("untrained", "random_x2"))
    lines += ["", ("With fixed (nearest) upsampling a constant image maps to an exactly constant output, trained or "
                   "not. " if const else "With fixed (nearest) upsampling the output is NOT constant here: check. ")
              + f"With learnt upsampling any weights give up to f^(d l) = {BOUND} phase outputs: the untrained net's "
              f"{vt['untrained']['distinct_output_vectors_exact']} distinct outputs are structure, not learning (at "
              "default initialisation the closest two phases differ by "
              f"{_fmt(vt['untrained']['between_phase_min_distance_per_scale'])} of the output scale; with the weights "
              f"doubled by {_fmt(vt['random_x2']['between_phase_min_distance_per_scale'])})"
              + (", and none of them is separable at the margin. " if none_sep else ". ")
              + f"Trained, every two of the {BOUND} phases are at least "
              f"{_fmt(vt['trained']['phase_means_min_distance_per_margin'])} margins apart, "
              f"{_pct(vt['trained']['phase_means_pairs_beyond_margin'])} of phase pairs strictly more than a margin "
              f"(the push stops there, so pairs settle at it; {vt['trained']['phase_means_separable_set']} phases "
              "pairwise beyond the margin by the greedy count), and mean-shift finds "
              f"{vt['trained']['phase_means_mean_shift_clusters']} clusters"
              + (": location awareness learnt with valid padding." if vt["trained"]["phase_means_separable_set"] > 1
                 else "."), "", "![c](c_constant_input.png)", ""]
    s = c["same_padding_nearest"]
    st, su = s["trained"], s["untrained"]
    lines += ["### Zero padding (same)", "",
              f"Same-padding U-Net (same depth and factor, nearest upsampling) on a constant image of "
              f"{s['image']} x {s['image']} px; deviation = |output - output at the image centre|. Pixels at least "
              f"{s['unaffected_from_distance']} px (halo + f^l) from the border do not see it and give the interior "
              "value; their largest deviation is the *interior floor* (float rounding; 0: bitwise constant). "
              f"*Trained*: each pixel of a {s['train_patch']} x {s['train_patch']} patch its own instance (the zero "
              "padding at the patch borders is the only location cue).", "",
              "| state | interior floor | largest deviation (margins) | non-constant band (px from border, deviation > floor) "
              "| band with deviation > 0.1 margin | band with deviation > margin | pixels pairwise > margin (greedy) |",
              "|---|---|---|---|---|---|---|"]
    for state in ("trained", "untrained"):
        r = s[state]
        lines.append(f"| {state} | {_fmt(r['interior_floor'])} | {_fmt(r['max_deviation_per_margin'])} "
                     f"| {r['band_nonconstant']} | {r['band_beyond_tenth_margin']} | {r['band_beyond_margin']} "
                     f"| {r['distinguishable_pixels_at_margin']} |")
    small = su["max_deviation_per_margin"] < 0.1
    lines += ["", "Zero padding makes the net location aware near the image border (paper Sec. 2.2, Fig. 5): a constant "
              f"image gives a non-constant output within {su['band_nonconstant']} px of the border untrained and "
              f"{st['band_nonconstant']} px trained (no receptive field of a pixel {s['unaffected_from_distance']} px "
              "or farther from the border reaches it), even with fixed upsampling, while the interior is constant. "
              + (f"Untrained, the variation stays below {_fmt(su['max_deviation_per_margin'])} of a margin. "
                 if small else "")
              + f"Trained, {st['distinguishable_pixels_at_margin']} pixels are pairwise more than a margin apart, and "
              f"the output differs from the interior value by more than a margin within {st['band_beyond_margin']} px "
              "of the border. Per-distance profile in results.json.", "",
              "![c2](c_same_padding_border.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def run(out: str | Path = "unetkit-reproduce/shift", *, budget: str = "full", verbose: bool = True) -> dict[str, Any]:
    """Run the three experiments; write ``report.md``, ``results.json`` and figures into ``out``."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    b = Budget.named(budget)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = print if verbose else (lambda *a, **k: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and robust on a shared machine
    try:
        parts: dict[str, float] = {}
        say("(a) training on discs spaced 16 and 15")
        a, models = experiment_a(out / "runs", b, progress=verbose)
        parts["a"] = time.perf_counter() - t0
        say("(b) training with a window of f^l and stitching three ways")
        bb = experiment_b(out / "runs", b, models["spacing_15_transposed"], progress=verbose)
        parts["b"] = time.perf_counter() - t0 - sum(parts.values())
        say("(c) constant input: valid and same-padding nets")
        c = experiment_c(out / "runs", b, progress=verbose)
        parts["c"] = time.perf_counter() - t0 - sum(parts.values())
        _figures(out, a, bb, c)
        parts["figures"] = time.perf_counter() - t0 - sum(parts.values())
        seconds = time.perf_counter() - t0
        results = {"a": a["results"], "b": bb["results"], "c": c["results"], "seconds": seconds,
                   "seconds_per_part": parts, "cpu_seconds": time.process_time() - cpu0, "budget": budget,
                   "margin_2_delta_d": MARGIN}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        _report(out, results, seconds, b)
    finally:
        torch.set_num_threads(threads)
    return results
