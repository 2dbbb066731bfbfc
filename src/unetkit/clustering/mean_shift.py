"""Mean-shift clustering of pixel embeddings into instance labels.

Given an embedding image ``(E, *S)`` (E channels first, then the spatial axes), every pixel is
a point in R^E. Mean shift moves seed points uphill on the kernel density estimate

    x <- sum_i w(x, e_i) e_i / sum_i w(x, e_i)

until they stop moving; the points they stop at (the modes) are merged when close, and every
pixel gets the label of its nearest mode.

Kernels (``d = ||x - e_i||``, Euclidean, in embedding units):

* ``"gaussian"`` (default): ``w = exp(-d^2 / bandwidth)``. This is the convention of the
  shift-equivariance paper's notebooks (method notes, section 2): the exponent divides by
  ``bandwidth`` itself, not by ``2 bandwidth^2``, so ``bandwidth`` is in *squared* embedding
  units. It equals a normal kernel with ``sigma = sqrt(bandwidth / 2)``; the weight falls to
  1/e at ``d = sqrt(bandwidth)``.
* ``"flat"``: ``w = 1`` if ``d <= bandwidth`` else 0 (scikit-learn's ``MeanShift``; here
  ``bandwidth`` is a radius in embedding units).

The kernel's *length scale* ``r`` is ``sqrt(bandwidth)`` for the Gaussian kernel and
``bandwidth`` for the flat one. It sets the seeding grid (cell ``r / 2``), the merge radius
(``r / 2`` unless given) and the convergence threshold (``tol * r``).

Algorithm: choose seeds (every pixel when there are at most ``max_seeds``, otherwise bin
seeding or a random subsample); move all seeds together, each step against *all* points, until
every seed moves less than ``tol * r``; seeds that meet in the same cell of a grid of size
``r / 8`` are followed as one from then on (they share their path; this makes the later steps
cheap); merge the modes greedily by decreasing kernel mass (a mode within the merge radius of a
kept one is dropped); give every pixel the label of its nearest kept mode.

Everything is vectorised with torch: each step processes blocks of seeds x points of at most
``2**22`` pairs (about 16 MB per float32 temporary), so the seed-by-point work never holds a
full seeds x pixels matrix. Memory still grows linearly with the number of pixels P: the
points, their centred copy, their grid cells (int64, for bin seeding) and the labels are
per-pixel arrays, so the peak is about ``(20 E + 45) * P`` bytes on top of the input (measured
peak resident memory on the CPU, float32: 105-115 bytes per pixel for E = 3, 210 for E = 8,
from 512 x 512 to 2048 x 2048 images), e.g. about 1.7 GiB for a 4096 x 4096 image of 3-D
embeddings. Pass ``mask`` to cluster only the foreground pixels. Torch inputs are processed on
their own device. On 2 (shared) CPU cores a 256 x 256 image of 3-D embeddings takes 1 to 2.5
seconds (the flat kernel is the faster one).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from unetkit.clustering._common import check_embeddings, check_number, finish, foreground, foreground_points
from unetkit.errors import InputError

Kernel = Literal["gaussian", "flat"]
Seeding = Literal["bin", "random"]

BLOCK_PAIRS = 2**22
"""Largest number of (seed, point) pairs held in one temporary matrix."""


def _sq_dist(seeds: Tensor, s2: Tensor, points: Tensor, p2: Tensor) -> Tensor:
    """``(S, P)`` squared distances, clamped at 0 (``|s|^2 + |p|^2 - 2 s.p``)."""
    d2 = torch.addmm(p2[None, :], seeds, points.t(), alpha=-2.0)
    return d2.add_(s2[:, None]).clamp_(min=0.0)


def _weights(d2: Tensor, kernel: str, bandwidth: float) -> Tensor:
    if kernel == "gaussian":
        return d2.mul_(-1.0 / bandwidth).exp_()
    return (d2 <= bandwidth * bandwidth).to(d2.dtype)


def _shift(seeds: Tensor, points: Tensor, p2: Tensor, kernel: str, bandwidth: float) -> tuple[Tensor, Tensor]:
    """One mean-shift step of every seed against all points: ``(new seeds, kernel mass)``."""
    s2 = (seeds * seeds).sum(1)
    num = torch.zeros_like(seeds)
    den = torch.zeros(seeds.shape[0], dtype=seeds.dtype, device=seeds.device)
    step = max(1, BLOCK_PAIRS // max(1, seeds.shape[0]))
    for lo in range(0, points.shape[0], step):
        pts = points[lo : lo + step]
        w = _weights(_sq_dist(seeds, s2, pts, p2[lo : lo + step]), kernel, bandwidth)
        num.addmm_(w, pts)
        den.add_(w.sum(1))
    moved = den > 0
    new = torch.where(moved[:, None], num / den.clamp(min=torch.finfo(den.dtype).tiny)[:, None], seeds)
    return new, den


def _nearest(points: Tensor, p2: Tensor, modes: Tensor) -> Tensor:
    """Index of the nearest mode for every point (ties: the lower index)."""
    m2 = (modes * modes).sum(1)
    out = torch.empty(points.shape[0], dtype=torch.long, device=points.device)
    step = max(1, BLOCK_PAIRS // max(1, modes.shape[0]))
    for lo in range(0, points.shape[0], step):
        d2 = _sq_dist(points[lo : lo + step], p2[lo : lo + step], modes, m2)
        out[lo : lo + step] = d2.argmin(1)
    return out


def _seeds(points: Tensor, cell: float, max_seeds: int, seeding: str, seed: int) -> Tensor:
    n = points.shape[0]
    if n <= max_seeds:
        return points.clone()
    if seeding == "random":
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_seeds, replace=False))
        return points[torch.from_numpy(idx).to(points.device)].clone()
    # bin seeding: one seed per occupied grid cell, at the mean of its points; the grid is
    # coarsened (x 1.5) until there are at most max_seeds cells, so that no region loses its seed
    while True:
        inverse, counts = _cells(points, cell)
        if counts.numel() <= max_seeds:
            break
        cell *= 1.5
    sums = torch.zeros(counts.numel(), points.shape[1], dtype=points.dtype, device=points.device)
    return sums.index_add_(0, inverse, points) / counts[:, None].to(points.dtype)


def _merge(modes: Tensor, mass: Tensor, radius: float) -> Tensor:
    """Greedy non-maximum suppression: keep modes by decreasing mass, drop those within ``radius``
    of a kept one. Returns the kept modes."""
    order = torch.sort(mass, descending=True, stable=True).indices
    m = modes[order]
    close = (torch.cdist(m, m) < radius).cpu().numpy()
    suppressed = np.zeros(m.shape[0], dtype=bool)
    keep = []
    for i in range(m.shape[0]):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= close[i]
    return m[torch.as_tensor(keep, dtype=torch.long, device=m.device)]


def mean_shift(
    embeddings: np.ndarray | Tensor,
    *,
    bandwidth: float,
    kernel: Kernel = "gaussian",
    mask: np.ndarray | Tensor | None = None,
    max_iter: int = 100,
    tol: float = 1e-3,
    max_seeds: int = 1000,
    seeding: Seeding = "bin",
    merge_radius: float | None = None,
    seed: int = 0,
    largest_is_background: bool = False,
    min_size: int = 0,
) -> np.ndarray | Tensor:
    """Instance labels from pixel embeddings by mean-shift clustering.

    Args:
        embeddings: ``(E, *S)`` channel-first embeddings (NumPy array or torch tensor, E >= 1,
            one or more spatial axes, e.g. ``(E, Y, X)`` or ``(E, Z, Y, X)``), finite values.
        bandwidth: kernel size (> 0). Gaussian: ``w = exp(-d^2 / bandwidth)`` (squared units);
            flat: radius, ``w = 1`` for ``d <= bandwidth``. See the module docstring.
        kernel: ``"gaussian"`` or ``"flat"``.
        mask: optional ``(*S)`` boolean array; only pixels where it is true are clustered, the
            others get label 0.
        max_iter: largest number of mean-shift steps.
        tol: a seed has converged when its step is shorter than ``tol * r`` (``r`` the kernel's
            length scale: ``sqrt(bandwidth)`` Gaussian, ``bandwidth`` flat).
        max_seeds: when there are at most this many pixels, every pixel is a seed; otherwise at
            most ``max_seeds`` seeds are chosen by ``seeding``.
        seeding: ``"bin"``: one seed per occupied cell of a grid of cell size ``r / 2``, at the
            mean of the cell's points (if more than ``max_seeds`` cells are occupied, the cell
            size grows by factors of 1.5 until at most ``max_seeds`` are);
            ``"random"``: ``max_seeds`` pixels drawn at random with ``seed``.
        merge_radius: modes closer than this are merged (the one with more kernel mass wins);
            default ``r / 2``.
        seed: seed of the random seeding (the result is deterministic for a given seed).
        largest_is_background: if true, the largest cluster becomes label 0 and the others
            ``1..K-1`` (the shared background rule,
            :func:`unetkit.clustering.largest_to_background`). Default false here, unlike the
            other methods, to keep mean shift's earlier behaviour.

        min_size: clusters of fewer pixels become background (0), after the background rule
            (:func:`~unetkit.clustering._common.remove_small_segments`); 0 keeps all.
    Returns:
        ``(*S)`` int32 labels ``1..K`` (numbered in order of first appearance in C order), 0
        outside ``mask``. NumPy input gives a NumPy array, torch input a tensor on its device.

    Raises:
        InputError: bad shapes, non-finite values or invalid options (the message names them).
    """
    emb = check_embeddings(embeddings)
    bw = check_number(bandwidth, "bandwidth", positive=True)
    if kernel not in ("gaussian", "flat"):
        raise InputError(f"kernel={kernel!r} must be 'gaussian' or 'flat'")
    if seeding not in ("bin", "random"):
        raise InputError(f"seeding={seeding!r} must be 'bin' or 'random'")
    iters = int(check_number(max_iter, "max_iter", positive=True, integer=True))
    tolerance = check_number(tol, "tol")
    n_seeds = int(check_number(max_seeds, "max_seeds", positive=True, integer=True))
    check_number(seed, "seed", integer=True)
    min_px = int(check_number(min_size, "min_size", integer=True))
    scale = math.sqrt(bw) if kernel == "gaussian" else bw
    merge = scale / 2 if merge_radius is None else check_number(merge_radius, "merge_radius")

    keep = foreground(mask, emb)
    points = foreground_points(emb, keep)
    labels_fg = torch.zeros(points.shape[0], dtype=torch.long, device=emb.device)
    if points.shape[0] > 0:
        labels_fg = _cluster(points, bw, kernel, scale, merge, iters, tolerance, n_seeds, seeding, int(seed))
    return finish(labels_fg, keep, embeddings, emb.device, background=bool(largest_is_background),
                  min_size=min_px)


def _cluster(points: Tensor, bandwidth: float, kernel: str, scale: float, merge: float, max_iter: int,
             tol: float, max_seeds: int, seeding: str, seed: int) -> Tensor:
    """Labels ``1..K`` (int32) for ``(P, E)`` points."""
    points = points - points.mean(0)  # centring keeps |s|^2 + |p|^2 - 2 s.p accurate
    p2 = (points * points).sum(1)
    seeds = _seeds(points, scale / 2, max_seeds, seeding, seed)
    mass = torch.zeros(seeds.shape[0], dtype=points.dtype, device=points.device)
    active = torch.ones(seeds.shape[0], dtype=torch.bool, device=points.device)
    for _ in range(max_iter):
        new, den = _shift(seeds[active], points, p2, kernel, bandwidth)
        step = torch.linalg.vector_norm(new - seeds[active], dim=1)
        seeds[active] = new
        mass[active] = den
        active[active.clone()] = (step > tol * scale) & (den > 0)
        if not bool(active.any()):
            break
        # seeds that have come together follow the same path: keep one per grid cell of r / 8
        keep = _one_per_cell(seeds, scale / 8)
        seeds, mass, active = seeds[keep], mass[keep], active[keep]
    modes = _merge(seeds, mass, merge)
    nearest = _nearest(points, p2, modes)
    # number clusters 1..K by first appearance (C order); modes without pixels disappear
    used, first = _first_occurrence(nearest, modes.shape[0])
    relabel = torch.zeros(modes.shape[0], dtype=torch.int32, device=points.device)
    relabel[used[torch.argsort(first)]] = torch.arange(1, used.numel() + 1, dtype=torch.int32,
                                                       device=points.device)
    return relabel[nearest]


def _one_per_cell(seeds: Tensor, cell: float) -> Tensor:
    """Indices (ascending) of the first seed in each occupied cell of a grid of size ``cell``."""
    inverse, counts = _cells(seeds, cell)
    _, first = _first_occurrence(inverse, counts.numel())
    return torch.sort(first).values


def _first_occurrence(index: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Values ``0..size-1`` that occur in ``index`` and the position where each first occurs."""
    pos = torch.arange(index.numel(), device=index.device)
    first = torch.full((size,), index.numel(), dtype=torch.long, device=index.device)
    first = first.scatter_reduce(0, index, pos, reduce="amin")
    used = torch.nonzero(first < index.numel()).reshape(-1)
    return used, first[used]


def _cells(points: Tensor, cell: float) -> tuple[Tensor, Tensor]:
    """Grid cell of each point: ``(inverse, counts)`` of the occupied cells (cells in a fixed order)."""
    keys = torch.floor(points / cell).to(torch.long)
    keys = keys - keys.min(0).values
    extent = keys.max(0).values + 1
    if float(torch.prod(extent.double())) < 2**62:  # one int64 code per cell: a 1-D unique is much faster
        code = torch.zeros(keys.shape[0], dtype=torch.long, device=keys.device)
        for axis in range(keys.shape[1]):
            code = code * extent[axis] + keys[:, axis]
        if code.device.type == "cpu":  # NumPy's sort is about 10x faster than torch's on CPU
            _, inv_np, cnt_np = np.unique(code.numpy(), return_inverse=True, return_counts=True)
            return torch.from_numpy(inv_np.reshape(-1)), torch.from_numpy(cnt_np)
        _, inverse, counts = torch.unique(code, return_inverse=True, return_counts=True)
    else:
        _, inverse, counts = torch.unique(keys, dim=0, return_inverse=True, return_counts=True)
    return inverse, counts


__all__ = ["mean_shift"]
