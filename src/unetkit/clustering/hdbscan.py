"""HDBSCAN clustering of pixel embeddings into instance labels (scikit-learn's
:class:`sklearn.cluster.HDBSCAN`).

The SPOCO paper clusters with HDBSCAN with ``min_size`` 200 (CVPPP) or 600 (Ovules) pixels
(method notes, section 3). HDBSCAN's cost grows faster than linearly with the number of points,
so at most ``max_samples`` foreground pixels (drawn at random with ``seed``) are clustered; the
``min_size`` given in pixels of the whole image is scaled by the sampling fraction for them
(``max(2, round(min_size * n_sampled / n_pixels))``). Every pixel is then given the cluster of
the nearest cluster *centroid* (the mean embedding of the sampled points of the cluster) in
Euclidean embedding distance.

Noise: HDBSCAN calls low-density points noise. ``noise="nearest"`` (default) assigns noise
pixels like all others to the nearest centroid, so that every foreground pixel belongs to an
object (the paper notes that in dense tissue the noise between cells otherwise needs
post-processing); ``noise="background"`` keeps them at label 0: a pixel is then background when
its nearest *sampled* point is noise (all pixels, sampled or not, are treated the same way).
If HDBSCAN finds no cluster at all (also when there are fewer pixels than ``min_size``), all foreground pixels form one cluster (``"nearest"``) or
are background (``"background"``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from unetkit.clustering._common import check_embeddings, check_number, finish, foreground, foreground_points
from unetkit.errors import InputError

Noise = Literal["nearest", "background"]

BLOCK_PAIRS = 2**22
"""Largest number of (pixel, sample) pairs in one distance temporary."""


def _nearest(points: Tensor, refs: Tensor) -> Tensor:
    """Index of the nearest row of ``refs`` for every row of ``points`` (blocked)."""
    out = torch.empty(points.shape[0], dtype=torch.long)
    step = max(1, BLOCK_PAIRS // max(1, refs.shape[0]))
    for lo in range(0, points.shape[0], step):
        out[lo : lo + step] = torch.cdist(points[lo : lo + step], refs).argmin(1)
    return out


def hdbscan(
    embeddings: np.ndarray | Tensor,
    *,
    min_size: int = 200,
    mask: np.ndarray | Tensor | None = None,
    min_samples: int | None = None,
    noise: Noise = "nearest",
    max_samples: int = 10000,
    seed: int = 0,
    largest_is_background: bool | None = None,
) -> np.ndarray | Tensor:
    """Instance labels from pixel embeddings by HDBSCAN.

    Args:
        embeddings: ``(E, *S)`` channel-first embeddings (NumPy array or torch tensor, 2-D or
            3-D ``S``, or any number of spatial axes), finite values.
        min_size: smallest cluster, in pixels of the (masked) image (HDBSCAN's
            ``min_cluster_size``, scaled when subsampling; see the module docstring); >= 2.
        mask: optional ``(*S)`` boolean foreground; pixels outside it get label 0.
        min_samples: HDBSCAN's ``min_samples`` (density smoothing; default: its
            ``min_cluster_size``), also scaled by the sampling fraction.
        noise: ``"nearest"`` (noise pixels join the nearest cluster) or ``"background"``.
        max_samples: at most this many foreground pixels are clustered (random subsample).
        seed: seed of the subsample (the result is deterministic for a given seed).
        largest_is_background: apply the background rule (largest cluster -> 0); default: only
            when no ``mask`` is given.

    Returns:
        ``(*S)`` int32 labels ``1..K`` numbered by first appearance, 0 for background; NumPy
        input gives NumPy, torch input a tensor on its device (the work is done on the CPU).

    Raises:
        InputError: bad shapes, non-finite values or invalid options (the message names them).
    """
    from sklearn.cluster import HDBSCAN

    emb = check_embeddings(embeddings)
    size = check_number(min_size, "min_size", integer=True)
    if size < 2:
        raise InputError(f"min_size={min_size!r} must be >= 2")
    if min_samples is not None:
        check_number(min_samples, "min_samples", positive=True, integer=True)
    if noise not in ("nearest", "background"):
        raise InputError(f"noise={noise!r} must be 'nearest' or 'background'")
    n_max = int(check_number(max_samples, "max_samples", integer=True))
    if n_max < 2:
        raise InputError(f"max_samples={max_samples!r} must be >= 2")
    check_number(seed, "seed", integer=True)
    keep = foreground(mask, emb)
    points = foreground_points(emb, keep).cpu()
    n = points.shape[0]
    labels_fg = torch.ones(n, dtype=torch.long)
    if n >= 2:
        if n > n_max:
            idx = np.sort(np.random.default_rng(int(seed)).choice(n, size=n_max, replace=False))
            sample = points[torch.from_numpy(idx)]
        else:
            sample = points
        frac = sample.shape[0] / n
        mcs = max(2, round(size * frac))
        ms = mcs if min_samples is None else max(1, round(int(min_samples) * frac))
        if mcs > sample.shape[0]:  # fewer points than the smallest cluster: all noise
            lab = torch.full((sample.shape[0],), -1, dtype=torch.long)
        else:
            fit = HDBSCAN(min_cluster_size=mcs, min_samples=min(ms, sample.shape[0]), copy=True)
            lab = torch.from_numpy(fit.fit(sample.double().numpy()).labels_.astype(np.int64))  # -1: noise
        k = int(lab.max()) + 1
        if k == 0:
            labels_fg = torch.ones(n, dtype=torch.long) if noise == "nearest" else torch.zeros(n, dtype=torch.long)
        else:
            sums = torch.zeros(k, sample.shape[1], dtype=sample.dtype).index_add_(0, lab[lab >= 0], sample[lab >= 0])
            centroids = sums / torch.bincount(lab[lab >= 0], minlength=k)[:, None].to(sample.dtype)
            labels_fg = _nearest(points, centroids) + 1
            if noise == "background":
                labels_fg[lab[_nearest(points, sample)] < 0] = 0
    background = mask is None if largest_is_background is None else bool(largest_is_background)
    return finish(labels_fg, keep, embeddings, emb.device, background=background)


__all__ = ["hdbscan"]
