"""Consistency clustering (SPOCO appendix A.4, Algorithm 1; method notes, section 3).

Two augmented views of the image go through the network ``f`` and its momentum copy ``g``,
giving embeddings ``E_f`` and ``E_g``. ``E_f`` is clustered by mean shift with bandwidth
``delta_v`` (:func:`unetkit.clustering.mean_shift`, Gaussian kernel by default, as
:class:`unetkit.tasks.embedding.EmbeddingTask` does). For every object ``S_k``, ``n_anchors``
pixels of ``S_k`` are drawn at random; for each anchor ``a`` (its ``g``-embedding) the object
``S^_k^m = {i : ||e^g_i - a|| < delta_v}`` is taken in ``g``-space, and ``S_k`` is kept when the
median of the IoUs between ``S_k`` and its ``S^_k^m`` (the mean of the two middle values
for an even number) is greater than ``t_iou``; objects that
fail become background (label 0).

Interpretations (the paper leaves these open): the anchors are drawn uniformly from the
object's pixels, without replacement (all pixels if the object has fewer than ``n_anchors``);
``n_anchors`` defaults to 10; with a ``mask`` only foreground pixels take part (in clustering
and in the ``delta_v``-balls). Without a mask the background rule is applied to the mean-shift
result *before* the check (the largest cluster is the background and is not tested), since a
dropped background would otherwise let the largest object be taken for it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unetkit.clustering._common import check_embeddings, check_number, finish, foreground, foreground_points
from unetkit.clustering._common import largest_to_background
from unetkit.clustering.mean_shift import Kernel, mean_shift
from unetkit.errors import InputError


def consistency_clustering(
    f_embeddings: np.ndarray | Tensor,
    g_embeddings: np.ndarray | Tensor,
    *,
    t_iou: float = 0.6,
    delta_v: float = 0.5,
    n_anchors: int = 10,
    bandwidth: float | None = None,
    kernel: Kernel = "gaussian",
    mask: np.ndarray | Tensor | None = None,
    seed: int = 0,
    largest_is_background: bool | None = None,
    min_size: int = 0,
) -> np.ndarray | Tensor:
    """Mean-shift objects of ``f_embeddings`` kept only when consistent in ``g_embeddings``.

    Args:
        f_embeddings, g_embeddings: ``(E, *S)`` embeddings of the two views (same shape), 2-D or
            3-D ``S`` (or any number of spatial axes), finite values.
        t_iou: IoU threshold in ``[0, 1]``; an object is kept when the median IoU is above it.
        delta_v: pull hinge of the discriminative loss (> 0): radius of the ``g``-space balls and
            default mean-shift bandwidth.
        n_anchors: anchors per object (``M`` in Algorithm 1), >= 1.
        bandwidth, kernel: mean-shift options (``bandwidth`` default ``delta_v``).
        mask: optional ``(*S)`` boolean foreground; pixels outside it get label 0.
        seed: seed of the anchor draw (and of mean shift's random seeding).
        largest_is_background: apply the background rule to the mean-shift result (largest
            cluster -> 0); default: only when no ``mask`` is given.
        min_size: kept objects of fewer pixels become 0 (as in :func:`mean_shift`); 0 keeps all.

    Returns:
        ``(*S)`` int32 labels ``1..K`` of the kept objects numbered by first appearance, 0 for
        background and dropped objects; the kind of ``f_embeddings`` (NumPy, or torch on its device).

    Raises:
        InputError: bad shapes, non-finite values or invalid options (the message names them).
    """
    f = check_embeddings(f_embeddings, "f_embeddings")
    g = check_embeddings(g_embeddings, "g_embeddings")
    if f.shape != g.shape:
        raise InputError(f"f_embeddings {tuple(f.shape)} and g_embeddings {tuple(g.shape)} differ in shape")
    t = check_number(t_iou, "t_iou")
    if t > 1:
        raise InputError(f"t_iou={t_iou!r} must be in [0, 1]")
    dv = check_number(delta_v, "delta_v", positive=True)
    m = int(check_number(n_anchors, "n_anchors", positive=True, integer=True))
    bw = dv if bandwidth is None else check_number(bandwidth, "bandwidth", positive=True)
    check_number(seed, "seed", integer=True)
    min_px = int(check_number(min_size, "min_size", integer=True))
    keep = foreground(mask, f)
    g_points = foreground_points(g.to(f.device), keep)
    background = mask is None if largest_is_background is None else bool(largest_is_background)
    labels = torch.as_tensor(mean_shift(f, bandwidth=bw, kernel=kernel, mask=keep, seed=int(seed)))
    if background:
        labels = largest_to_background(labels)
    lab_fg = labels.to(f.device).reshape(-1)[keep.reshape(-1)].long()
    rng = np.random.default_rng(int(seed))
    out = lab_fg.clone()
    for k in range(1, int(lab_fg.max()) + 1 if lab_fg.numel() else 1):
        obj = lab_fg == k
        idx = torch.nonzero(obj).reshape(-1)
        if idx.numel() == 0:
            continue
        pick = rng.choice(idx.numel(), size=min(m, idx.numel()), replace=False)
        anchors = g_points[idx[torch.from_numpy(np.sort(pick)).to(idx.device)]]  # (M, E)
        balls = torch.cdist(anchors, g_points) < dv  # (M, P)
        inter = (balls & obj[None]).sum(1).double()
        union = (balls | obj[None]).sum(1).double()
        if float(torch.quantile(inter / union, 0.5)) <= t:  # the median (mean of the two middles)
            out[obj] = 0
    return finish(out, keep, f_embeddings, f.device, background=False, min_size=min_px)


__all__ = ["consistency_clustering"]
