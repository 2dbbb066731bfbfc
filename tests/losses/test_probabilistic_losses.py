"""Stochastic top-k softmax cross-entropy (HPU-Net's reconstruction loss)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unetkit.losses import topk_cross_entropy


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    target[0, :2] = -1  # 16 ignored pixels
    return logits, target


def _selected(logits: torch.Tensor, target: torch.Tensor, k: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean mask (N, *S) of the pixels that receive gradient, and n_selected."""
    x = logits.clone().requires_grad_(True)
    loss, n_sel = topk_cross_entropy(x, target, k, generator=torch.Generator().manual_seed(seed))
    loss.backward()
    assert x.grad is not None
    return x.grad.abs().sum(dim=1) > 0, n_sel


@pytest.mark.parametrize("k", [0.02, 0.1, 0.5])
def test_selects_ceil_k_of_the_batchs_valid_pixels(k: float) -> None:
    logits, target = _batch()
    mask, n_sel = _selected(logits, target, k, seed=1)
    want = math.ceil(k * int((target >= 0).sum()))  # 112 valid pixels
    assert int(n_sel.sum()) == want == int(mask.sum())
    assert torch.equal(mask.flatten(1).sum(1), n_sel)  # per image counts


def test_gradients_reach_exactly_the_selected_pixels_and_loss_is_their_ce_sum_over_n() -> None:
    logits, target = _batch(2)
    mask, _ = _selected(logits, target, 0.2, seed=3)
    loss, _ = topk_cross_entropy(logits, target, 0.2, generator=torch.Generator().manual_seed(3))
    ce = F.cross_entropy(logits, target, ignore_index=-1, reduction="none")
    assert torch.allclose(loss, ce[mask].sum() / 2)
    assert not mask[target < 0].any()  # ignored pixels are never selected


def test_ignored_pixels_never_selected_even_when_almost_all_are_kept() -> None:
    logits, target = _batch(4)
    target[1, 3:] = -1
    for seed in range(5):
        mask, n_sel = _selected(logits, target, 1.0 - 1e-6, seed)
        assert not mask[target < 0].any()
        assert int(n_sel.sum()) == int((target >= 0).sum())


def test_selection_spans_the_batch_an_image_with_large_errors_gets_more_pixels() -> None:
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    logits = torch.zeros(2, 2, 16, 16)
    logits[0, 0] = 4.0   # image 0 right: small CE
    logits[1, 1] = 4.0   # image 1 wrong: large CE
    counts = torch.zeros(2, dtype=torch.long)
    for seed in range(4):
        _, n_sel = topk_cross_entropy(logits, target, 0.1, generator=torch.Generator().manual_seed(seed))
        counts += n_sel
    assert counts[1] > 4 * counts[0]


def test_all_pixels_is_plain_summed_ce_over_n() -> None:
    logits = torch.tensor([[[[0.0, 2.0]], [[1.0, 0.0]]], [[[0.0, 0.0]], [[0.0, 3.0]]]])  # (2, 2, 1, 2)
    target = torch.tensor([[[1, 0]], [[0, -1]]])
    # image 0: CE(1 | [0, 1]) + CE(0 | [2, 0]); image 1: CE(0 | [0, 0]); the ignored pixel adds nothing
    hand = (math.log(1 + math.e ** -1) + math.log(1 + math.e ** -2) + math.log(2)) / 2
    for k in (None, 1.0):
        loss, n_sel = topk_cross_entropy(logits, target, k)
        assert loss.item() == pytest.approx(hand, rel=1e-6)
        assert n_sel.tolist() == [2, 1]


def test_noise_comes_from_the_generator_or_the_global_rng() -> None:
    logits, target = _batch(5)
    a = _selected(logits, target, 0.1, seed=7)[0]
    assert torch.equal(a, _selected(logits, target, 0.1, seed=7)[0])
    torch.manual_seed(0)
    l1, _ = topk_cross_entropy(logits, target, 0.1)
    torch.manual_seed(0)
    l2, _ = topk_cross_entropy(logits, target, 0.1)
    assert torch.equal(l1, l2)


def test_bad_k_is_refused() -> None:
    logits, target = _batch()
    for k in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="k must be in"):
            topk_cross_entropy(logits, target, k)
