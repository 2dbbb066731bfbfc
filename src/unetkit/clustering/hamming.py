"""Instance segmentation from samples by greedy Hamming clustering (HPU-Net, appendices G and H;
method notes, section 4, "Instance segmentation from samples").

Input: ``n`` samples of the same image, each a label map (e.g. a random colouring of the
objects, or an instance segmentation with arbitrary ids). A pixel's *code* is its ``n`` labels;
as one-hot vectors (one block per sample), two codes are at Hamming distance
``2 * (number of samples in which the labels differ)``, and ``alpha`` is measured in these
one-hot units (``alpha = n``, the default and the paper's choice, joins pixels that differ in
at most half of the samples).

Greedy clustering (a loop over clusters, each step one NumPy operation over the *unique* codes,
never over pixels): cluster 0 is the background prototype (every sample says ``background``);
every code within ``alpha`` of it is background. Then, repeatedly, the most frequent code not
yet assigned (most pixels; ties: the code first in the internal key order, deterministic) is a new prototype and every
unassigned code within ``alpha`` of it joins its cluster.

Post-processing: with ``connected=True`` (default) each face-connected component of a cluster
is its own instance (a colour code can recur on far-apart objects). Instances that do not
survive a binary erosion with an ``erosion``-wide square (cube in 3-D) are removed; each of
their pixels takes the most frequent label of the surviving pixels (background included) in the
``majority``-wide box around it (ties: the smaller label, so background first), or, when that box
holds no surviving pixel, the label of the nearest surviving pixel. The background is never
removed. Output: ``(*S)`` int64, 0 background, instances ``1..K`` numbered by first appearance
in C order.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage as ndi

from unetkit.clustering._common import check_number
from unetkit.errors import InputError

__all__ = ["hamming_clustering", "hamming_codes"]


def _check_samples(samples: ArrayLike) -> np.ndarray:
    if hasattr(samples, "detach"):  # a torch tensor
        samples = samples.detach().cpu().numpy()  # type: ignore[union-attr]
    x = np.asarray(samples)
    if x.dtype.kind not in "biu":
        raise InputError(f"samples must be integer label maps, got dtype {x.dtype}")
    if x.ndim not in (3, 4):
        raise InputError(f"samples must have shape (n, *S) with 2-D or 3-D S, got shape {x.shape}")
    if x.shape[0] < 2:
        raise InputError(f"samples has n={x.shape[0]} sample(s) (shape {x.shape}); Hamming clustering "
                         "needs at least 2 samples of the same image")
    return x


def hamming_codes(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unique codes of ``samples`` ``(n, *S)``: ``codes`` ``(U, n)`` int64 (one row per
    distinct column of labels), ``counts`` ``(U,)`` pixels per code and ``inverse`` ``(P,)`` the
    code of every pixel (C order). Each sample's labels are first renumbered densely, so that
    the codes become one int64 key per pixel (a fast 1-D unique instead of a row unique)."""
    n = samples.shape[0]
    flat = samples.reshape(n, -1)
    dense = np.empty(flat.shape, dtype=np.int64)
    sizes = []
    lo, hi = int(flat.min(initial=0)), int(flat.max(initial=0))
    for s in range(n):  # a loop over samples
        if hi - lo <= 4 * flat.shape[1] + 1024:  # small ids: a lookup table, no sort
            present = np.bincount(flat[s] - lo, minlength=hi - lo + 1) > 0
            lut = np.cumsum(present) - 1
            dense[s] = lut[flat[s] - lo]
            sizes.append(int(present.sum()))
        else:
            values, dense[s] = np.unique(flat[s], return_inverse=True)
            sizes.append(len(values))
    # mixed-radix key per pixel; when the radix product would overflow int64, the key so far
    # is compacted to its rank among the distinct keys (a 1-D unique) and the build goes on
    key = np.zeros(flat.shape[1], dtype=np.int64)
    card = 1
    for s in range(n):
        if card * sizes[s] >= 2**62:
            uniq, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            card = len(uniq)
        key = key * sizes[s] + dense[s]
        card *= sizes[s]
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    codes = flat[:, first].T.astype(np.int64)
    return codes, counts, inverse.reshape(-1)


def _greedy(codes: np.ndarray, counts: np.ndarray, alpha: float, background: int | None) -> np.ndarray:
    """Cluster id ``(U,)`` of every unique code: 0 = background prototype's cluster, then 1, 2, ...
    in the order the prototypes were chosen."""
    u = codes.shape[0]
    cluster = np.full(u, -1, dtype=np.int64)
    limit = alpha / 2.0  # one-hot Hamming distance = 2 * differing samples
    if background is not None:
        differ = np.count_nonzero(codes != background, axis=1)
        cluster[differ <= limit] = 0
    left = np.flatnonzero(cluster < 0)
    next_id = 1
    while left.size:
        proto = left[np.argmax(counts[left])]  # first maximum: ties go to the smaller key
        differ = np.count_nonzero(codes[left] != codes[proto], axis=1)
        near = differ <= limit  # includes the prototype itself
        cluster[left[near]] = next_id
        left = left[~near]
        next_id += 1
    return cluster


def _survivors(labels: np.ndarray, erosion: int) -> np.ndarray:
    """Boolean per label ``(max + 1,)``: the label has a pixel whose whole ``erosion``-wide box
    (outside the image: replicated border) carries that label, i.e. it survives the erosion."""
    size = labels.max(initial=0) + 1
    if erosion <= 1:
        return np.ones(size, dtype=bool)
    lo = ndi.minimum_filter(labels, size=erosion, mode="nearest")
    hi = ndi.maximum_filter(labels, size=erosion, mode="nearest")
    core = lo == hi  # then both equal labels
    alive = np.zeros(size, dtype=bool)
    alive[labels[core]] = True
    return alive


def _fill(labels: np.ndarray, removed: np.ndarray, majority: int) -> np.ndarray:
    """Removed pixels get the most frequent label of the kept pixels in the ``majority`` box
    around them (ties: the smaller label); the nearest kept pixel's label where the box holds none."""
    out = labels.copy()
    # region of interest: the removed pixels' bounding box, grown by the box radius
    idx = np.nonzero(removed)
    half = majority // 2 + 1
    roi = tuple(slice(max(0, int(i.min()) - half), int(i.max()) + half + 1) for i in idx)
    lab = labels[roi]
    rem = removed[roi]
    kept = ~rem
    near = ndi.maximum_filter(rem, size=majority, mode="constant", cval=False) & kept  # kept pixels that can vote
    candidates = np.unique(lab[near])
    best = np.full(lab.shape, -1.0)
    winner = np.full(lab.shape, -1, dtype=np.int64)
    for c in candidates:  # a loop over labels next to removed pixels
        votes = ndi.uniform_filter(((lab == c) & kept).astype(np.float64), size=majority, mode="constant")
        better = votes > best + 1e-9  # ascending labels: ties keep the smaller one
        best[better] = votes[better]
        winner[better] = c
    winner[best <= 1e-9] = -1
    sub = out[roi]
    sub[rem] = winner[rem]
    orphans = sub < 0  # no kept pixel in the box: the nearest kept pixel of the whole image
    if orphans.any():
        full_orphans = np.zeros(labels.shape, dtype=bool)
        full_orphans[roi] = orphans
        nearest = ndi.distance_transform_edt(full_orphans, return_distances=False, return_indices=True)
        out[full_orphans] = out[tuple(nearest)][full_orphans]
    return out


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels ``>= 0`` renumbered ``1..K`` by first appearance in C order (0 stays 0), int64."""
    flat = labels.reshape(-1)
    values, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    new = np.zeros(len(values), dtype=np.int64)
    fg = order[values[order] != 0]
    new[fg] = np.arange(1, len(fg) + 1)
    return new[inverse.reshape(-1)].reshape(labels.shape)


def hamming_clustering(
    samples: ArrayLike,
    alpha: float | None = None,
    *,
    background: int | None = 0,
    erosion: int = 5,
    majority: int = 11,
    connected: bool = True,
) -> np.ndarray:
    """Instance labels from ``n`` sampled label maps of one image by greedy Hamming clustering.

    Args:
        samples: ``(n, *S)`` integer label maps (``n >= 2``, ``S`` 2-D ``(Y, X)`` or 3-D
            ``(Z, Y, X)``), e.g. model samples of a colouring or grader annotations; NumPy array
            or torch tensor.
        alpha: the largest one-hot Hamming distance to a prototype (>= 0), i.e. pixels whose
            labels differ from the prototype's in at most ``alpha / 2`` samples join it;
            default ``n`` (the paper's ``alpha = n``: up to half the samples may differ).
        background: the label that means background in the samples; cluster 0 is the code
            "background in every sample" and every code within ``alpha`` of it is background
            (0 in the output). ``None``: no background prototype, every pixel is in an instance.
        erosion: width of the square / cube structuring element (>= 1; 1 removes nothing):
            instances that vanish under this erosion are removed (paper: 5). The image border
            does not erode (replicated border), so objects cut by it are judged by their width.
        majority: width of the box whose majority label replaces a removed pixel (>= 1; paper: 11).
        connected: each face-connected component of a code cluster is its own instance (the
            same colour code can appear on far-apart objects); ``False`` keeps clusters whole.

    Returns:
        ``(*S)`` int64 labels: 0 background, instances ``1..K`` by first appearance in C order.

    Raises:
        InputError: non-integer samples, fewer than 2 samples, bad shape, ``alpha < 0``,
            ``erosion < 1`` or ``majority < 1`` (the message names the value).
    """
    x = _check_samples(samples)
    n = x.shape[0]
    a = float(n) if alpha is None else check_number(alpha, "alpha")
    erosion = int(check_number(erosion, "erosion", positive=True, integer=True))
    majority = int(check_number(majority, "majority", positive=True, integer=True))
    if background is not None and (isinstance(background, bool) or not isinstance(background, (int, np.integer))):
        raise InputError(f"background={background!r} must be an integer label or None")
    spatial = x.shape[1:]
    codes, counts, inverse = hamming_codes(x)
    cluster = _greedy(codes, counts, a, None if background is None else int(background))
    labels = cluster[inverse].reshape(spatial)
    if background is None:
        labels = labels + 1  # cluster 0 is an ordinary cluster; no background in the output
    if connected:
        labels = _components_per_cluster(labels)
    alive = _survivors(labels, erosion)
    alive[0] = True
    removed = ~alive[labels]
    if removed.any() and not removed.all():
        labels = _fill(labels, removed, majority)
    return _relabel(labels)


def _components_per_cluster(labels: np.ndarray) -> np.ndarray:
    """Face-connected components of every label > 0 at once: ``(*S)`` int64 component ids
    (``>= 1``; 0 where ``labels == 0``). Two face neighbours are joined iff they carry the same
    label: one sparse pixel graph with the edges between equal labels, one
    ``scipy.sparse.csgraph.connected_components`` call (no loop over labels or pixels)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    flat = labels.reshape(-1)
    index = np.arange(flat.size).reshape(labels.shape)
    rows, cols = [], []
    for ax in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[ax] = slice(1, None)
        b[ax] = slice(None, -1)
        same = (labels[tuple(a)] == labels[tuple(b)]) & (labels[tuple(a)] > 0)
        rows.append(index[tuple(a)][same])
        cols.append(index[tuple(b)][same])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(flat.size, flat.size))
    _, comp = connected_components(graph, directed=False)
    out = comp.astype(np.int64) + 1
    out[flat == 0] = 0
    return out.reshape(labels.shape)
