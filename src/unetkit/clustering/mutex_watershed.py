"""Affinity-based clustering of pixel embeddings with the mutex watershed (SPOCO appendix A.4;
method notes, section 3), through the ``mwatershed`` package.

Graph: one node per pixel; *attractive* edges to the direct neighbours (offset 1 along each
axis) and *repulsive* long-range edges at offsets 3, 9 and 27 along every axis (the paper's
pattern, "distance 3, 9 and 27 across all dimensions", read as axis-aligned offsets as in the
method notes). The weight of the edge between pixels i and j is the paper's Eq. 12,

    w_ij = 1 - max((2 delta_d - ||e_i - e_j||) / (2 delta_d), 0)^2,

derived from the push term of the discriminative loss (hinge ``2 delta_d``, ``delta_d`` = 2.0 by
default as in the method notes): 0 (maximally attractive) at embedding distance 0, 1 (maximally
repulsive) from distance ``2 delta_d`` on. As in the mutex watershed (Wolf et al. 2018), an
attractive edge has priority ``1 - w_ij`` (the affinity) and a repulsive edge priority ``w_ij``;
all edges are processed in decreasing priority, an attractive edge merging its two clusters
unless a repulsive ("mutex") edge already separates them, a repulsive edge forbidding their
merge. ``mwatershed.agglom`` takes one signed array: positive values are attractive, negative
repulsive, processed in decreasing magnitude, so attractive edges get ``+(1 - w)`` and repulsive
ones ``-w``. ``affinities[k, p]`` is the edge between pixel ``p`` and ``p + offsets[k]``
(checked by experiment with mwatershed 0.5.4).

Each object is spatially connected through direct neighbours (long-range edges never merge), so
two separate regions with the same embedding are two objects, unlike mean shift or HDBSCAN.
Pixels that merge with nothing (mwatershed's label 0) are objects of their own. With a ``mask``
every edge that touches a pixel outside it gets a negligible repulsive weight, so those pixels
stay single and never connect foreground objects; they are then set to 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from unetkit.clustering._common import (
    check_embeddings,
    check_number,
    finish,
    foreground,
    join_background,
    segment_sums,
)
from unetkit.errors import InputError

LONG_RANGE = (3, 9, 27)
"""Long-range offsets of the paper, along every axis."""


def default_offsets(ndim: int) -> list[tuple[int, ...]]:
    """Direct neighbours (1 along each axis), then 3, 9 and 27 along each axis."""
    out = []
    for d in (1, *LONG_RANGE):
        for axis in range(ndim):
            off = [0] * ndim
            off[axis] = d
            out.append(tuple(off))
    return out


def _pairs(off: Sequence[int], spatial: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the pixels ``p`` and of their partners ``p + off`` (both inside the image);
    empty slices when the offset is at least the image's extent."""
    src = tuple(slice(min(s, max(0, -o)), max(0, s - max(0, o))) for o, s in zip(off, spatial))
    dst = tuple(slice(min(s, max(0, o)), max(0, s - max(0, -o))) for o, s in zip(off, spatial))
    return src, dst


def embedding_affinity_weights(emb: np.ndarray, offsets: Sequence[Sequence[int]], delta_d: float) -> np.ndarray:
    """``(len(offsets), *S)`` weights ``w`` of Eq. 12 between every pixel ``p`` and ``p + offset``
    (0 where ``p + offset`` is outside the image). ``emb`` is ``(E, *S)``."""
    spatial = emb.shape[1:]
    out = np.zeros((len(offsets), *spatial), dtype=np.float64)
    hinge = 2.0 * delta_d
    for k, off in enumerate(offsets):
        src, dst = _pairs(off, spatial)
        diff = emb[(slice(None), *src)] - emb[(slice(None), *dst)]
        dist = np.sqrt(np.einsum("e...,e...->...", diff, diff))
        out[(k, *src)] = 1.0 - np.maximum((hinge - dist) / hinge, 0.0) ** 2
    return out


def mutex_watershed(
    embeddings: np.ndarray | Tensor,
    *,
    offsets: Sequence[Sequence[int]] | None = None,
    mask: np.ndarray | Tensor | None = None,
    delta_d: float = 2.0,
    largest_is_background: bool | None = None,
    min_size: int = 0,
    background_radius: float = 0.0,
) -> np.ndarray | Tensor:
    """Instance labels from pixel embeddings by the mutex watershed on embedding affinities.

    Args:
        embeddings: ``(E, *S)`` channel-first embeddings, 2-D or 3-D ``S`` (NumPy array or
            torch tensor), finite values.
        offsets: pixel offsets of the edges, each a sequence of ``len(S)`` integers, not all 0;
            offsets to a direct neighbour (one component +-1, the others 0) are attractive, all
            others repulsive. Default: :func:`default_offsets` (1 attractive; 3, 9, 27 repulsive,
            along every axis).
        mask: optional ``(*S)`` boolean foreground; pixels outside it get label 0.
        delta_d: the push hinge of the discriminative loss (> 0); embedding distances of
            ``2 delta_d`` or more are maximally repulsive.
        largest_is_background: apply the background rule (largest cluster -> 0); default: only
            when no ``mask`` is given.

        background_radius: with the background rule, every segment whose mean embedding lies
            within this distance of the largest segment's mean is background too
            (:func:`~unetkit.clustering._common.join_background`: the background regions that
            cells cut apart); 0 (default) only the largest. Tasks and ``unetkit segment`` pass
            the run's ``delta_v``.
        min_size: segments of fewer pixels become background (0) after the background rule
            (:func:`~unetkit.clustering._common.remove_small_segments`); 0 keeps every segment.
            The mutex watershed leaves single pixels and small fragments where embeddings are
            not crisp (unlabelled background of SPOCO@p, object borders); tasks and ``unetkit
            segment`` pass the run's ``min_size`` (default 50 pixels).
    Returns:
        ``(*S)`` int32 labels ``1..K`` numbered by first appearance, 0 for background; NumPy
        input gives NumPy, torch input a tensor on its device (the work is done on the CPU).

    Raises:
        InputError: bad shapes, non-finite values or invalid options (the message names them).
    """
    import mwatershed

    emb_t = check_embeddings(embeddings, spatial_dims=(2, 3))
    dd = check_number(delta_d, "delta_d", positive=True)
    min_px = int(check_number(min_size, "min_size", integer=True))
    radius = check_number(background_radius, "background_radius")
    ndim = emb_t.dim() - 1
    if offsets is None:
        offs = default_offsets(ndim)
    else:
        try:
            offs = [tuple(int(v) for v in o) for o in offsets]
            ok = all(len(o) == ndim and all(int(v) == v for v in orig) for o, orig in zip(offs, offsets))
        except (TypeError, ValueError):
            ok = False
        if not ok or not offs or any(all(v == 0 for v in o) for o in offs):
            raise InputError(f"offsets={offsets!r} must be a non-empty list of non-zero integer "
                             f"offsets of length {ndim}")
    keep = foreground(mask, emb_t)
    emb = emb_t.cpu().double().numpy()
    if not np.isfinite(emb[:, keep.cpu().numpy()]).all():
        raise InputError(f"embeddings {tuple(emb.shape)} contain NaN or infinite values")
    emb = np.where(keep.cpu().numpy()[None], emb, 0.0)
    w = embedding_affinity_weights(emb, offs, dd)
    attractive = np.array([sum(abs(v) for v in o) == 1 for o in offs])
    signed = np.where(attractive.reshape(-1, *[1] * ndim), 1.0 - w, -w)
    if mask is not None:
        fg = keep.cpu().numpy()
        spatial = fg.shape
        for k, off in enumerate(offs):
            touches = ~fg
            src, dst = _pairs(off, spatial)
            touches[src] |= ~fg[dst]
            signed[k][touches] = -1e-12
    # offsets as long as the image have no edges (and mwatershed rejects them)
    used = [k for k, o in enumerate(offs) if all(abs(v) < s for v, s in zip(o, emb.shape[1:]))]
    if used:
        seg = mwatershed.agglom(np.ascontiguousarray(signed[used]), [list(offs[k]) for k in used])
        seg = seg.astype(np.int64)
    else:
        seg = np.zeros(emb.shape[1:], dtype=np.int64)
    single = seg == 0
    seg[single] = seg.max() + 1 + np.arange(int(single.sum()))
    background = mask is None if largest_is_background is None else bool(largest_is_background)
    fg = keep.cpu().numpy()
    if background and radius > 0:
        seg = np.where(fg, seg, 0)
        sums, counts = segment_sums(seg, emb)
        seg = join_background(torch.from_numpy(seg), sums, counts, radius).numpy()
    labels_fg = torch.from_numpy(seg[fg])
    return finish(labels_fg, keep, embeddings, emb_t.device, background=background, min_size=min_px)


__all__ = ["default_offsets", "embedding_affinity_weights", "mutex_watershed"]
