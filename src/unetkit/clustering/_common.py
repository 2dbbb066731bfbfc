"""Helpers shared by the clustering methods: input checks, the foreground mask, the background
rule and consecutive relabelling.

Conventions (all methods): embeddings are ``(E, *S)`` (channels first, then one or more spatial
axes); ``mask`` is an optional ``(*S)`` boolean array, pixels outside it get label 0; the result
is an ``(*S)`` int32 label image with objects ``1..K`` numbered by first appearance in C order,
of the same kind as the input (NumPy array, or a torch tensor on the input's device).

Background rule (:func:`largest_to_background`): when no mask is given, the background is one
more cluster and the *largest* cluster (most pixels; ties: the smaller label) becomes label 0,
the others are renumbered ``1..K-1`` keeping their order.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor

from unetkit.errors import InputError


def check_number(value: object, name: str, *, positive: bool = False, integer: bool = False) -> float:
    """``float(value)`` after checking it is a finite (integer) number, ``>= 0`` (``> 0`` if
    ``positive``); otherwise :class:`InputError` naming ``name=value``."""
    ok_type = isinstance(value, Integral) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):  # type: ignore[arg-type]
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{name}={value!r} must be {kind}")
    v = float(value)  # type: ignore[arg-type]
    if (positive and v <= 0) or v < 0:
        raise InputError(f"{name}={value!r} must be {'> 0' if positive else '>= 0'}")
    return v


def as_tensor(embeddings: np.ndarray | Tensor, name: str = "embeddings") -> Tensor:
    """A detached real tensor view of a NumPy array or tensor (no shape checks)."""
    if isinstance(embeddings, Tensor):
        t = embeddings.detach()
    elif isinstance(embeddings, np.ndarray):
        if embeddings.dtype.kind not in "biuf":
            raise InputError(f"{name} must be a numeric array, got dtype {embeddings.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(embeddings))
    else:
        raise InputError(f"{name} must be a NumPy array or a torch tensor, got {type(embeddings).__name__}")
    if t.is_complex():
        raise InputError(f"{name} must be real, got dtype {t.dtype}")
    return t


def check_embeddings(embeddings: np.ndarray | Tensor, name: str = "embeddings",
                     *, spatial_dims: tuple[int, ...] | None = None) -> Tensor:
    """:func:`as_tensor` plus the ``(E, *S)`` shape checks (E >= 1, at least one spatial axis,
    ``len(S)`` in ``spatial_dims`` when given)."""
    emb = as_tensor(embeddings, name)
    if emb.dim() < 2:
        raise InputError(f"{name} must be (E, *S) with E channels and at least one spatial axis, "
                         f"got shape {tuple(emb.shape)}")
    if emb.shape[0] == 0:
        raise InputError(f"{name} {tuple(emb.shape)} have no channels (E = 0)")
    if spatial_dims is not None and emb.dim() - 1 not in spatial_dims:
        dims = " or ".join(f"{d}-D" for d in spatial_dims)
        raise InputError(f"{name} must be (E, *S) with {dims} S, got shape {tuple(emb.shape)}")
    return emb


def foreground(mask: np.ndarray | Tensor | None, emb: Tensor) -> Tensor:
    """The ``(*S)`` boolean foreground on ``emb``'s device (all true without ``mask``)."""
    spatial = tuple(emb.shape[1:])
    if mask is None:
        return torch.ones(spatial, dtype=torch.bool, device=emb.device)
    if isinstance(mask, Tensor):
        m = mask.detach()
    else:
        arr = np.asarray(mask)
        if arr.dtype.kind not in "biuf":
            raise InputError(f"mask must be a boolean array, got dtype {arr.dtype}")
        m = torch.from_numpy(np.ascontiguousarray(arr))
    if tuple(m.shape) != spatial:
        raise InputError(f"mask shape {tuple(m.shape)} differs from the spatial shape {spatial} "
                         f"of embeddings {tuple(emb.shape)}")
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex():
            raise InputError(f"mask must be boolean (or integer 0/1), got dtype {m.dtype}")
        m = m != 0
    return m.to(emb.device)


def foreground_points(emb: Tensor, keep: Tensor) -> Tensor:
    """``(P, E)`` float32/float64 embeddings of the foreground pixels (C order); checks finiteness."""
    dtype = torch.float64 if emb.dtype == torch.float64 else torch.float32
    points = emb.reshape(emb.shape[0], -1).t().to(dtype)[keep.reshape(-1)]
    if not bool(torch.isfinite(points).all()):
        raise InputError(f"embeddings {tuple(emb.shape)} contain NaN or infinite values")
    return points


def relabel_sequential(labels: Tensor) -> Tensor:
    """Non-negative integer labels renumbered ``1..K`` by first appearance in C order; 0 stays 0.
    Returns int32 of the same shape and device."""
    flat = labels.reshape(-1).long()
    if flat.numel() == 0:
        return torch.zeros(labels.shape, dtype=torch.int32, device=labels.device)
    _, inverse = torch.unique(flat, return_inverse=True)
    size = int(inverse.max()) + 1
    pos = torch.arange(flat.numel(), device=flat.device)
    first = torch.full((size,), flat.numel(), dtype=torch.long, device=flat.device)
    first = first.scatter_reduce(0, inverse, pos, reduce="amin")
    ids = torch.unique(flat)
    order = torch.argsort(first)
    new = torch.zeros(size, dtype=torch.int32, device=flat.device)
    nonzero = order[ids[order] != 0]
    new[nonzero] = torch.arange(1, nonzero.numel() + 1, dtype=torch.int32, device=flat.device)
    return new[inverse].reshape(labels.shape)


def largest_to_background(labels: Tensor) -> Tensor:
    """The background rule: the largest label ``> 0`` (most pixels, ties: the smaller label)
    becomes 0 and the labels above it move down by one; ``labels`` must be ``1..K`` (0 allowed)."""
    lab = labels.long()
    if lab.numel() == 0 or int(lab.max()) == 0:
        return labels
    counts = torch.bincount(lab.reshape(-1))
    counts[0] = -1
    big = int(torch.argmax(counts))
    out = torch.where(lab == big, 0, torch.where(lab > big, lab - 1, lab))
    return out.to(labels.dtype)


def segment_sums(labels: np.ndarray, embeddings: np.ndarray, size: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-label embedding sums ``(K, E)`` float64 and pixel counts ``(K,)`` of ``labels``
    ``(*S)`` (non-negative ints, ``K = size`` or ``max + 1``) over ``embeddings`` ``(E, *S)``.
    Sums from several blocks add up to the whole image's (how blockwise clustering uses it)."""
    flat = np.asarray(labels).reshape(-1).astype(np.int64)
    k = int(flat.max(initial=0)) + 1 if size is None else int(size)
    emb = np.asarray(embeddings, dtype=np.float64).reshape(embeddings.shape[0], -1)
    counts = np.bincount(flat, minlength=k).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=row, minlength=k) for row in emb], axis=1)
    return sums, counts


def join_background(labels: Tensor, sums: np.ndarray, counts: np.ndarray, radius: float) -> Tensor:
    """The largest segment of ``labels`` ``(*S)`` (ids ``>= 1``; 0 = outside a mask, left as is;
    most pixels, ties: the smaller id) and every segment whose mean embedding lies within
    ``radius`` of its mean, all given the largest's id. ``sums`` ``(K, E)`` and ``counts``
    ``(K,)`` come from :func:`segment_sums` over the same labels.

    Why: the background is *one* instance in embedding space (the discriminative and SPOCO
    losses pull it to one mean, SPOCO@p through the consistency term), but cells cut it into
    spatially separate regions, and the mutex watershed (whose segments are connected) returns
    each region as its own segment. Joining the regions whose mean equals the largest one's
    (within ``radius``, e.g. the pull hinge ``delta_v``) before the background rule turns all of
    them into background; cells, whose means lie ``2 delta_d`` away, are untouched.
    """
    lab = labels.long()
    if radius <= 0 or lab.numel() == 0 or int(lab.max()) == 0:
        return labels
    cnt = torch.as_tensor(counts, dtype=torch.float64)
    cnt_fg = cnt.clone()
    cnt_fg[0] = -1
    big = int(torch.argmax(cnt_fg))
    means = torch.as_tensor(sums, dtype=torch.float64) / cnt.clamp(min=1)[:, None]
    near = torch.linalg.vector_norm(means - means[big], dim=1) <= radius
    near &= cnt > 0
    near[0] = False
    table = torch.arange(cnt.numel(), dtype=torch.long)
    table[near] = big
    return table.to(lab.device)[lab].to(labels.dtype)


def remove_small_segments(labels: Tensor, min_size: int) -> Tensor:
    """Segments of fewer than ``min_size`` pixels set to 0 (background), the rest renumbered
    ``1..K`` by first appearance. ``labels``: ``(*S)`` non-negative integers; returns int32.

    The size filter of the mutex watershed and mean shift: an undertrained or unsure network
    leaves many small fragments, mostly in the background and along object borders (where
    embeddings move from one cluster to another); counting them as objects would ruin |DiC| and
    precision. ``min_size <= 1`` changes nothing but the numbering.
    """
    lab = labels.long()
    if min_size > 1 and lab.numel():
        counts = torch.bincount(lab.reshape(-1))
        small = counts < int(min_size)
        small[0] = False
        lab = torch.where(small[lab], 0, lab)
    return relabel_sequential(lab)


def finish(labels_fg: Tensor, keep: Tensor, embeddings: np.ndarray | Tensor, device: torch.device,
           *, background: bool, min_size: int = 0) -> np.ndarray | Tensor:
    """Scatter foreground labels (``(P,)``, any ids >= 0) into the ``(*S)`` image, relabel
    ``1..K`` by first appearance, apply the background rule if ``background``, then the size
    filter (:func:`remove_small_segments`, ``min_size``), and convert to the input's kind."""
    flat = torch.zeros(keep.numel(), dtype=torch.long, device=device)
    flat[keep.reshape(-1).to(device)] = labels_fg.to(device).long()
    labels = relabel_sequential(flat.reshape(keep.shape))
    if background:
        labels = largest_to_background(labels)
    if min_size > 1:
        labels = remove_small_segments(labels, min_size)
    if isinstance(embeddings, Tensor):
        return labels
    return labels.cpu().numpy()
