"""WGAN-GP critic on single-object masks: penalty by hand, gradient routing, schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unetkit.errors import InputError
from unetkit.losses import MaskCritic, WGANGPTerm, critic_loss, generator_loss, gradient_penalty


class LinearCritic(nn.Module):
    """D(x) = sum(w * x): its gradient is w at every input."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_and_critic_loss_by_hand() -> None:
    w = torch.tensor([[[0.5, -1.0], [2.0, 0.0]]], dtype=torch.float64)  # (1, 2, 2); ||w|| = sqrt(5.25)
    critic = LinearCritic(w)
    real = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]], dtype=torch.float64).repeat(3, 1, 1, 1)
    fake = torch.full((3, 1, 2, 2), 0.5, dtype=torch.float64)
    gp = (5.25 ** 0.5 - 1) ** 2
    assert gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0)).item() == pytest.approx(gp)
    d_real, d_fake = 0.5 + 2.0 + 0.0, 0.5 * (0.5 - 1.0 + 2.0)
    got = critic_loss(critic, real, fake, gp_weight=10.0, generator=torch.Generator().manual_seed(0))
    assert got.item() == pytest.approx(d_fake - d_real + 10 * gp)
    assert generator_loss(critic, fake).item() == pytest.approx(-d_fake)


@pytest.mark.parametrize("ndim,shape", [(2, (3, 1, 9, 10)), (3, (2, 1, 5, 6, 7))])
def test_mask_critic_shapes(ndim: int, shape: tuple[int, ...]) -> None:
    critic = MaskCritic(ndim, features=(4, 8, 8))
    assert critic(torch.rand(shape)).shape == (shape[0],)
    with pytest.raises(InputError):
        critic(torch.rand(shape[0], 2, *shape[2:]))
    with pytest.raises(InputError):
        MaskCritic(4)


def test_gradients_reach_fake_only_through_the_generator_term() -> None:
    torch.manual_seed(0)
    critic = MaskCritic(2, features=(4, 8))
    real = (torch.rand(2, 1, 8, 8) > 0.5).float()
    fake = torch.rand(2, 1, 8, 8, requires_grad=True)
    critic_loss(critic, real, fake).backward()
    assert fake.grad is None
    assert all(p.grad is not None for p in critic.parameters())
    generator_loss(critic, fake).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_schedule_warmup_and_critic_updates() -> None:
    torch.manual_seed(1)
    critic = MaskCritic(2, features=(4,))
    term = WGANGPTerm(critic, weight=0.1, n_critic=2, warmup=3, generator=torch.Generator().manual_seed(0))
    real = (torch.rand(2, 1, 6, 6) > 0.5).float()
    active = []
    for step in range(8):
        fake = torch.rand(2, 1, 6, 6, requires_grad=True)
        before = [p.detach().clone() for p in critic.parameters()]
        value, critic_value = term.step(step, real, fake)
        assert torch.isfinite(critic_value)
        assert any(not torch.equal(b, p) for b, p in zip(before, critic.parameters()))  # one critic update
        value.backward()
        assert all(p.grad is None for p in critic.parameters())  # generator term never trains D
        active.append(value.item() != 0.0)
        if value.item() != 0.0:
            assert value.item() == pytest.approx(-0.1 * critic(fake.detach()).mean().item())
    assert active == [False, False, False, True, False, True, False, True]


def test_no_objects_gives_zero() -> None:
    critic = MaskCritic(2, features=(4,))
    empty = torch.zeros(0, 1, 5, 5)
    assert critic_loss(critic, empty, empty).item() == 0.0
    assert generator_loss(critic, empty).item() == 0.0
