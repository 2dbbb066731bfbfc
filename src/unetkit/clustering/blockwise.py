"""Blockwise clustering of embeddings that do not fit in memory at once.

The image is cut into a grid of *cores* (``block_shape``, the last ones smaller); every core is
grown by ``overlap`` pixels on each side (clipped at the image border) into a *block*, and each
block is clustered on its own by ``cluster(embeddings_block, mask_block)`` (``(E, *b)`` float32
and ``(*b)`` bool or None -> ``(*b)`` integer labels, 0 = background / outside the mask). Only
one block's embeddings (and mask) are read at a time, so ``embeddings`` and ``mask`` may be
disk-backed arrays (NumPy memmap, Zarr, HDF5); the labels ``(*S)`` are held in memory. Blocks
may be clustered in parallel by any ``mapper`` (a thread pool's ``map``, or
:func:`unetkit.inference.dask.client_mapper` for Dask tasks that read their blocks themselves).

Merge rule (documented, deterministic): every block's objects get global ids; for every pair
of blocks whose blocks intersect (neighbours along an axis and diagonal ones), the two label
maps are compared on the *intersection* of the two blocks. Object ``a`` of one block and
object ``b`` of the other are the same object when their IoU restricted to the intersection,
``|a & b| / |a | b|``, is greater than ``min_iou`` (default 0.5; an IoU above 0.5 makes the
match one-to-one within a pair). Matches are joined with union-find, so an object crossing
several borders keeps one id. Each pixel then takes the (merged) label its *core's* block gave
it. Ids are finally renumbered ``1..K`` by first appearance; with ``largest_is_background`` the
largest merged object becomes 0, as whole-image clustering does -- blocks are therefore always
clustered without the background rule.

Objects matched in an overlap should look alike in both blocks: the overlap should be larger
than the context the method needs (mutex watershed: its longest offset, 27 by default) and
than the objects' radius; the default overlap is 32 pixels. Clustering methods that are global
in embedding space (mean shift, HDBSCAN) give each block its own clusters; objects are merged
only through the overlaps, so two distant pieces of one "embedding cluster" stay two objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from unetkit.clustering._common import join_background, largest_to_background, remove_small_segments, segment_sums
from unetkit.errors import InputError

ClusterFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
DEFAULT_OVERLAP = 32


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, a: int) -> int:
        p = self.parent
        root = a
        while p[root] != root:
            root = p[root]
        while p[a] != root:
            p[a], a = root, p[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def block_grid(spatial: Sequence[int], block_shape: Sequence[int], overlap: int | Sequence[int]
               ) -> list[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """``(core, block)`` slice tuples of the grid, in C order of the cores."""
    if len(block_shape) != len(spatial):
        raise InputError(f"block_shape {tuple(block_shape)} must have {len(spatial)} entries, one per spatial axis")
    ov = [int(overlap)] * len(spatial) if np.isscalar(overlap) else [int(o) for o in overlap]  # type: ignore[arg-type]
    if len(ov) != len(spatial) or any(o < 0 for o in ov) or any(int(b) < 1 for b in block_shape):
        raise InputError(f"block_shape {tuple(block_shape)} must be >= 1 and overlap {overlap!r} >= 0 per axis")
    starts = [range(0, s, int(b)) for s, b in zip(spatial, block_shape)]
    out = []
    for corner in itertools.product(*starts):
        core = tuple(slice(c, min(c + int(b), s)) for c, b, s in zip(corner, block_shape, spatial))
        block = tuple(slice(max(0, c.start - o), min(s, c.stop + o)) for c, o, s in zip(core, ov, spatial))
        out.append((core, block))
    return out


def _intersect(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...] | None:
    out = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a, b))
    return out if all(s.stop > s.start for s in out) else None


def _local(region: tuple[slice, ...], block: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(r.start - b.start, r.stop - b.start) for r, b in zip(region, block))


def _matches(a: np.ndarray, b: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs of labels (both > 0) of two label maps of one region with IoU > ``min_iou``."""
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    size_a = np.bincount(ia, minlength=len(ua))
    size_b = np.bincount(ib, minlength=len(ub))
    both = (a > 0) & (b > 0)
    pair = ia[both] * len(ub) + ib[both]
    keys, inter = np.unique(pair, return_counts=True)
    pa, pb = keys // len(ub), keys % len(ub)
    iou = inter / (size_a[pa] + size_b[pb] - inter)
    ok = iou > min_iou
    return list(zip(ua[pa[ok]].tolist(), ub[pb[ok]].tolist()))


def blockwise_cluster(
    embeddings: Any,
    cluster: ClusterFn,
    *,
    block_shape: Sequence[int],
    overlap: int | Sequence[int] = DEFAULT_OVERLAP,
    mask: Any = None,
    largest_is_background: bool | None = None,
    min_iou: float = 0.5,
    progress: bool = False,
    mapper: Callable[[Callable[[tuple[slice, ...]], np.ndarray], list[tuple[slice, ...]]], Any] | None = None,
    min_size: int = 0,
    background_radius: float = 0.0,
) -> np.ndarray:
    """Cluster ``(E, *S)`` embeddings block by block and merge the blocks' labels (module docstring).

    Args:
        embeddings: ``(E, *S)`` array-like supporting slicing (NumPy, memmap, Zarr, HDF5).
        cluster: ``cluster(emb_block (E, *b) float32, mask_block (*b) bool or None) -> (*b)``
            integer labels, 0 = background; called *without* any background rule.
        block_shape: core size per spatial axis.
        overlap: pixels each core is grown by on each side (int or one per axis).
        mask: optional ``(*S)`` foreground (nonzero = foreground), a NumPy array or a lazily
            sliced one (Zarr, HDF5: read block by block); pixels outside get 0.
        largest_is_background: after merging, the largest object becomes 0; default: only
            without a ``mask`` (the convention of :mod:`unetkit.clustering`).
        min_iou: objects of two blocks are joined when their IoU on the blocks' intersection
            is greater than this (in ``[0.5, 1)`` for one-to-one matches).
        progress: progress bar over blocks.
        mapper: ``mapper(fn, blocks)`` -> the block labels in order, e.g.
            ``ThreadPoolExecutor().map`` or :func:`unetkit.inference.dask.client_mapper` (Dask
            tasks), to cluster blocks in parallel (``fn`` reads its block from ``embeddings`` and
            ``mask``, which the workers must then be able to read: e.g. Zarr stores reopened by
            path); default: one after the other in this process.
        background_radius: with the background rule, merged objects whose mean embedding is
            within this distance of the largest one's are background too (as
            :func:`~unetkit.clustering.mutex_watershed`'s ``background_radius``; the means are
            summed block by block over the cores, reading the embeddings a second time).
        min_size: after merging and the background rule, objects of fewer pixels become 0
            (:func:`~unetkit.clustering.remove_small_segments`); applied to the merged labels,
            never per block, so an object cut by a block border is judged by its whole size.

    Returns:
        ``(*S)`` int32 labels ``1..K`` numbered by first appearance, 0 for background.
    """
    shape = tuple(int(s) for s in embeddings.shape)
    if len(shape) < 2:
        raise InputError(f"embeddings must be (E, *S), got shape {shape}")
    spatial = shape[1:]
    if mask is not None:
        if isinstance(mask, np.ndarray) or not hasattr(mask, "shape"):
            mask = np.asarray(mask).astype(bool, copy=False)
        if tuple(mask.shape) != spatial:
            raise InputError(f"mask shape {tuple(mask.shape)} differs from the embeddings' spatial shape {spatial}")
    if not 0 <= min_iou < 1:
        raise InputError(f"min_iou={min_iou!r} must be in [0, 1)")
    grid = block_grid(spatial, block_shape, overlap)
    from tqdm.auto import tqdm

    def one(block: tuple[slice, ...]) -> np.ndarray:
        m = None if mask is None else np.asarray(mask[block]).astype(bool, copy=False)
        if m is not None and not m.any():
            return np.zeros(m.shape, dtype=np.int64)
        emb = np.asarray(embeddings[(slice(None), *block)], dtype=np.float32)
        lab = np.asarray(cluster(emb, m)).astype(np.int64)
        if m is not None:
            lab[~m] = 0
        return lab

    blocks = [block for _, block in grid]
    if mapper is None:
        labels = [one(b) for b in tqdm(blocks, desc="cluster", unit="block", disable=not progress)]
    else:
        labels = [np.asarray(lab) for lab in mapper(one, blocks)]
    offsets: list[int] = []
    total = 0
    for lab in labels:
        offsets.append(total)
        total += int(lab.max(initial=0))
    uf = _UnionFind(total + 1)
    for i, j in _neighbours(grid):
        region = _intersect(grid[i][1], grid[j][1])
        if region is None:
            continue
        a = labels[i][_local(region, grid[i][1])]
        b = labels[j][_local(region, grid[j][1])]
        for la, lb in _matches(a, b, min_iou):
            uf.union(offsets[i] + la, offsets[j] + lb)
    roots = uf.roots()
    out = np.zeros(spatial, dtype=np.int64)
    for (core, block), lab, off in zip(grid, labels, offsets):
        local = lab[_local(core, block)]
        out[core] = np.where(local > 0, roots[np.where(local > 0, local + off, 0)], 0)
    background = mask is None if largest_is_background is None else bool(largest_is_background)
    if background and background_radius > 0:
        k = int(out.max(initial=0)) + 1
        sums, counts = np.zeros((k, shape[0])), np.zeros(k)
        for core, _ in grid:
            s_core, c_core = segment_sums(out[core], np.asarray(embeddings[(slice(None), *core)]), k)
            sums += s_core
            counts += c_core
        out = join_background(torch.from_numpy(out), sums, counts, float(background_radius)).numpy()
    result = torch.from_numpy(_first_appearance(out))
    if background:
        result = largest_to_background(result)
    if min_size > 1:
        result = remove_small_segments(result, int(min_size))
    return result.numpy().astype(np.int32)


def _neighbours(grid: list[tuple[tuple[slice, ...], tuple[slice, ...]]]) -> list[tuple[int, int]]:
    """Index pairs ``i < j`` of blocks that may intersect (cores within reach of the overlap)."""
    starts = [sorted({core[d].start for core, _ in grid}) for d in range(len(grid[0][0]))]
    index = {tuple(starts[d].index(core[d].start) for d in range(len(core))): k for k, (core, _) in enumerate(grid)}
    reach = []
    for d in range(len(starts)):
        step = starts[d][1] - starts[d][0] if len(starts[d]) > 1 else 1
        grow = max(core[d].start - block[d].start for core, block in grid)
        reach.append(int(np.ceil(2 * grow / step)) if grow else 1)
    pairs = []
    for pos, i in index.items():
        for delta in itertools.product(*[range(-r, r + 1) for r in reach]):
            j = index.get(tuple(p + q for p, q in zip(pos, delta)))
            if j is not None and j > i:
                pairs.append((i, j))
    return sorted(pairs)


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Ids ``1..K`` by first appearance in C order, 0 kept."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    fg = ids > 0
    order = np.argsort(first[fg], kind="stable")
    lut_ids = ids[fg][order]
    new = np.zeros(flat.shape, dtype=np.int64)
    pos = np.searchsorted(ids, flat)
    rank = np.zeros(len(ids), dtype=np.int64)
    rank[np.flatnonzero(fg)[order]] = np.arange(1, len(lut_ids) + 1)
    new[:] = rank[pos]
    return new.reshape(labels.shape)


def block_shape_for(spatial: Sequence[int], bytes_per_pixel: float, budget: int,
                    overlap: int | Sequence[int] = DEFAULT_OVERLAP) -> tuple[int, ...]:
    """The largest cube-like core whose grown block needs at most ``budget`` bytes at
    ``bytes_per_pixel``; but at least ``max(8, overlap)`` pixels per axis (then a block needs
    more than ``budget``: tiny cores would make the overlaps most of the work)."""
    nd = len(spatial)
    ov = [int(overlap)] * nd if np.isscalar(overlap) else [int(o) for o in overlap]  # type: ignore[arg-type]
    pixels = max(1.0, budget / max(bytes_per_pixel, 1e-9))
    side = max(1, int(pixels ** (1.0 / nd)))
    core = [max(1, min(int(s), max(side - 2 * o, 8, o))) for s, o in zip(spatial, ov)]
    return tuple(core)


__all__ = ["DEFAULT_OVERLAP", "block_grid", "block_shape_for", "blockwise_cluster"]
