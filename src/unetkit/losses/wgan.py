"""WGAN-GP critic on single-object masks: SPOCO's optional adversarial term (paper appendix A.1,
Eq. 9-11; notes section 3 "Optional adversarial term").

The embedding network is the generator of soft object masks (:func:`unetkit.losses.spoco.
object_masks`); a critic D learns to tell them from ground-truth object masks:

    critic loss    V_D = E[D(fake)] - E[D(real)] + gp_weight E[(||grad D(x_hat)|| - 1)^2]   (Eq. 10)
    generator term L_wgan = -E[D(fake)]                                                    (Eq. 11)

with ``x_hat = eps real + (1 - eps) fake``, ``eps ~ U(0, 1)`` per mask, and the embedding
network's objective ``L_SO (or L_SSO) + weight * L_wgan``. Defaults (notes): gradient-penalty
weight 10, generator-term weight 0.1, Adam(lr 1e-4, betas (0.5, 0.9)), 5 critic steps per
generator step, the generator term enabled after ``warmup`` steps.

Masks are ``(K, 1, *S)``: K single-object masks of one channel, ``*S`` = ``(Y, X)`` or
``(Z, Y, X)``. Deviation from the paper's Ovules critic (Table 9, fixed 64^3 crops, dense
layer on the flattened features): :class:`MaskCritic` ends in global average pooling, so it
takes masks of any size (whole images here; cropping around objects is left to the caller).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from unetkit.errors import InputError


class MaskCritic(nn.Module):
    """WGAN critic for ``(K, 1, *S)`` masks (paper Table 9, without normalisation).

    One block per entry of ``features``: two 3x3(x3) convolutions with leaky ReLU (slope 0.01),
    then 2x max pooling between blocks; global average pooling and a linear layer to one score
    per mask, shape ``(K,)``.
    """

    def __init__(self, ndim: int = 2, features: Sequence[int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise InputError(f"ndim={ndim!r} must be 2 or 3")
        if not features:
            raise InputError("features must name at least one block")
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        pool = nn.MaxPool2d if ndim == 2 else nn.MaxPool3d
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(features):
            if i > 0:
                layers.append(pool(2, ceil_mode=True))
            layers += [conv(c_in, c, 3, padding=1), nn.LeakyReLU(0.01), conv(c, c, 3, padding=1), nn.LeakyReLU(0.01)]
            c_in = c
        self.ndim = ndim
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, masks: Tensor) -> Tensor:
        if masks.dim() != self.ndim + 2 or masks.shape[1] != 1:
            raise InputError(f"masks must be (K, 1, *S) with {self.ndim} spatial axes, got {tuple(masks.shape)}")
        h = self.body(masks).flatten(2).mean(2)
        return self.head(h)[:, 0]


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """``E[(||grad D(x_hat)|| - 1)^2]`` on random interpolates of ``real`` and ``fake`` (K, 1, *S)."""
    k = real.shape[0]
    shape = (k,) + (1,) * (real.dim() - 1)
    if generator is None:
        eps = torch.rand(shape, device=real.device)
    else:
        eps = torch.rand(shape, generator=generator, device=generator.device).to(real.device)
    x_hat = (eps.to(real.dtype) * real + (1 - eps.to(real.dtype)) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, *, gp_weight: float = 10.0,
                generator: torch.Generator | None = None) -> Tensor:
    """V_D (Eq. 10). ``fake`` is detached: this loss trains only the critic."""
    if real.shape != fake.shape:
        raise InputError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} masks must have the same shape")
    fake = fake.detach()
    if real.shape[0] == 0:
        return sum((p.sum() * 0.0 for p in critic.parameters()), torch.zeros((), device=real.device))
    return (critic(fake).mean() - critic(real).mean()
            + gp_weight * gradient_penalty(critic, real, fake, generator))


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """L_wgan = -E[D(fake)] (Eq. 11); gradients reach ``fake`` (and the critic's parameters,
    which the caller's generator optimiser does not hold)."""
    if fake.shape[0] == 0:
        return fake.sum() * 0.0
    return -critic(fake).mean()


class WGANGPTerm(nn.Module):
    """The adversarial term with its critic, the critic's optimiser and the schedule.

    Per training step of the embedding network, call :meth:`step` with the step index and the
    ``(real, fake)`` masks of :func:`unetkit.losses.spoco.object_masks`: it takes one critic
    update on them and returns ``weight * L_wgan`` to add to the embedding loss every
    ``n_critic``-th step from ``warmup`` on (so 5 critic steps per generator step), else a
    zero with the graph of ``fake``. The returned term is built with the critic's parameters
    frozen, so its backward pass reaches only ``fake`` (the embedding network), never the critic.
    """

    def __init__(self, critic: nn.Module, *, weight: float = 0.1, gp_weight: float = 10.0, n_critic: int = 5,
                 warmup: int = 0, lr: float = 1e-4, betas: tuple[float, float] = (0.5, 0.9),
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n_critic < 1 or warmup < 0 or not weight >= 0 or not gp_weight >= 0:
            raise InputError(f"need n_critic >= 1, warmup >= 0, weights >= 0; got n_critic={n_critic}, "
                             f"warmup={warmup}, weight={weight}, gp_weight={gp_weight}")
        self.critic = critic
        self.weight = weight
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.warmup = warmup
        self.generator = generator
        self.optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)

    def critic_step(self, real: Tensor, fake: Tensor) -> Tensor:
        """One Adam update of the critic on V_D; returns V_D (detached)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = critic_loss(self.critic, real, fake, gp_weight=self.gp_weight, generator=self.generator)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def generator_active(self, step: int) -> bool:
        return step >= self.warmup and (step - self.warmup) % self.n_critic == 0

    def step(self, step: int, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """``(weighted generator term, critic loss)`` for training step ``step`` (see the class)."""
        critic_value = self.critic_step(real, fake)
        if self.weight > 0 and self.generator_active(step):
            for p in self.critic.parameters():
                p.requires_grad_(False)
            try:
                term = self.weight * generator_loss(self.critic, fake)
            finally:
                for p in self.critic.parameters():
                    p.requires_grad_(True)
            return term, critic_value
        return fake.sum() * 0.0, critic_value


__all__ = ["MaskCritic", "WGANGPTerm", "critic_loss", "generator_loss", "gradient_penalty"]
