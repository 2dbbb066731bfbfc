"""GECO: a constraint on the reconstruction error with a Lagrange multiplier (Rezende & Viola 2018),
as HPU-Net trains it (method notes section 4).

``loss = lambda * C + KL`` with the constraint ``C = rec_ma - kappa * n``: ``rec_ma`` is the
exponential moving average (decay 0.99, initialised to the first value) of the reconstruction
term ``rec`` and ``n`` the number of loss pixels per image (the top-k selection's, batch mean),
so ``kappa`` is a per-pixel cross-entropy target. In the forward pass ``C`` has the moving
average's value, in the backward pass the gradient of the current value:
``C = C_cur + stopgrad(C_ma - C_cur)`` with ``C_cur = rec - kappa * n``.

Two rules for lambda:

* ``"ascent"`` (DeepMind's release, default): ``lambda = softplus(w)^2``, ``w`` an
  ``nn.Parameter`` initialised so that ``lambda = lambda_init``, updated by the SAME optimizer as
  the model. ``w`` enters the loss through :func:`flip_gradient` (identity forward, negated
  gradient backward), so the optimizer's descent step on the loss is an ascent step on
  ``lambda * C`` in ``w``: lambda grows while the constraint is violated (``C > 0``) and shrinks
  when it holds. Put :attr:`GECO.w` into the optimizer (:meth:`GECO.parameters`).
* ``"multiplicative"`` (the GECO paper's rule): lambda is a buffer, no parameter; after each
  optimizer step :meth:`GECO.update` sets ``lambda <- lambda * exp(rate * C_ma / n)``: the
  exponent uses the constraint per loss pixel (``rec_ma / n - kappa``, a mean cross-entropy
  excess in nats), so ``rate`` does not depend on the patch size; lambda is clamped to
  ``[1e-6, 1e6]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GECO", "flip_gradient"]

LAMBDA_MIN, LAMBDA_MAX = 1e-6, 1e6
"""Bounds of lambda under the multiplicative rule."""


class _FlipGradient(torch.autograd.Function):
    """Identity in the forward pass, gradient times -1 in the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def flip_gradient(x: Tensor) -> Tensor:
    """``x`` unchanged, but the gradient flowing back through it is negated (gradient ascent
    for whatever a descent optimizer does with it)."""
    return _FlipGradient.apply(x)


def _inverse_softplus_sqrt(lam: float) -> float:
    """``w`` with ``softplus(w)^2 = lam`` (lam > 0)."""
    s = math.sqrt(lam)
    return s + math.log(-math.expm1(-s))  # log(exp(s) - 1), stable


class GECO(nn.Module):
    """State and loss of the GECO constraint.

    Args:
        kappa: per-pixel reconstruction target (> 0); threshold = ``kappa * n`` per image.
        update: ``"ascent"`` or ``"multiplicative"`` (module docstring).
        decay: moving-average decay of ``rec`` in [0, 1).
        rate: ``alpha`` of the multiplicative rule (per-pixel constraint in the exponent).
        lambda_init: initial lambda (> 0).

    State (``state_dict``, restored bitwise and in place by ``load_state_dict``): ``w``
    (ascent) or ``lagmul`` (multiplicative), ``rec_ma`` (float32 scalar), ``initialised``
    (bool scalar), ``last_constraint`` (per-pixel ``C_ma / n`` of the latest :meth:`forward`).
    """

    def __init__(self, kappa: float = 0.05, *, update: Literal["ascent", "multiplicative"] = "ascent",
                 decay: float = 0.99, rate: float = 0.01, lambda_init: float = 1.0) -> None:
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"kappa must be > 0, got {kappa!r}")
        if update not in ("ascent", "multiplicative"):
            raise ValueError(f"update must be 'ascent' or 'multiplicative', got {update!r}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if not lambda_init > 0:
            raise ValueError(f"lambda_init must be > 0, got {lambda_init!r}")
        self.kappa, self.rule, self.decay, self.rate = float(kappa), update, float(decay), float(rate)
        if update == "ascent":
            self.w: nn.Parameter | None = nn.Parameter(torch.tensor(_inverse_softplus_sqrt(lambda_init)))
        else:
            self.w = None
            self.register_buffer("lagmul", torch.tensor(float(lambda_init)))
        self.register_buffer("rec_ma", torch.tensor(0.0))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("last_constraint", torch.tensor(0.0))

    @property
    def lagrange_multiplier(self) -> Tensor:
        """lambda as a scalar tensor (ascent: differentiable in ``w``, gradient NOT flipped)."""
        if self.w is not None:
            return F.softplus(self.w) ** 2
        return self.lagmul

    @torch.no_grad()
    def _update_average(self, rec: Tensor) -> Tensor:
        value = rec.detach().to(self.rec_ma.dtype)
        if bool(self.initialised):
            self.rec_ma.mul_(self.decay).add_(value, alpha=1.0 - self.decay)
        else:
            self.rec_ma.copy_(value)
            self.initialised.fill_(True)
        return self.rec_ma.clone()

    def constraint(self, rec: Tensor, n_pixels: Tensor | float) -> Tensor:
        """Update the moving average with ``rec`` and return ``C``: forward value
        ``rec_ma - kappa * n``, gradient that of ``rec - kappa * n``.

        Args:
            rec: scalar reconstruction term (summed over each image's loss pixels, batch mean).
            n_pixels: loss pixels per image (scalar; batch mean).
        """
        n = torch.as_tensor(n_pixels, dtype=rec.dtype, device=rec.device)
        threshold = self.kappa * n
        current = rec - threshold
        averaged = self._update_average(rec).to(rec.dtype) - threshold
        with torch.no_grad():
            self.last_constraint.copy_(averaged / n.clamp(min=1))
        return current + (averaged - current).detach()

    def forward(self, rec: Tensor, kl: Tensor, n_pixels: Tensor | float) -> tuple[Tensor, dict[str, float]]:
        """GECO loss ``lambda * C + kl`` (one call per training step: it advances the average).

        Args:
            rec: scalar reconstruction term.
            kl: scalar KL term (summed over scales, batch mean).
            n_pixels: loss pixels per image (scalar).

        Returns:
            the scalar loss and logged parts ``lambda``, ``rec_ma``, ``constraint`` (``C``).
        """
        c = self.constraint(rec, n_pixels)
        if self.w is not None:
            lam = F.softplus(flip_gradient(self.w)) ** 2
        else:
            lam = self.lagmul.detach()
        loss = lam.to(c.dtype) * c + kl
        return loss, {"lambda": float(lam.detach()), "rec_ma": float(self.rec_ma), "constraint": float(c.detach())}

    @torch.no_grad()
    def update(self) -> None:
        """Multiplicative rule after an optimizer step: ``lambda <- lambda * exp(rate * C_ma / n)``
        (clamped to [1e-6, 1e6]); does nothing under the ascent rule (the optimizer did it)."""
        if self.w is None:
            self.lagmul.mul_(torch.exp(self.rate * self.last_constraint)).clamp_(LAMBDA_MIN, LAMBDA_MAX)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Detached clones of the state tensors (parameters and buffers)."""
        return {k: v.detach().clone() for k, v in super().state_dict(*args, **kwargs).items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        """Copy ``state`` into the existing tensors in place (the optimizer keeps its reference to
        ``w``); ``assign`` is ignored."""
        return super().load_state_dict(state, strict=strict, assign=False)
