"""Discriminative loss: hand-computed values, background/ignore handling, invariances, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import InputError
from unetkit.losses import DiscriminativeLoss, discriminative_loss

# A 1 x 4 image with two instances (ids 3 and 7: not consecutive) and 2-D embeddings.
#   pixel:      0        1        2        3
#   label:      3        3        7        7
#   embedding: (0, 0)   (2, 0)   (0, 3)   (0, 5)
EMB = torch.tensor([[[[0.0, 2.0, 0.0, 0.0]], [[0.0, 0.0, 3.0, 5.0]]]], dtype=torch.float64)  # (1, 2, 1, 4)
LAB = torch.tensor([[[3, 3, 7, 7]]])  # (1, 1, 4)


def test_hand_computed_two_instances() -> None:
    # means: mu_3 = (1, 0), mu_7 = (0, 4); every pixel is at distance 1 from its mean.
    # pull (delta_v = 0.5): each pixel [1 - 0.5]^2 = 0.25 -> 0.25.
    # push (delta_d = 1.5, margin 3): ||mu_3 - mu_7|| = sqrt(17) > 3 -> 0.
    # reg: (1 + 4) / 2 = 2.5.
    loss, parts = discriminative_loss(EMB, LAB, delta_v=0.5, delta_d=1.5, gamma=0.001)
    assert parts["pull"].item() == pytest.approx(0.25)
    assert parts["push"].item() == pytest.approx(0.0)
    assert parts["reg"].item() == pytest.approx(2.5)
    assert loss.item() == pytest.approx(0.25 + 0.001 * 2.5)


def test_hand_computed_push_active_and_weights() -> None:
    # delta_d = 3: margin 6 > sqrt(17): push = (6 - sqrt(17))^2 for both ordered pairs.
    # delta_v = 0: pull = mean of d^2 = 1.
    push = (6 - math.sqrt(17)) ** 2
    loss, parts = discriminative_loss(EMB, LAB, delta_v=0.0, delta_d=3.0, alpha=2.0, beta=3.0, gamma=0.5)
    assert parts["pull"].item() == pytest.approx(1.0)
    assert parts["push"].item() == pytest.approx(push)
    assert parts["reg"].item() == pytest.approx(2.5)
    assert loss.item() == pytest.approx(2.0 * 1.0 + 3.0 * push + 0.5 * 2.5)


def test_background_instance_vs_ignore() -> None:
    # label 0 on pixel 0: with "instance" it is a third cluster {(0, 0)}.
    lab = torch.tensor([[[0, 3, 7, 7]]])
    _, ign = discriminative_loss(EMB, lab, delta_v=0.0, delta_d=3.0, background="ignore")
    # clusters: {(2,0)} mean (2,0); {(0,3),(0,5)} mean (0,4)
    assert ign["pull"].item() == pytest.approx((0.0 + 1.0) / 2)
    assert ign["push"].item() == pytest.approx((6 - math.sqrt(20)) ** 2)
    assert ign["reg"].item() == pytest.approx((2 + 4) / 2)
    _, ins = discriminative_loss(EMB, lab, delta_v=0.0, delta_d=3.0, background="instance")
    # third cluster {(0,0)}: pull 0; distances between means: (0,0)-(2,0) = 2, (0,0)-(0,4) = 4,
    # (2,0)-(0,4) = sqrt(20)
    pushes = [(6 - 2) ** 2, (6 - 4) ** 2, (6 - math.sqrt(20)) ** 2]
    assert ins["pull"].item() == pytest.approx(1.0 / 3)
    assert ins["push"].item() == pytest.approx(sum(pushes) / 3)
    assert ins["reg"].item() == pytest.approx((0 + 2 + 4) / 3)


def test_ignore_index_pixels_are_left_out() -> None:
    lab = torch.tensor([[[3, -1, 7, 7]]])
    _, parts = discriminative_loss(EMB, lab, delta_v=0.0, delta_d=0.5)
    assert parts["pull"].item() == pytest.approx((0.0 + 1.0) / 2)  # {(0,0)} and {(0,3),(0,5)}
    assert parts["reg"].item() == pytest.approx((0 + 4) / 2)
    lab9 = torch.tensor([[[3, 9, 7, 7]]])
    _, same = discriminative_loss(EMB, lab9, delta_v=0.0, delta_d=0.5, ignore_index=9)
    assert same["pull"].item() == pytest.approx(parts["pull"].item())
    with pytest.raises(InputError, match="-1"):
        discriminative_loss(EMB, lab, ignore_index=None)


def test_perfect_separation_gives_zero_pull_and_push() -> None:
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    lab = torch.randint(0, 4, (2, 6, 7))
    emb = centres[lab].movedim(-1, 1) + 0.1 * torch.rand(2, 3, 6, 7)
    _, parts = discriminative_loss(emb, lab, delta_v=0.5, delta_d=1.5)
    assert parts["pull"].item() == 0.0
    assert parts["push"].item() == 0.0
    assert parts["reg"].item() > 0


def test_zero_and_one_cluster_images() -> None:
    emb = torch.randn(3, 2, 4, 4, requires_grad=True)
    lab = torch.full((3, 4, 4), -1)
    lab[1] = 0  # one cluster (the background) in image 1
    lab[2, :2] = 5  # one cluster in image 2 (the rest ignored)
    loss, parts = discriminative_loss(emb, lab, background="instance")
    assert parts["push"].item() == 0.0
    # image 0 contributes 0 but counts in the batch mean
    per1 = discriminative_loss(emb[1:2], lab[1:2])[0]
    per2 = discriminative_loss(emb[2:3], lab[2:3])[0]
    assert loss.item() == pytest.approx((per1.item() + per2.item()) / 3)
    loss.backward()
    assert emb.grad is not None and torch.all(emb.grad[0] == 0)
    # nothing at all: a zero loss that still backpropagates
    empty, parts0 = discriminative_loss(emb, torch.zeros(3, 4, 4, dtype=torch.long), background="ignore")
    assert empty.item() == 0.0 and all(v.item() == 0.0 for v in parts0.values())
    empty.backward()


def test_single_pixel_clusters_have_finite_gradients() -> None:
    emb = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([[[1, 2], [3, 3]]])
    loss, _ = discriminative_loss(emb, lab, delta_v=0.0)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    # identical means (distance 0): push hinge active, gradient still finite
    same = torch.zeros(1, 2, 1, 2, dtype=torch.float64, requires_grad=True)
    loss, parts = discriminative_loss(same, torch.tensor([[[1, 2]]]), delta_d=1.0)
    assert parts["push"].item() == pytest.approx(4.0)
    loss.backward()
    assert torch.isfinite(same.grad).all()


def test_gradcheck() -> None:
    torch.manual_seed(1)
    emb = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([[[0, 1, 1], [0, 2, 2], [-1, 2, 1]], [[4, 4, 4], [4, 0, 0], [0, 0, 4]]])

    def fn(e: torch.Tensor) -> torch.Tensor:
        return discriminative_loss(e, lab, delta_v=0.3, delta_d=1.0, gamma=0.1)[0]

    assert torch.autograd.gradcheck(fn, (emb,), eps=1e-6, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    shift=st.lists(st.floats(-20, 20, allow_nan=False), min_size=3, max_size=3),
    seed=st.integers(0, 10_000),
    background=st.sampled_from(["instance", "ignore"]),
)
def test_translation_leaves_pull_and_push_unchanged(shift: list[float], seed: int, background: str) -> None:
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64) * 2
    lab = torch.randint(-1, 4, (2, 5, 6), generator=g)
    t = torch.tensor(shift, dtype=torch.float64).view(1, 3, 1, 1)
    _, a = discriminative_loss(emb, lab, delta_v=0.5, delta_d=1.5, background=background)
    _, b = discriminative_loss(emb + t, lab, delta_v=0.5, delta_d=1.5, background=background)
    assert b["pull"].item() == pytest.approx(a["pull"].item(), rel=1e-9, abs=1e-9)
    assert b["push"].item() == pytest.approx(a["push"].item(), rel=1e-9, abs=1e-9)


def test_batch_mean_equals_mean_of_images() -> None:
    torch.manual_seed(2)
    emb = torch.randn(4, 3, 8, 8)
    lab = torch.randint(0, 5, (4, 8, 8))
    loss, parts = discriminative_loss(emb, lab)
    singles = [discriminative_loss(emb[i : i + 1], lab[i : i + 1]) for i in range(4)]
    assert loss.item() == pytest.approx(sum(s[0].item() for s in singles) / 4, rel=1e-6)
    for k in ("pull", "push", "reg"):
        assert parts[k].item() == pytest.approx(sum(s[1][k].item() for s in singles) / 4, rel=1e-6)


def test_relabelling_does_not_matter() -> None:
    torch.manual_seed(3)
    emb = torch.randn(1, 2, 6, 6)
    lab = torch.randint(1, 4, (1, 6, 6))
    perm = torch.tensor([0, 100, 5, 42])
    assert discriminative_loss(emb, perm[lab])[0].item() == pytest.approx(discriminative_loss(emb, lab)[0].item())


def test_3d_input_equals_flattened_2d() -> None:
    torch.manual_seed(4)
    emb = torch.randn(2, 3, 4, 5, 6)
    lab = torch.randint(0, 4, (2, 4, 5, 6))
    loss3, parts3 = discriminative_loss(emb, lab)
    loss2, _ = discriminative_loss(emb.reshape(2, 3, 20, 6), lab.reshape(2, 20, 6))
    assert loss3.item() == pytest.approx(loss2.item(), rel=1e-6)
    assert set(parts3) == {"pull", "push", "reg"}


def test_module_twin() -> None:
    crit = DiscriminativeLoss(delta_v=0.0, delta_d=3.0, alpha=2.0, beta=3.0, gamma=0.5)
    assert crit(EMB, LAB).item() == pytest.approx(discriminative_loss(EMB, LAB, delta_v=0.0, delta_d=3.0, alpha=2.0,
                                                                      beta=3.0, gamma=0.5)[0].item())
    assert "delta_d=3.0" in repr(crit)


@pytest.mark.parametrize(
    ("emb", "lab", "kwargs", "phrase"),
    [
        (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), {}, "at least one spatial axis"),
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), {}, r"\(1, 4, 5\)"),
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4), {}, "integer"),
        (torch.zeros(1, 2, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long), {}, "floating"),
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), {"background": "none"}, "background"),
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), {"delta_v": -1.0}, "delta_v"),
    ],
)
def test_bad_inputs(emb: torch.Tensor, lab: torch.Tensor, kwargs: dict, phrase: str) -> None:
    with pytest.raises(InputError, match=phrase):
        discriminative_loss(emb, lab, **kwargs)
