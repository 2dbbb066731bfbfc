"""Soft Dice loss and CE + Dice: hand-computed values, ignore_index, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.losses import CEDiceLoss, DiceLoss, dice_loss

LN3 = math.log(3.0)


def _two_class_logits(z: torch.Tensor) -> torch.Tensor:
    """(N, 2, *S) logits with class-0 score 0 and class-1 score z, so p1 = sigmoid(z)."""
    return torch.stack([torch.zeros_like(z), z], dim=1)


# Foreground logits z give p1 = sigmoid(z) = [[0.5, 0.75], [0.25, 0.5]] on a 2x2 image.
Z = torch.tensor([[[0.0, LN3], [-LN3, 0.0]]], dtype=torch.float64)
T = torch.tensor([[[1, 1], [1, 0]]])


def test_two_class_hand_computed_foreground_only() -> None:
    # class 1: p = .5 .75 .25 .5, g = 1 1 1 0 -> inter 1.5, sum p 2, sum g 3 -> Dice 3 / 5.
    loss = dice_loss(_two_class_logits(Z), T, eps=0.0)
    assert loss.item() == pytest.approx(1 - 0.6, abs=1e-12)


def test_two_class_hand_computed_with_background() -> None:
    # class 0: p = .5 .25 .75 .5, g = 0 0 0 1 -> inter .5, sum p 2, sum g 1 -> Dice 1 / 3.
    loss = dice_loss(_two_class_logits(Z), T, include_background=True, eps=0.0)
    assert loss.item() == pytest.approx(1 - (0.6 + 1 / 3) / 2, abs=1e-12)
    assert DiceLoss(include_background=True)(_two_class_logits(Z), T).item() == pytest.approx(
        1 - (0.6 + 1 / 3) / 2, abs=1e-6
    )


def test_default_eps_is_negligible() -> None:
    assert dice_loss(_two_class_logits(Z), T).item() == pytest.approx(0.4, abs=1e-6)


def test_sigmoid_path_single_channel() -> None:
    """K = 1: the channel is a foreground logit, p = sigmoid(z); same numbers as the 2-class case."""
    logits = Z.unsqueeze(1)
    assert dice_loss(logits, T, eps=0.0).item() == pytest.approx(0.4, abs=1e-12)
    # include_background has no meaning with one channel
    assert dice_loss(logits, T, include_background=True, eps=0.0).item() == pytest.approx(0.4, abs=1e-12)
    # ignored pixel (bottom right, g = 0, p = .5) leaves inter 1.5, sum p 1.5, sum g 3 -> 3 / 4.5
    t = T.clone()
    t[0, 1, 1] = -1
    assert dice_loss(logits, t, eps=0.0).item() == pytest.approx(1 - 3 / 4.5, abs=1e-12)


def test_sigmoid_matches_two_class_softmax() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 2, (2, 5, 6), generator=g)
    t[0, :2] = -1
    assert torch.allclose(dice_loss(z.unsqueeze(1), t), dice_loss(_two_class_logits(z), t))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_perfect_and_worst_logits(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    t = torch.randint(0, k, (2, 7, 5), generator=g)
    t[0, 0, 0], t[1, 0, 0] = 1, k - 1  # every foreground class present at least once when k <= 3
    onehot = F.one_hot(t, k).movedim(-1, 1).double()
    perfect = dice_loss(40 * onehot, t, include_background=True)
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    wrong = F.one_hot((t + 1) % k, k).movedim(-1, 1).double()
    worst = dice_loss(40 * wrong, t, include_background=True)
    assert worst.item() == pytest.approx(1.0, abs=1e-6)


def test_absent_class_predicted_absent_counts_as_perfect() -> None:
    """A class absent from the target and (almost) never predicted has Dice ~ 1 (eps smoothing)."""
    t = torch.zeros(1, 4, 4, dtype=torch.long)
    t[0, :2] = 1  # class 2 absent
    logits = 30 * F.one_hot(t, 3).movedim(-1, 1).double()
    assert dice_loss(logits, t).item() == pytest.approx(0.0, abs=1e-6)


def test_rejects_mismatched_ranks() -> None:
    with pytest.raises(ValueError, match="one more axis"):
        dice_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long))


@pytest.mark.parametrize("k", [1, 3])
def test_ignored_pixels_have_no_effect(k: int) -> None:
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, max(k, 2), (2, 6, 5), generator=g)
    ignored = torch.rand(2, 6, 5, generator=g) < 0.3
    t[ignored] = -1
    logits = torch.randn(2, k, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    loss = dice_loss(logits, t)
    loss.backward()
    assert logits.grad is not None
    grad_at_ignored = logits.grad.movedim(1, -1)[ignored]
    assert torch.equal(grad_at_ignored, torch.zeros_like(grad_at_ignored))
    assert logits.grad.movedim(1, -1)[~ignored].abs().sum() > 0
    # Arbitrary new scores at ignored pixels: same loss.
    other = logits.detach().clone()
    noise = 100 * torch.randn(other.shape, generator=g, dtype=torch.float64)
    other = torch.where(ignored.unsqueeze(1), noise, other)
    assert dice_loss(other, t).item() == pytest.approx(loss.item(), abs=1e-12)
    # ... and the same as the loss on the valid pixels alone (one flattened image).
    valid = ~ignored
    flat_logits = logits.detach().movedim(1, -1)[valid].T.unsqueeze(0)  # (1, K, P)
    flat_t = t[valid].unsqueeze(0)
    assert dice_loss(flat_logits, flat_t).item() == pytest.approx(loss.item(), abs=1e-12)


def test_ignore_index_none_uses_every_pixel() -> None:
    t = T.clone()
    t[0, 1, 1] = 0
    a = dice_loss(_two_class_logits(Z), t, ignore_index=None)
    b = dice_loss(_two_class_logits(Z), t, ignore_index=-1)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    # a custom ignore value
    t2 = T.clone()
    t2[0, 1, 1] = 7
    c = dice_loss(_two_class_logits(Z), t2, ignore_index=7, eps=0.0)
    assert c.item() == pytest.approx(1 - 3 / 4.5, abs=1e-12)


@pytest.mark.parametrize(("k", "include_background"), [(1, False), (3, False), (3, True)])
def test_gradcheck(k: int, include_background: bool) -> None:
    g = torch.Generator().manual_seed(2)
    t = torch.randint(0, max(k, 2), (2, 2, 3), generator=g)
    t[0, 0, :2] = -1
    logits = torch.randn(2, k, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: dice_loss(x, t, include_background=include_background), (logits,), eps=1e-6, atol=1e-6
    )


def test_gradient_direction_raises_true_class_score() -> None:
    """One gradient-descent step on the logits lowers the loss."""
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 3, (1, 8, 8), generator=g)
    logits = torch.randn(1, 3, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    loss = dice_loss(logits, t)
    loss.backward()
    assert logits.grad is not None
    stepped = dice_loss(logits.detach() - 1.0 * logits.grad, t)
    assert stepped.item() < loss.item()


@settings(max_examples=20, deadline=None)
@given(
    k=st.integers(1, 4),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    shift=st.floats(-5, 5),
    seed=st.integers(0, 1000),
)
def test_range_and_softmax_shift_invariance(k: int, shape: tuple[int, int, int], shift: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(-1, max(k, 2), shape, generator=g)
    logits = torch.randn(shape[0], k, *shape[1:], generator=g, dtype=torch.float64)
    loss = dice_loss(logits, t)
    assert 0.0 <= loss.item() <= 1.0
    if k > 1:  # softmax is invariant to adding the same score to every class
        assert dice_loss(logits + shift, t).item() == pytest.approx(loss.item(), abs=1e-9)


# ----------------------------------------------------------------------------- CE + Dice


@pytest.mark.parametrize(("ce_weight", "dice_weight"), [(1.0, 1.0), (0.3, 2.0), (0.0, 1.0)])
def test_ce_dice_is_weighted_sum_multiclass(ce_weight: float, dice_weight: float) -> None:
    g = torch.Generator().manual_seed(4)
    t = torch.randint(0, 3, (2, 5, 6), generator=g)
    t[1, 2:4] = -1
    logits = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    loss = CEDiceLoss(ce_weight=ce_weight, dice_weight=dice_weight)(logits, t)
    expected = ce_weight * F.cross_entropy(logits, t, ignore_index=-1) + dice_weight * dice_loss(logits, t)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    parts = CEDiceLoss().components(logits, t)
    assert parts["ce"].item() == pytest.approx(F.cross_entropy(logits, t, ignore_index=-1).item(), abs=1e-12)
    assert parts["dice"].item() == pytest.approx(dice_loss(logits, t).item(), abs=1e-12)


def test_ce_dice_binary_single_logit() -> None:
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, 2, (2, 4, 4), generator=g)
    t[0, 0] = -1
    logits = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    valid = t != -1
    ce = F.binary_cross_entropy_with_logits(logits[:, 0][valid], t[valid].double())
    loss = CEDiceLoss(ce_weight=0.5, dice_weight=1.5)(logits, t)
    assert loss.item() == pytest.approx((0.5 * ce + 1.5 * dice_loss(logits, t)).item(), abs=1e-12)
    # the 1-logit BCE equals the 2-class CE with logits (0, z)
    two = F.cross_entropy(_two_class_logits(logits[:, 0]), t, ignore_index=-1)
    assert ce.item() == pytest.approx(two.item(), abs=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_all_ignored_target_is_finite_with_zero_gradient(k: int) -> None:
    logits = torch.randn(2, k, 4, 4, dtype=torch.float64, requires_grad=True)
    t = torch.full((2, 4, 4), -1)
    loss = CEDiceLoss()(logits, t)
    assert torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None
    assert torch.equal(logits.grad, torch.zeros_like(logits.grad))
    assert torch.isfinite(dice_loss(logits, t))


def test_ce_dice_ignored_pixels_get_zero_gradient() -> None:
    g = torch.Generator().manual_seed(6)
    t = torch.randint(0, 3, (1, 6, 6), generator=g)
    t[0, :, :2] = -1
    logits = torch.randn(1, 3, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    CEDiceLoss()(logits, t).backward()
    assert logits.grad is not None
    assert torch.equal(logits.grad[..., :2], torch.zeros_like(logits.grad[..., :2]))
    assert logits.grad[..., 2:].abs().min() > 0
