"""Discriminative loss for instance segmentation by metric learning (De Brabandere et al., 2017).

A network predicts an E-dimensional embedding per pixel; the loss pulls the embeddings of
each instance towards their mean and pushes the means of different instances apart. Instances
are then recovered by clustering the embeddings (:func:`unetkit.clustering.mean_shift`).

For one image with clusters ``c = 1..C`` (the instance ids present), cluster means ``mu_c``
and embeddings ``e_i``::

    pull = 1/C sum_c 1/|c| sum_{i in c} [ ||mu_c - e_i|| - delta_v ]_+^2
    push = 1/(C (C-1)) sum_{c != c'} [ 2 delta_d - ||mu_c - mu_c'|| ]_+^2      (0 if C < 2)
    reg  = 1/C sum_c ||mu_c||
    loss = alpha * pull + beta * push + gamma * reg

The push margin is ``2 * delta_d`` (the "push hinge 2*delta_d" of the SPOCO notes): cluster
means are pushed until they are ``2 delta_d`` apart. The batch loss is the mean of the
per-image losses; an image without any cluster contributes 0 (and still counts in the mean).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from unetkit.errors import InputError

Background = Literal["instance", "ignore"]


def _check_inputs(embeddings: Tensor, instances: Tensor, background: str, params: dict[str, float]) -> None:
    if embeddings.dim() < 3:
        raise InputError(
            f"embeddings must be (N, E, *S) with at least one spatial axis, got shape {tuple(embeddings.shape)}"
        )
    if instances.dim() != embeddings.dim() - 1 or instances.shape[0] != embeddings.shape[0] \
            or instances.shape[1:] != embeddings.shape[2:]:
        raise InputError(
            f"instances {tuple(instances.shape)} must be (N, *S) matching embeddings {tuple(embeddings.shape)} "
            "= (N, E, *S)"
        )
    if instances.dtype.is_floating_point or instances.dtype.is_complex:
        raise InputError(f"instances must be an integer tensor, got dtype {instances.dtype}")
    if not embeddings.dtype.is_floating_point:
        raise InputError(f"embeddings must be a floating-point tensor, got dtype {embeddings.dtype}")
    if background not in ("instance", "ignore"):
        raise InputError(f"background={background!r} must be 'instance' or 'ignore'")
    for name, value in params.items():
        if not value >= 0:  # also catches NaN
            raise InputError(f"{name}={value!r} must be >= 0")


def cluster_means(points: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-cluster mean embeddings: ``points`` (P, E), ``labels`` (P,) integer ids.

    Returns ``(ids, inverse, counts, means)``: the sorted distinct ids (C,), each point's
    cluster index (P,), the cluster sizes (C,) in ``points.dtype`` and the means (C, E),
    computed with ``index_add`` (differentiable in ``points``).
    """
    ids, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    cnt = counts.to(points.dtype)
    sums = torch.zeros(ids.numel(), points.shape[1], dtype=points.dtype, device=points.device)
    return ids, inverse, cnt, sums.index_add(0, inverse, points) / cnt[:, None]


def _image_terms(
    emb: Tensor, lab: Tensor, *, delta_v: float, delta_d: float, background: str, ignore_index: int | None
) -> tuple[Tensor, Tensor, Tensor] | None:
    """``(pull, push, reg)`` of one image: ``emb`` (E, P), ``lab`` (P,); None without clusters."""
    keep = torch.ones_like(lab, dtype=torch.bool)
    if ignore_index is not None:
        keep &= lab != ignore_index
    if background == "ignore":
        keep &= lab != 0
    lab = lab[keep]
    if lab.numel() == 0:
        return None
    if int(lab.min()) < 0:
        raise InputError(
            f"instance ids must be >= 0 (or ignore_index={ignore_index}); found {int(lab.min())}"
        )
    points = emb[:, keep].t()  # (P', E)
    ids, inverse, cnt, means = cluster_means(points, lab)
    n_clusters = ids.numel()

    # pull: per-cluster mean of the squared hinge, then mean over clusters
    dist = torch.linalg.vector_norm(means[inverse] - points, dim=1)
    hinge = torch.clamp(dist - delta_v, min=0.0) ** 2
    per_cluster = torch.zeros(n_clusters, dtype=points.dtype, device=points.device).index_add(0, inverse, hinge)
    pull = (per_cluster / cnt).mean()

    # push: mean over ordered pairs c != c' (the matrix is symmetric, so unordered is the same)
    if n_clusters >= 2:
        pair = torch.linalg.vector_norm(means[:, None, :] - means[None, :, :], dim=-1)  # (C, C)
        hinge_pp = torch.clamp(2.0 * delta_d - pair, min=0.0) ** 2
        off = ~torch.eye(n_clusters, dtype=torch.bool, device=points.device)
        push = hinge_pp[off].mean()
    else:
        push = points.sum() * 0.0

    reg = torch.linalg.vector_norm(means, dim=1).mean()
    return pull, push, reg


def discriminative_loss(
    embeddings: Tensor,
    instances: Tensor,
    *,
    delta_v: float = 0.5,
    delta_d: float = 1.5,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 0.001,
    background: Background = "instance",
    ignore_index: int | None = -1,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discriminative loss of pixel embeddings (De Brabandere et al., 2017), batch-averaged.

    See the module docstring for the formulas. Cluster means are computed with
    ``index_add_`` on ids relabelled by ``torch.unique`` (no loop over pixels or clusters);
    the only Python loop is over the images of the batch.

    Args:
        embeddings: ``(N, E, *S)`` floating point, E embedding channels, ``*S`` spatial axes
            (``(Y, X)`` or ``(Z, Y, X)``; any number works).
        instances: ``(N, *S)`` integer instance ids; need not be consecutive. Label 0 is the
            background; ``ignore_index`` pixels are always left out.
        delta_v: pull hinge: embeddings within ``delta_v`` of their cluster mean are not pulled.
        delta_d: half the push margin: means closer than ``2 * delta_d`` are pushed apart.
        alpha, beta, gamma: weights of pull, push and the regulariser (mean norm of the means).
        background: ``"instance"``: background pixels (label 0) form one more cluster;
            ``"ignore"``: they are left out.
        ignore_index: label of pixels to leave out (e.g. outside the image), or None.

    Returns:
        ``(loss, parts)``: the scalar loss and ``{"pull", "push", "reg"}``, each a scalar
        tensor averaged over the batch the same way (unweighted).
    """
    _check_inputs(embeddings, instances, background,
                   {"delta_v": delta_v, "delta_d": delta_d, "alpha": alpha, "beta": beta, "gamma": gamma})
    n, e = embeddings.shape[:2]
    flat_emb = embeddings.reshape(n, e, -1)
    flat_lab = instances.reshape(n, -1)
    zero = embeddings.sum() * 0.0  # keeps the graph (and the dtype/device) when nothing contributes
    pull_sum, push_sum, reg_sum = zero, zero, zero
    for b in range(n):
        terms = _image_terms(flat_emb[b], flat_lab[b], delta_v=delta_v, delta_d=delta_d,
                             background=background, ignore_index=ignore_index)
        if terms is None:
            continue
        pull_sum = pull_sum + terms[0]
        push_sum = push_sum + terms[1]
        reg_sum = reg_sum + terms[2]
    parts = {"pull": pull_sum / n, "push": push_sum / n, "reg": reg_sum / n}
    loss = alpha * parts["pull"] + beta * parts["push"] + gamma * parts["reg"]
    return loss, parts


class DiscriminativeLoss(nn.Module):
    """Module twin of :func:`discriminative_loss`; ``forward`` returns the scalar loss and
    :meth:`components` the ``(loss, parts)`` pair."""

    def __init__(
        self,
        *,
        delta_v: float = 0.5,
        delta_d: float = 1.5,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 0.001,
        background: Background = "instance",
        ignore_index: int | None = -1,
    ) -> None:
        super().__init__()
        self.delta_v = delta_v
        self.delta_d = delta_d
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.background = background
        self.ignore_index = ignore_index

    def components(self, embeddings: Tensor, instances: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, {"pull", "push", "reg"})`` for ``(N, E, *S)`` embeddings and ``(N, *S)`` ids."""
        return discriminative_loss(
            embeddings, instances, delta_v=self.delta_v, delta_d=self.delta_d, alpha=self.alpha,
            beta=self.beta, gamma=self.gamma, background=self.background, ignore_index=self.ignore_index,
        )

    def forward(self, embeddings: Tensor, instances: Tensor) -> Tensor:
        return self.components(embeddings, instances)[0]

    def extra_repr(self) -> str:
        return (f"delta_v={self.delta_v}, delta_d={self.delta_d}, alpha={self.alpha}, beta={self.beta}, "
                f"gamma={self.gamma}, background={self.background!r}, ignore_index={self.ignore_index}")


__all__ = ["DiscriminativeLoss", "discriminative_loss"]
