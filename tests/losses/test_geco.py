"""GECO: moving average, straight-through constraint, both lambda rules, bitwise state."""

from __future__ import annotations

import math

import pytest
import torch

from unetkit.losses import GECO, flip_gradient


def _step(geco: GECO, opt: torch.optim.Optimizer | None, rec_value: float, n: float = 100.0) -> torch.Tensor:
    """One training step with a reconstruction term ``rec = rec_value * p`` (p = 1 a parameter)."""
    p = torch.ones((), requires_grad=True)
    rec = rec_value * p
    loss, _ = geco(rec, torch.tensor(0.0), n)
    if opt is not None:
        opt.zero_grad()
    loss.backward()
    if opt is not None:
        opt.step()
    geco.update()
    assert p.grad is not None
    return p.grad


def test_lambda_starts_at_lambda_init() -> None:
    assert GECO(0.05).lagrange_multiplier.item() == pytest.approx(1.0, rel=1e-6)
    assert GECO(0.05, lambda_init=3.0).lagrange_multiplier.item() == pytest.approx(3.0, rel=1e-6)
    assert GECO(0.05, update="multiplicative", lambda_init=2.0).lagrange_multiplier.item() == 2.0


@pytest.mark.parametrize(("rec", "direction"), [(20.0, 1), (1.0, -1)])  # threshold 0.05 * 100 = 5
@pytest.mark.parametrize("rule", ["ascent", "multiplicative"])
def test_lambda_goes_up_when_violated_and_down_when_satisfied(rule: str, rec: float, direction: int) -> None:
    geco = GECO(0.05, update=rule)  # type: ignore[arg-type]
    opt = torch.optim.Adam(geco.parameters(), lr=0.01) if rule == "ascent" else None
    before = geco.lagrange_multiplier.item()
    _step(geco, opt, rec)
    after = geco.lagrange_multiplier.item()
    assert (after - before) * direction > 0


def test_ascent_gradient_on_w_is_negated() -> None:
    geco = GECO(0.05)
    assert geco.w is not None
    _step(geco, None, 20.0)  # C = 15 > 0
    s = torch.nn.functional.softplus(geco.w.detach())
    usual = 15.0 * 2 * s * torch.sigmoid(geco.w.detach())  # d(lambda * C)/dw
    assert geco.w.grad is not None and torch.allclose(geco.w.grad, -usual)
    x = torch.tensor(2.0, requires_grad=True)
    (3 * flip_gradient(x)).backward()
    assert flip_gradient(x).item() == 2.0 and x.grad.item() == -3.0


def test_moving_average_follows_decay_and_constraint_is_straight_through() -> None:
    geco = GECO(0.05, decay=0.9)
    values = [10.0, 20.0, 5.0]
    ma = values[0]
    for i, v in enumerate(values):
        ma = v if i == 0 else 0.9 * ma + 0.1 * v
        p = torch.ones((), requires_grad=True)
        c = geco.constraint(v * p * 1.0, 100.0)
        assert geco.rec_ma.item() == pytest.approx(ma, rel=1e-6)
        assert c.item() == pytest.approx(ma - 5.0, rel=1e-6)  # forward: moving average - threshold
        c.backward()
        assert p.grad.item() == pytest.approx(v)  # backward: d(current value)/dp


def test_model_gradient_is_lambda_times_rec_gradient() -> None:
    geco = GECO(0.05, lambda_init=2.5)
    grad = _step(geco, None, 7.0)
    assert grad.item() == pytest.approx(2.5 * 7.0, rel=1e-5)


@pytest.mark.parametrize("rule", ["ascent", "multiplicative"])
def test_state_dict_round_trip_is_bitwise_and_in_place(rule: str) -> None:
    a = GECO(0.05, update=rule)  # type: ignore[arg-type]
    opt = torch.optim.Adam(a.parameters(), lr=0.1) if rule == "ascent" else None
    for v in (12.0, 3.0, 9.0):
        _step(a, opt, v)
    b = GECO(0.05, update=rule)  # type: ignore[arg-type]
    w_before = b.w
    b.load_state_dict(a.state_dict())
    assert b.w is w_before  # the optimizer's reference stays valid
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert math.isclose(b.lagrange_multiplier.item(), a.lagrange_multiplier.item())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="kappa"):
        GECO(0.0)
    with pytest.raises(ValueError, match="update"):
        GECO(0.05, update="sgd")  # type: ignore[arg-type]
