"""SPOCO losses: sparse object-level supervision of pixel embeddings (Wolny et al., CVPR 2022).

Formulas and defaults follow ``shared/notes/method-notes.md`` section 3 ("SPOCO"); equation
numbers are the paper's (``shared/papers/spoco-sparse-object-supervision.txt``).

Tensors: embeddings ``(N, E, *S)`` (batch, embedding channels, spatial axes ``(Y, X)`` or
``(Z, Y, X)``); instance labels ``(N, *S)`` integer.

Label convention (one image; ids need not be consecutive):

* ``unlabelled`` (default 0): pixels of the unlabelled region U (background and unlabelled
  objects in the positive-unlabelled setting SPOCO@p). They never form a cluster or an object;
  they enter only L_U-push and L_U-con. ``unlabelled=None``: there is no unlabelled region.
* ``background`` (default None): the id of a *labelled* background (full supervision, where the
  background is annotated; e.g. ``background=0, unlabelled=None`` for dense labels with 0 =
  background). It is one more cluster in pull/push/regulariser and one more labelled mean in
  L_U-push, is not part of U, and is not an object of L_obj (as the authors' code, which
  leaves the background out of the instance term).
* ``ignore_index`` (default -1): pixels left out of every term.
* every other id (>= 0) is a labelled object: a cluster and an object of L_obj.

Terms, per image (then averaged over the batch; an image without the needed objects or
pixels contributes 0 and still counts in the mean, never NaN):

* Instance selection (Eq. 3): ``phi(e, a) = exp(-||e - a||^2 / (2 sigma^2))`` with
  ``2 sigma^2 = -delta_v^2 / ln t``, so ``phi = t`` at distance ``delta_v`` (t = 0.9).
* ``pull``, ``push``, ``reg`` (Eq. 1-2): the discriminative loss of
  :mod:`unetkit.losses.discriminative` over the labelled clusters only (the "hat" of
  L_SO-hat in Eq. 8): push margin ``2 delta_d``, mean over ordered pairs of distinct clusters.
* ``obj`` = L_obj (Eq. 4): for each labelled object k an anchor ``a_k`` (a random pixel of
  the object by default), soft mask ``S_k = phi(e, a_k)``, and
  ``D(S_k, I_k) = 1 - 2 sum(S_k I_k) / (sum S_k^2 + sum I_k^2)``; mean over objects. The sums
  run over ``obj_region``: ``"labelled"`` (default: the labelled pixels, so unlabelled pixels,
  whose membership is not annotated, do not enter) or ``"image"`` (all non-ignored pixels).
  ``obj_loss="bce"``: mean binary cross-entropy of ``S_k`` against ``I_k`` instead.
* ``u_push`` = L_U-push (Eq. 6): ``1/C sum_k 1/N_U sum_{i in U} [delta_d - ||mu_k - e_i||]_+^2``
  over the C labelled clusters (margin ``delta_d``, not ``2 delta_d``).
* ``u_con`` = L_U-con (Eq. 7): anchors drawn in turn from the still uncovered part of the
  consistency region; for each, ``S^f = phi(f, f(x_a))`` and ``S^g = phi(g, g(x_a))`` with g
  detached, loss ``D(S^f, S^g)``; the pixels within ``delta_v`` of the anchor in f- or
  g-space are then covered. Stop after ``max_anchors`` (20) anchors or once less than
  ``min_uncovered`` (5 %) of the region is uncovered; mean over the anchors. The Dice sums run
  over the region: U (default) or all non-ignored pixels (``con_region="image"``).
* Total, L_SSO (Eq. 5 and 8): ``alpha pull + beta push + reg_weight reg + obj_weight obj +
  u_push_weight u_push + u_con_weight u_con`` (alpha = beta = lambda = gamma = delta = 1,
  regulariser weight 0.001, delta_v = 0.5, delta_d = 2.0).

Randomness (anchors) comes from the ``generator`` argument, or the global torch RNG when it is
None, so a seeded generator makes the loss reproducible.

The optional adversarial term (WGAN-GP critic on the masks of :func:`object_masks`) is in
:mod:`unetkit.losses.wgan`.
"""

from __future__ import annotations

import inspect
import math
from typing import Literal

import torch
from torch import Tensor, nn

from unetkit.errors import InputError
from unetkit.losses.discriminative import _check_inputs, _image_terms, cluster_means

Anchor = Literal["random", "near_mean", "mean"]
ObjLoss = Literal["dice", "bce"]
Region = Literal["labelled", "image"]
ConRegion = Literal["unlabelled", "image"]


def kernel_scale(delta_v: float, t: float) -> float:
    """``2 sigma^2 = -delta_v^2 / ln t`` (Eq. 3): the kernel is ``t`` at distance ``delta_v``."""
    if not 0.0 < t < 1.0:
        raise InputError(f"t={t!r} must lie in (0, 1)")
    if not delta_v > 0:
        raise InputError(f"delta_v={delta_v!r} must be > 0 for the instance-selection kernel")
    return -(delta_v ** 2) / math.log(t)


def _sq_dist(points: Tensor, anchors: Tensor) -> Tensor:
    """Squared distances ``(K, P)`` between ``anchors`` (K, E) and ``points`` (P, E)."""
    d2 = (points * points).sum(1)[None, :] + (anchors * anchors).sum(1)[:, None] - 2.0 * anchors @ points.t()
    return d2.clamp(min=0.0)


def soft_masks(embeddings: Tensor, anchors: Tensor, *, delta_v: float = 0.5, t: float = 0.9) -> Tensor:
    """Differentiable instance selection (Eq. 3): ``exp(-||e(x) - a_k||^2 / (2 sigma^2))``.

    Args:
        embeddings: ``(E, *S)`` one image's embeddings.
        anchors: ``(K, E)`` anchor embeddings.

    Returns:
        ``(K, *S)`` soft masks in (0, 1], equal to ``t`` at distance ``delta_v`` from the anchor.
    """
    if anchors.dim() != 2 or anchors.shape[1] != embeddings.shape[0]:
        raise InputError(f"anchors {tuple(anchors.shape)} must be (K, E) with E = {embeddings.shape[0]}")
    points = embeddings.reshape(embeddings.shape[0], -1).t()
    masks = torch.exp(-_sq_dist(points, anchors) / kernel_scale(delta_v, t))
    return masks.reshape(anchors.shape[0], *embeddings.shape[1:])


def _uniform(n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``n`` uniform numbers from ``generator`` (or the global RNG) on ``like``'s device."""
    if generator is None:
        return torch.rand(n, device=like.device)
    return torch.rand(n, generator=generator, device=generator.device).to(like.device)


def _per_cluster_argmax(score: Tensor, inverse: Tensor, n_clusters: int) -> Tensor:
    """Index (into ``score``) of the highest score of each cluster (the first one on ties)."""
    best = torch.full((n_clusters,), -math.inf, dtype=score.dtype, device=score.device)
    best = best.scatter_reduce(0, inverse, score, reduce="amax")
    idx = torch.arange(score.numel(), device=score.device)
    cand = torch.where(score == best[inverse], idx, torch.full_like(idx, score.numel()))
    first = torch.full((n_clusters,), score.numel(), dtype=idx.dtype, device=idx.device)
    return first.scatter_reduce(0, inverse, cand, reduce="amin")


def select_anchors(
    points: Tensor, inverse: Tensor, means: Tensor, *, mode: Anchor = "random", delta_v: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Anchor embeddings ``(C, E)`` of C objects.

    Args:
        points: ``(P, E)`` embeddings of the objects' pixels.
        inverse: ``(P,)`` object index in ``0..C-1`` of each pixel.
        means: ``(C, E)`` object mean embeddings.
        mode: ``"random"``: a uniformly random pixel of each object (the paper; default);
            ``"near_mean"``: a random pixel within ``delta_v`` of the object's mean, or the pixel
            nearest to the mean when none is (the authors' 2021 code); ``"mean"``: the mean.
        generator: source of the random draws (global torch RNG when None).

    The anchor is the selected pixel's embedding itself, so gradients flow through it.
    """
    if mode == "mean":
        return means
    r = _uniform(points.shape[0], generator, points).to(points.dtype)
    if mode == "random":
        score = r
    elif mode == "near_mean":
        dist = torch.linalg.vector_norm(points.detach() - means.detach()[inverse], dim=1)
        score = torch.where(dist <= delta_v, 1.0 + r, -dist)  # candidates first, else the nearest
    else:
        raise InputError(f"anchor={mode!r} must be 'random', 'near_mean' or 'mean'")
    return points[_per_cluster_argmax(score, inverse, means.shape[0])]


def _dice(p: Tensor, g: Tensor) -> Tensor:
    """Row-wise ``1 - 2 sum(p g) / (sum p^2 + sum g^2)`` of ``(K, P)`` tensors (Eq. 4)."""
    return 1.0 - 2.0 * (p * g).sum(1) / ((p * p).sum(1) + (g * g).sum(1))


class _Labels:
    """Masks of one image's flat labels ``(P,)`` under the label convention."""

    def __init__(self, lab: Tensor, *, unlabelled: int | None, background: int | None,
                 ignore_index: int | None) -> None:
        valid = torch.ones_like(lab, dtype=torch.bool) if ignore_index is None else lab != ignore_index
        self.valid = valid
        self.unlab = valid & (lab == unlabelled) if unlabelled is not None else torch.zeros_like(valid)
        self.clustered = valid & ~self.unlab  # labelled clusters: objects and labelled background
        self.obj = self.clustered & (lab != background) if background is not None else self.clustered
        if bool((lab[self.clustered] < 0).any()):
            raise InputError(
                f"labelled ids must be >= 0 (unlabelled={unlabelled}, ignore_index={ignore_index}); "
                f"found {int(lab[self.clustered].min())}"
            )


def _check(embeddings: Tensor, instances: Tensor, unlabelled: int | None, background: int | None,
           params: dict[str, float]) -> None:
    _check_inputs(embeddings, instances, "instance", params)
    if unlabelled is not None and unlabelled == background:
        raise InputError(f"unlabelled={unlabelled} and background={background} must differ")


def _flat(embeddings: Tensor, instances: Tensor) -> tuple[Tensor, Tensor]:
    n, e = embeddings.shape[:2]
    return embeddings.reshape(n, e, -1), instances.reshape(n, -1)


def _object_term(emb: Tensor, lab: Tensor, m: _Labels, *, delta_v: float, t: float, anchor: Anchor,
                 loss: ObjLoss, region: Region, generator: torch.Generator | None) -> Tensor | None:
    if not bool(m.obj.any()):
        return None
    points = emb[:, m.obj].t()
    ids, inverse, _, means = cluster_means(points, lab[m.obj])
    anchors = select_anchors(points, inverse, means, mode=anchor, delta_v=delta_v, generator=generator)
    keep = m.clustered if region == "labelled" else m.valid
    masks = torch.exp(-_sq_dist(emb[:, keep].t(), anchors) / kernel_scale(delta_v, t))  # (C, P_r)
    target = (lab[keep][None, :] == ids[:, None]).to(masks.dtype)
    if loss == "dice":
        return _dice(masks, target).mean()
    eps = torch.finfo(masks.dtype).eps
    return nn.functional.binary_cross_entropy(masks.clamp(eps, 1.0 - eps), target)


def object_masks(
    embeddings: Tensor,
    instances: Tensor,
    *,
    delta_v: float = 0.5,
    t: float = 0.9,
    anchor: Anchor = "random",
    unlabelled: int | None = 0,
    background: int | None = None,
    ignore_index: int | None = -1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Single-object masks of every labelled object of the batch (e.g. for a mask critic).

    Args:
        embeddings: ``(N, E, *S)``; instances: ``(N, *S)`` (label convention in the module docstring).

    Returns:
        ``(soft, real)``, both ``(K, 1, *S)`` with K the number of labelled objects in the batch
        (image by image, ids ascending): the soft masks ``phi(e, a_k)`` (Eq. 3) over the whole
        image (differentiable) and the float ground-truth masks.
    """
    _check(embeddings, instances, unlabelled, background, {"delta_v": delta_v})
    emb, lab = _flat(embeddings, instances)
    scale = kernel_scale(delta_v, t)
    soft, real = [], []
    for b in range(emb.shape[0]):
        m = _Labels(lab[b], unlabelled=unlabelled, background=background, ignore_index=ignore_index)
        if not bool(m.obj.any()):
            continue
        points = emb[b][:, m.obj].t()
        ids, inverse, _, means = cluster_means(points, lab[b][m.obj])
        anchors = select_anchors(points, inverse, means, mode=anchor, delta_v=delta_v, generator=generator)
        soft.append(torch.exp(-_sq_dist(emb[b].t(), anchors) / scale))
        real.append(((lab[b][None, :] == ids[:, None]) & m.obj[None, :]).to(emb.dtype))
    shape = (-1, 1, *embeddings.shape[2:])
    if not soft:
        empty = embeddings.new_zeros((0, 1, *embeddings.shape[2:]))
        return empty + embeddings.sum() * 0.0, empty
    return torch.cat(soft).reshape(shape), torch.cat(real).reshape(shape)


def object_loss(
    embeddings: Tensor,
    instances: Tensor,
    *,
    delta_v: float = 0.5,
    t: float = 0.9,
    anchor: Anchor = "random",
    loss: ObjLoss = "dice",
    region: Region = "labelled",
    unlabelled: int | None = 0,
    background: int | None = None,
    ignore_index: int | None = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """L_obj (Eq. 4, notes section 3): per-object loss of the soft mask (Eq. 3) around an anchor.

    Args:
        embeddings: ``(N, E, *S)`` floating point.
        instances: ``(N, *S)`` integer ids (label convention in the module docstring).
        delta_v, t: kernel: value ``t`` at distance ``delta_v`` from the anchor.
        anchor: ``"random"`` (default), ``"near_mean"`` or ``"mean"`` (see :func:`select_anchors`).
        loss: ``"dice"`` (default) or ``"bce"``.
        region: pixels the per-object loss runs over: ``"labelled"`` (default) or ``"image"``.
        generator: random anchors are drawn from it (global torch RNG when None).

    Returns:
        Scalar: mean over each image's objects, then over the batch (0 for an image without objects).
    """
    _check(embeddings, instances, unlabelled, background, {"delta_v": delta_v})
    if loss not in ("dice", "bce"):
        raise InputError(f"loss={loss!r} must be 'dice' or 'bce'")
    if region not in ("labelled", "image"):
        raise InputError(f"region={region!r} must be 'labelled' or 'image'")
    emb, lab = _flat(embeddings, instances)
    total = embeddings.sum() * 0.0
    for b in range(emb.shape[0]):
        m = _Labels(lab[b], unlabelled=unlabelled, background=background, ignore_index=ignore_index)
        term = _object_term(emb[b], lab[b], m, delta_v=delta_v, t=t, anchor=anchor, loss=loss,
                            region=region, generator=generator)
        if term is not None:
            total = total + term
    return total / emb.shape[0]


def _u_push_term(emb: Tensor, lab: Tensor, m: _Labels, *, delta_d: float) -> Tensor | None:
    if not bool(m.clustered.any()) or not bool(m.unlab.any()):
        return None
    _, _, _, means = cluster_means(emb[:, m.clustered].t(), lab[m.clustered])  # (C, E)
    d2 = _sq_dist(emb[:, m.unlab].t(), means)  # (C, N_U)
    # sqrt of a clamped square: a zero distance gives a zero gradient, not NaN
    dist = torch.sqrt(d2.clamp(min=torch.finfo(d2.dtype).tiny))
    return (torch.clamp(delta_d - dist, min=0.0) ** 2).mean(1).mean()


def unlabelled_push_loss(
    embeddings: Tensor,
    instances: Tensor,
    *,
    delta_d: float = 2.0,
    unlabelled: int | None = 0,
    background: int | None = None,
    ignore_index: int | None = -1,
) -> Tensor:
    """L_U-push (Eq. 6): ``1/C sum_k 1/N_U sum_{i in U} [delta_d - ||mu_k - e_i||]_+^2``.

    ``mu_k`` are the means of the C labelled clusters (objects and a labelled ``background``),
    U the ``unlabelled`` pixels. Shapes as in :func:`object_loss`; batch mean of the per-image
    values (0 for an image without clusters or without unlabelled pixels).
    """
    _check(embeddings, instances, unlabelled, background, {"delta_d": delta_d})
    emb, lab = _flat(embeddings, instances)
    total = embeddings.sum() * 0.0
    for b in range(emb.shape[0]):
        m = _Labels(lab[b], unlabelled=unlabelled, background=background, ignore_index=ignore_index)
        term = _u_push_term(emb[b], lab[b], m, delta_d=delta_d)
        if term is not None:
            total = total + term
    return total / emb.shape[0]


def _u_con_term(f: Tensor, g: Tensor, region: Tensor, *, delta_v: float, t: float, max_anchors: int,
                min_uncovered: float, generator: torch.Generator | None) -> Tensor | None:
    n_region = int(region.sum())
    if n_region == 0 or max_anchors < 1:
        return None
    fp = f[:, region].t()  # (P_r, E)
    gp = g[:, region].t().detach()
    scale = kernel_scale(delta_v, t)
    uncovered = torch.ones(n_region, dtype=torch.bool, device=f.device)
    losses = []
    while len(losses) < max_anchors and int(uncovered.sum()) >= min_uncovered * n_region \
            and bool(uncovered.any()):
        r = _uniform(n_region, generator, fp)
        a = int(torch.where(uncovered, r, torch.full_like(r, -1.0)).argmax())
        d2f = _sq_dist(fp, fp[a:a + 1])  # (1, P_r)
        d2g = _sq_dist(gp, gp[a:a + 1])
        losses.append(_dice(torch.exp(-d2f / scale), torch.exp(-d2g / scale))[0])
        near = (d2f[0].detach() <= delta_v ** 2) | (d2g[0] <= delta_v ** 2)
        near[a] = True
        uncovered &= ~near
    return torch.stack(losses).mean()


def consistency_loss(
    f_embeddings: Tensor,
    g_embeddings: Tensor,
    instances: Tensor,
    *,
    delta_v: float = 0.5,
    t: float = 0.9,
    max_anchors: int = 20,
    min_uncovered: float = 0.05,
    region: ConRegion = "unlabelled",
    unlabelled: int | None = 0,
    background: int | None = None,
    ignore_index: int | None = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """L_U-con (Eq. 7): Dice between soft masks in f- and g-space around shared anchor pixels.

    Args:
        f_embeddings: ``(N, E, *S)`` output of the trained network f on view t(x).
        g_embeddings: ``(N, E, *S)`` output of the momentum network g on view t'(x); detached
            here (g is the target and never receives a gradient).
        instances: ``(N, *S)`` ids; the region is the ``unlabelled`` pixels (``region=
            "unlabelled"``, default) or every non-ignored pixel (``"image"``).
        max_anchors: at most this many anchors per image (20, the authors' code).
        min_uncovered: stop once less than this fraction of the region is uncovered (5 %).
        generator: anchors are drawn from it (global torch RNG when None).

    Returns:
        Scalar: mean over anchors, then over the batch (0 for an image with an empty region).
    """
    _check(f_embeddings, instances, unlabelled, background, {"delta_v": delta_v})
    if g_embeddings.shape != f_embeddings.shape:
        raise InputError(f"g_embeddings {tuple(g_embeddings.shape)} must match f_embeddings "
                         f"{tuple(f_embeddings.shape)}")
    if region not in ("unlabelled", "image"):
        raise InputError(f"region={region!r} must be 'unlabelled' or 'image'")
    f, lab = _flat(f_embeddings, instances)
    g = g_embeddings.detach().reshape(f.shape).to(f.dtype)
    total = f_embeddings.sum() * 0.0
    for b in range(f.shape[0]):
        m = _Labels(lab[b], unlabelled=unlabelled, background=background, ignore_index=ignore_index)
        term = _u_con_term(f[b], g[b], m.unlab if region == "unlabelled" else m.valid, delta_v=delta_v, t=t,
                           max_anchors=max_anchors, min_uncovered=min_uncovered, generator=generator)
        if term is not None:
            total = total + term
    return total / f.shape[0]


def spoco_loss(
    embeddings: Tensor,
    instances: Tensor,
    g_embeddings: Tensor | None = None,
    *,
    delta_v: float = 0.5,
    delta_d: float = 2.0,
    t: float = 0.9,
    alpha: float = 1.0,
    beta: float = 1.0,
    reg_weight: float = 0.001,
    obj_weight: float = 1.0,
    u_push_weight: float = 1.0,
    u_con_weight: float = 1.0,
    anchor: Anchor = "random",
    obj_loss: ObjLoss = "dice",
    obj_region: Region = "labelled",
    con_region: ConRegion = "unlabelled",
    max_anchors: int = 20,
    min_uncovered: float = 0.05,
    unlabelled: int | None = 0,
    background: int | None = None,
    ignore_index: int | None = -1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_SSO (Eq. 8) = L_SO-hat (Eq. 5 on the labelled clusters) + gamma L_U-push + delta L_U-con.

    Args:
        embeddings: ``(N, E, *S)`` output of f.
        instances: ``(N, *S)`` integer ids (label convention in the module docstring).
        g_embeddings: ``(N, E, *S)`` output of the momentum network g on the second view, or
            None (then ``u_con`` is 0; e.g. for validation).
        alpha, beta, reg_weight, obj_weight, u_push_weight, u_con_weight: weights of
            pull, push, regulariser, L_obj (lambda), L_U-push (gamma), L_U-con (delta).
        Other arguments: see :func:`object_loss`, :func:`unlabelled_push_loss`,
        :func:`consistency_loss`.

    Returns:
        ``(loss, parts)`` with unweighted batch means ``parts = {"pull", "push", "reg", "obj",
        "u_push", "u_con"}``. Terms with a zero weight are not computed (reported as 0).
    """
    _check(embeddings, instances, unlabelled, background,
           {"delta_v": delta_v, "delta_d": delta_d, "alpha": alpha, "beta": beta, "reg_weight": reg_weight,
            "obj_weight": obj_weight, "u_push_weight": u_push_weight, "u_con_weight": u_con_weight})
    for name, value in (("anchor", anchor), ("obj_loss", obj_loss), ("obj_region", obj_region),
                        ("con_region", con_region)):
        allowed = {"anchor": Anchor, "obj_loss": ObjLoss, "obj_region": Region, "con_region": ConRegion}[name]
        if value not in allowed.__args__:  # type: ignore[attr-defined]
            raise InputError(f"{name}={value!r} must be one of {allowed.__args__}")  # type: ignore[attr-defined]
    emb, lab = _flat(embeddings, instances)
    n = emb.shape[0]
    zero = embeddings.sum() * 0.0
    sums = dict.fromkeys(("pull", "push", "reg", "obj", "u_push", "u_con"), zero)
    if g_embeddings is not None and u_con_weight > 0:
        if g_embeddings.shape != embeddings.shape:
            raise InputError(f"g_embeddings {tuple(g_embeddings.shape)} must match embeddings "
                             f"{tuple(embeddings.shape)}")
        g = g_embeddings.detach().reshape(emb.shape).to(emb.dtype)
    else:
        g = None
    for b in range(n):
        m = _Labels(lab[b], unlabelled=unlabelled, background=background, ignore_index=ignore_index)
        # L_SO-hat: discriminative terms over the labelled clusters only
        so_lab = torch.where(m.clustered, lab[b], torch.full_like(lab[b], -1))
        terms = _image_terms(emb[b], so_lab, delta_v=delta_v, delta_d=delta_d, background="instance",
                             ignore_index=-1)
        if terms is not None:
            for key, value in zip(("pull", "push", "reg"), terms):
                sums[key] = sums[key] + value
        found = {
            "obj": _object_term(emb[b], lab[b], m, delta_v=delta_v, t=t, anchor=anchor, loss=obj_loss,
                                region=obj_region, generator=generator) if obj_weight > 0 else None,
            "u_push": _u_push_term(emb[b], lab[b], m, delta_d=delta_d) if u_push_weight > 0 else None,
            "u_con": _u_con_term(emb[b], g[b], m.unlab if con_region == "unlabelled" else m.valid,
                                 delta_v=delta_v, t=t, max_anchors=max_anchors, min_uncovered=min_uncovered,
                                 generator=generator) if g is not None else None,
        }
        for key, value in found.items():
            if value is not None:
                sums[key] = sums[key] + value
    parts = {key: value / n for key, value in sums.items()}
    loss = (alpha * parts["pull"] + beta * parts["push"] + reg_weight * parts["reg"]
            + obj_weight * parts["obj"] + u_push_weight * parts["u_push"] + u_con_weight * parts["u_con"])
    return loss, parts


def _option_defaults() -> dict[str, object]:
    """The keyword options of :func:`spoco_loss` (all but ``generator``) with their defaults."""
    params = inspect.signature(spoco_loss).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name != "generator"}


class SPOCOLoss(nn.Module):
    """Module twin of :func:`spoco_loss` (L_SSO, Eq. 8, defaults of the notes section 3).

    Takes the keyword options of :func:`spoco_loss` (same names and defaults; an unknown name
    is an ``InputError``). ``forward(embeddings, instances, g_embeddings=None, generator=None)``
    returns the weighted total; :meth:`components` the ``(loss, parts)`` pair. ``generator``
    given at construction is used when a call passes none (global torch RNG when both are None).
    ``options`` holds every option, defaults filled in.
    """

    def __init__(self, *, generator: torch.Generator | None = None, **options: object) -> None:
        super().__init__()
        defaults = _option_defaults()
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise InputError(f"unknown SPOCO loss option(s) {', '.join(unknown)}; valid: {', '.join(defaults)}")
        self.options = {**defaults, **options}
        kernel_scale(float(self.options["delta_v"]), float(self.options["t"]))  # validates t and delta_v early
        self.generator = generator

    def components(self, embeddings: Tensor, instances: Tensor, g_embeddings: Tensor | None = None,
                   generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, {"pull", "push", "reg", "obj", "u_push", "u_con"})``; shapes as :func:`spoco_loss`."""
        return spoco_loss(embeddings, instances, g_embeddings,
                          generator=generator if generator is not None else self.generator, **self.options)

    def forward(self, embeddings: Tensor, instances: Tensor, g_embeddings: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        return self.components(embeddings, instances, g_embeddings, generator)[0]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


__all__ = [
    "SPOCOLoss", "consistency_loss", "kernel_scale", "object_loss", "object_masks", "select_anchors", "soft_masks",
    "spoco_loss", "unlabelled_push_loss",
]
