"""The momentum (EMA) copy of a network: the update rule, no gradients, eval mode, state."""

from __future__ import annotations

import pytest
import torch

from unetkit.errors import ConfigError
from unetkit.models import UNet
from unetkit.tasks.momentum import MomentumNetwork


def _net() -> UNet:
    torch.manual_seed(0)
    return UNet(1, 2, depth=1, base_features=3, norm="batch")


def test_update_is_the_ema_of_the_parameters() -> None:
    f = _net()
    g = MomentumNetwork(f, momentum=0.75)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with torch.no_grad():
        for p in f.parameters():
            p.add_(1.0)
    f.train()
    f(torch.randn(2, 1, 28, 28))  # moves f's running statistics and num_batches_tracked
    g.update(f)
    for name, value in f.state_dict().items():
        got = g.state_dict()[name]
        if value.is_floating_point():
            torch.testing.assert_close(got, 0.75 * before[name] + 0.25 * value, rtol=0, atol=1e-6)
        else:
            assert torch.equal(got, value)


def test_no_gradients_and_always_eval() -> None:
    f = _net()
    g = MomentumNetwork(f, momentum=0.9)
    g.train()
    assert not g.net.training and all(not p.requires_grad for p in g.parameters())
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    y = g(x)
    assert not y.requires_grad
    # f's training does not touch g until update() is called
    state = {k: v.clone() for k, v in g.state_dict().items()}
    opt = torch.optim.SGD(f.parameters(), lr=0.1)
    f(torch.randn(1, 1, 28, 28)).sum().backward()
    opt.step()
    assert all(torch.equal(state[k], v) for k, v in g.state_dict().items())
    assert all(p.grad is None for p in g.parameters())


def test_state_round_trip_and_bad_momentum() -> None:
    f = _net()
    g = MomentumNetwork(f, momentum=0.5)
    with torch.no_grad():
        for p in f.parameters():
            p.mul_(-1)
    g.update(f)
    h = MomentumNetwork(_net(), momentum=0.5)
    h.load_state_dict(g.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), h.state_dict().values()))
    for m in (1.0, -0.1):
        with pytest.raises(ConfigError, match="momentum must be in"):
            MomentumNetwork(f, momentum=m)
