"""A momentum (exponential moving average) copy of a network, kept by a task as state.

SPOCO's g-network (Wolny et al., 2022, Eq. 7; method notes section 3) and mean-teacher style
methods keep ``g`` beside the trained network ``f``: ``theta_g <- m theta_g + (1 - m) theta_f``
after every optimizer step, ``m = 0.999`` by default. ``g`` receives no gradients, is never
updated during evaluation (only :meth:`MomentumNetwork.update` changes it, which a task calls in
:meth:`~unetkit.tasks.Task.after_step`), always runs in eval mode, and is saved in every
checkpoint through the task's ``state_dict`` so a resumed run continues it bitwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from unetkit.errors import ConfigError


class MomentumNetwork(nn.Module):
    """EMA copy ``g`` of a network ``f``.

    Args:
        model: the trained network f; copied (parameters and buffers) at construction.
        momentum: m in [0, 1): weight of g's previous parameters in each update.

    Floating-point parameters and buffers follow the EMA; integer buffers (e.g. batch norm's
    ``num_batches_tracked``) are copied from f. ``forward(x)`` runs g in eval mode without
    gradients: ``(N, C_in, *S)`` -> f's output layout.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.net = copy.deepcopy(model).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> MomentumNetwork:
        """g stays in eval mode whatever the caller asks (its statistics only come from f)."""
        super().train(False)
        return self

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``theta_g <- m theta_g + (1 - m) theta_f`` for every float tensor; copy the others."""
        own = self.net.state_dict()
        for name, value in model.state_dict().items():
            target = own[name]
            if target.is_floating_point():
                target.mul_(self.momentum).add_(value.detach(), alpha=1 - self.momentum)
            else:
                target.copy_(value)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.net.load_state_dict(state, strict=strict, assign=assign)
