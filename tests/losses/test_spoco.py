"""SPOCO losses: hand-computed values, label conventions, reproducible anchors, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from unetkit.errors import InputError
from unetkit.losses import (
    SPOCOLoss,
    consistency_loss,
    discriminative_loss,
    object_loss,
    object_masks,
    select_anchors,
    soft_masks,
    spoco_loss,
    unlabelled_push_loss,
)

T = 0.9


def kern(d: float, delta_v: float = 0.5, t: float = T) -> float:
    """phi at distance d: exp(d^2 ln t / delta_v^2) = t ** (d / delta_v) ** 2."""
    return t ** ((d / delta_v) ** 2)


def emb1(values: list[float]) -> torch.Tensor:
    """(1, 1, 1, P) double embeddings with E = 1 from a list."""
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 1, -1)


def lab1(values: list[int]) -> torch.Tensor:
    return torch.tensor(values).reshape(1, 1, -1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dice(p: list[float], g: list[float]) -> float:
    return 1 - 2 * sum(a * b for a, b in zip(p, g)) / (sum(a * a for a in p) + sum(b * b for b in g))


# ---------------------------------------------------------------- instance selection (Eq. 3)

def test_kernel_is_t_at_delta_v() -> None:
    e = torch.tensor([[0.0, 0.5, 1.0, 0.3]], dtype=torch.float64)  # (E=1, X=4)
    m = soft_masks(e, torch.zeros(1, 1, dtype=torch.float64), delta_v=0.5, t=0.9)
    assert m.shape == (1, 4)
    assert m[0].tolist() == pytest.approx([1.0, 0.9, 0.9 ** 4, kern(0.3)])
    e3 = torch.randn(3, 2, 3, 4, dtype=torch.float64)  # (E, Z, Y, X)
    a = torch.randn(5, 3, dtype=torch.float64)
    m3 = soft_masks(e3, a, delta_v=0.7, t=0.5)
    ref = torch.exp(-((e3[None] - a[:, :, None, None, None]) ** 2).sum(1) * math.log(2) / 0.49)
    assert m3.shape == (5, 2, 3, 4)
    assert torch.allclose(m3, ref)
    with pytest.raises(InputError, match="t="):
        soft_masks(e, torch.zeros(1, 1, dtype=torch.float64), t=1.0)


def test_random_anchor_is_a_pixel_of_its_object_and_reproducible() -> None:
    points = torch.arange(7, dtype=torch.float64)[:, None]  # (P, E=1)
    inverse = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    means = torch.tensor([[1.0], [4.5]], dtype=torch.float64)
    seen: list[set[float]] = [set(), set()]
    g = gen(1)
    for _ in range(100):
        a = select_anchors(points, inverse, means, generator=g)
        seen[0].add(a[0, 0].item())
        seen[1].add(a[1, 0].item())
    assert seen == [{0.0, 1.0, 2.0}, {3.0, 4.0, 5.0, 6.0}]  # every pixel, never another object's
    assert torch.equal(select_anchors(points, inverse, means, generator=gen(5)),
                       select_anchors(points, inverse, means, generator=gen(5)))
    torch.manual_seed(3)
    first = select_anchors(points, inverse, means)
    torch.manual_seed(3)
    assert torch.equal(first, select_anchors(points, inverse, means))  # global RNG when no generator


def test_near_mean_and_mean_anchors() -> None:
    # object 0: [0, 0.2, 0.4] mean 0.2: only 0.2 lies within delta_v = 0.1
    # object 1: [0, 0.1, 5] mean 1.7: none within 0.1 -> the nearest pixel to the mean, 0.1
    points = torch.tensor([[0.0], [0.2], [0.4], [0.0], [0.1], [5.0]], dtype=torch.float64)
    inverse = torch.tensor([0, 0, 0, 1, 1, 1])
    means = torch.tensor([[0.2], [1.7]], dtype=torch.float64)
    for seed in range(5):
        a = select_anchors(points, inverse, means, mode="near_mean", delta_v=0.1, generator=gen(seed))
        assert a[:, 0].tolist() == pytest.approx([0.2, 0.1])
    assert torch.equal(select_anchors(points, inverse, means, mode="mean"), means)
    with pytest.raises(InputError, match="anchor"):
        select_anchors(points, inverse, means, mode="centre")  # type: ignore[arg-type]


# ---------------------------------------------------------------- L_obj (Eq. 4)

# labels [1, 1, 2, 0]; embeddings [0, 0.5, 3, 7]; means mu_1 = 0.25, mu_2 = 3
E_OBJ = emb1([0.0, 0.5, 3.0, 7.0])
L_OBJ = lab1([1, 1, 2, 0])


def test_object_loss_mean_anchor_hand_computed() -> None:
    # region "labelled" = pixels 0..2 (the unlabelled pixel 3 does not enter)
    d1 = dice([kern(0.25), kern(0.25), kern(2.75)], [1, 1, 0])
    d2 = dice([kern(3.0), kern(2.5), 1.0], [0, 0, 1])
    got = object_loss(E_OBJ, L_OBJ, anchor="mean")
    assert got.item() == pytest.approx((d1 + d2) / 2)
    # region "image": pixel 3 (target 0 for both objects) enters
    i1 = dice([kern(0.25), kern(0.25), kern(2.75), kern(6.75)], [1, 1, 0, 0])
    i2 = dice([kern(3.0), kern(2.5), 1.0, kern(4.0)], [0, 0, 1, 0])
    assert object_loss(E_OBJ, L_OBJ, anchor="mean", region="image").item() == pytest.approx((i1 + i2) / 2)


def test_object_loss_bce_hand_computed() -> None:
    p1 = [kern(0.25), kern(0.25), kern(2.75)]
    p2 = [kern(3.0), kern(2.5), 1.0]

    def bce(p: list[float], g: list[int]) -> float:
        eps = torch.finfo(torch.float64).eps
        return -sum(gi * math.log(max(pi, eps)) + (1 - gi) * math.log(max(1 - pi, eps))
                    for pi, gi in zip(p, g)) / len(p)

    want = (bce(p1, [1, 1, 0]) + bce(p2, [0, 0, 1])) / 2
    assert object_loss(E_OBJ, L_OBJ, anchor="mean", loss="bce").item() == pytest.approx(want)


def test_object_loss_random_anchor_value_and_seed() -> None:
    # Constant embedding per object: every anchor choice gives the same value.
    e = emb1([1.0, 1.0, 1.0, 2.0, 2.0, 9.0])
    lab = lab1([4, 4, 4, 7, 7, 0])
    d4 = dice([1, 1, 1, kern(1.0), kern(1.0)], [1, 1, 1, 0, 0])
    d7 = dice([kern(1.0)] * 3 + [1, 1], [0, 0, 0, 1, 1])
    assert object_loss(e, lab, generator=gen(0)).item() == pytest.approx((d4 + d7) / 2)
    # Non-constant embeddings: a seeded generator reproduces the value; seeds differ.
    torch.manual_seed(0)
    e = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    lab = torch.randint(0, 4, (2, 5, 6))
    values = {object_loss(e, lab, generator=gen(s)).item() for s in range(6)}
    assert len(values) > 1
    assert object_loss(e, lab, generator=gen(2)).item() == object_loss(e, lab, generator=gen(2)).item()


def test_object_loss_3d_against_reference() -> None:
    torch.manual_seed(1)
    e = torch.randn(2, 2, 3, 4, 5, dtype=torch.float64)
    lab = torch.randint(0, 3, (2, 3, 4, 5))
    lab[1] = 0  # second image: no labelled object -> contributes 0
    want = 0.0
    img_e, img_l = e[0].reshape(2, -1), lab[0].reshape(-1)
    region = img_l != 0
    per = []
    for k in (1, 2):
        mu = img_e[:, img_l == k].mean(1)
        p = [kern(float(torch.linalg.vector_norm(img_e[:, i] - mu))) for i in range(img_l.numel()) if region[i]]
        g = [float(img_l[i] == k) for i in range(img_l.numel()) if region[i]]
        per.append(dice(p, g))
    want = sum(per) / 2 / 2  # mean over objects, then over the 2 images
    assert object_loss(e, lab, anchor="mean").item() == pytest.approx(want)


def test_unlabelled_pixels_do_not_enter_object_loss() -> None:
    torch.manual_seed(2)
    e = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    lab = torch.randint(0, 3, (1, 6, 6))
    e2 = e.clone()
    e2[:, :, lab[0] == 0] = torch.randn_like(e2[:, :, lab[0] == 0])
    a = object_loss(e, lab, generator=gen(0))
    assert object_loss(e2, lab, generator=gen(0)).item() == pytest.approx(a.item())
    assert object_loss(e2, lab, generator=gen(0), region="image").item() != pytest.approx(
        object_loss(e, lab, generator=gen(0), region="image").item())


def test_absent_objects_give_zero_not_nan() -> None:
    e = torch.randn(2, 3, 4, 4, requires_grad=True)
    g = torch.randn(2, 3, 4, 4)
    for lab in (torch.zeros(2, 4, 4, dtype=torch.long), torch.full((2, 4, 4), -1)):
        loss, parts = spoco_loss(e, lab, g, generator=gen(0))
        for name in ("pull", "push", "reg", "obj", "u_push"):
            assert parts[name].item() == 0.0
        assert torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(e.grad).all()
        e.grad = None
    assert object_loss(e, torch.zeros(2, 4, 4, dtype=torch.long)).item() == 0.0
    assert unlabelled_push_loss(e, torch.ones(2, 4, 4, dtype=torch.long)).item() == 0.0  # no U
    assert consistency_loss(e, g, torch.ones(2, 4, 4, dtype=torch.long)).item() == 0.0  # no U


# ---------------------------------------------------------------- L_U-push (Eq. 6)

def test_unlabelled_push_hand_computed() -> None:
    e = emb1([0.0, 2.0, 1.0, 5.0])
    # one cluster {0, 2} mean 1; U = {1, 5}: [2 - 0]^2 = 4, [2 - 4]_+ = 0 -> 2
    assert unlabelled_push_loss(e, lab1([1, 1, 0, 0]), delta_d=2.0).item() == pytest.approx(2.0)
    # clusters {0} and {2}: mu=0 -> [(2-1)^2, 0] mean 0.5; mu=2 -> [(2-1)^2, 0] mean 0.5
    assert unlabelled_push_loss(e, lab1([1, 2, 0, 0]), delta_d=2.0).item() == pytest.approx(0.5)
    # a labelled background is one more labelled mean, not part of U
    assert unlabelled_push_loss(e, lab1([3, 2, 0, 0]), background=3).item() == pytest.approx(0.5)
    # margin delta_d, not 2 delta_d
    assert unlabelled_push_loss(e, lab1([1, 1, 0, 0]), delta_d=1.5).item() == pytest.approx(1.5 ** 2 / 2)
    assert unlabelled_push_loss(e, lab1([1, 1, 0, 0]), unlabelled=None).item() == 0.0


def test_unlabelled_push_3d_against_reference() -> None:
    torch.manual_seed(3)
    e = torch.randn(2, 3, 2, 3, 4, dtype=torch.float64)
    lab = torch.randint(0, 4, (2, 2, 3, 4))
    want = 0.0
    for b in range(2):
        pe, pl = e[b].reshape(3, -1), lab[b].reshape(-1)
        ids = [k for k in pl.unique().tolist() if k != 0]
        u = pe[:, pl == 0]
        per = [float((torch.clamp(2.0 - torch.linalg.vector_norm(u - pe[:, pl == k].mean(1, keepdim=True), dim=0),
                                  min=0) ** 2).mean()) for k in ids]
        want += sum(per) / len(per) / 2
    assert unlabelled_push_loss(e, lab).item() == pytest.approx(want)


# ---------------------------------------------------------------- L_U-con (Eq. 7)

def test_consistency_hand_computed() -> None:
    # U = pixels 2, 3; f there [0, 1], g [0, 0.5]. Either anchor gives the same Dice, and it covers
    # the other pixel in g-space (distance 0.5 <= delta_v): exactly one anchor.
    f = emb1([9.0, 9.0, 0.0, 1.0])
    g = emb1([9.0, 9.0, 0.0, 0.5])
    lab = lab1([1, 1, 0, 0])
    want = dice([1.0, kern(1.0)], [1.0, kern(0.5)])
    for seed in range(4):
        assert consistency_loss(f, g, lab, generator=gen(seed)).item() == pytest.approx(want)
    # identical embeddings -> identical masks -> 0
    assert consistency_loss(f, f.clone(), lab, generator=gen(0)).item() == pytest.approx(0.0)


def _reference_u_con(f, g, lab, seed, max_anchors=20, min_uncovered=0.05, delta_v=0.5):
    """Straightforward loop version (same draw order: one rand(N_U) per anchor)."""
    gen_ = gen(seed)
    total = 0.0
    for b in range(f.shape[0]):
        fp = f[b].reshape(f.shape[1], -1)[:, lab[b].reshape(-1) == 0]
        gp = g[b].reshape(g.shape[1], -1)[:, lab[b].reshape(-1) == 0]
        n = fp.shape[1]
        if n == 0:
            continue
        uncovered = [True] * n
        losses = []
        while len(losses) < max_anchors and sum(uncovered) >= min_uncovered * n and any(uncovered):
            r = torch.rand(n, generator=gen_, dtype=torch.float32)
            a = max((i for i in range(n) if uncovered[i]), key=lambda i: r[i].item())
            df = [float(torch.linalg.vector_norm(fp[:, i] - fp[:, a])) for i in range(n)]
            dg = [float(torch.linalg.vector_norm(gp[:, i] - gp[:, a])) for i in range(n)]
            losses.append(dice([kern(d) for d in df], [kern(d) for d in dg]))
            for i in range(n):
                if df[i] <= delta_v or dg[i] <= delta_v or i == a:
                    uncovered[i] = False
        total += sum(losses) / len(losses)
    return total / f.shape[0]


@pytest.mark.parametrize("spatial", [(5, 6), (2, 3, 4)])
@pytest.mark.parametrize("max_anchors", [20, 2])
def test_consistency_against_reference(spatial: tuple[int, ...], max_anchors: int) -> None:
    torch.manual_seed(4)
    f = torch.randn(2, 2, *spatial, dtype=torch.float64)
    g = f + 0.3 * torch.randn_like(f)
    lab = torch.randint(0, 3, (2, *spatial))
    got = consistency_loss(f, g, lab, max_anchors=max_anchors, generator=gen(7))
    assert got.item() == pytest.approx(_reference_u_con(f, g, lab, 7, max_anchors=max_anchors))


def test_no_gradient_reaches_g() -> None:
    torch.manual_seed(5)
    f = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    lab = torch.randint(0, 3, (1, 5, 5))
    consistency_loss(f, g, lab, generator=gen(0)).backward()
    assert g.grad is None and f.grad is not None and f.grad.abs().sum() > 0
    loss, parts = spoco_loss(f, lab, g, generator=gen(0))
    assert parts["u_con"].item() > 0
    loss.backward()
    assert g.grad is None


# ---------------------------------------------------------------- L_SO-hat, L_SSO (Eq. 5, 8)

def test_so_terms_are_the_discriminative_loss_on_labelled_clusters() -> None:
    torch.manual_seed(6)
    e = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    lab = torch.randint(0, 4, (2, 6, 5))
    _, parts = spoco_loss(e, lab, generator=gen(0))
    _, ref = discriminative_loss(e, lab, delta_v=0.5, delta_d=2.0, background="ignore")
    for name in ("pull", "push", "reg"):
        assert parts[name].item() == pytest.approx(ref[name].item())
    # dense labels with a labelled background: 0 is a cluster, no U, and not an object of L_obj
    _, dense = spoco_loss(e, lab, background=0, unlabelled=None, anchor="mean")
    _, ref = discriminative_loss(e, lab, delta_v=0.5, delta_d=2.0, background="instance")
    for name in ("pull", "push", "reg"):
        assert dense[name].item() == pytest.approx(ref[name].item())
    assert dense["u_push"].item() == 0.0
    assert dense["obj"].item() == pytest.approx(object_loss(e, lab, anchor="mean", region="image").item())


def test_total_is_weighted_sum_and_module_matches_function() -> None:
    torch.manual_seed(7)
    e = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    g = e + 0.2 * torch.randn_like(e)
    lab = torch.randint(0, 3, (2, 5, 5))
    w = dict(alpha=2.0, beta=0.5, reg_weight=0.1, obj_weight=3.0, u_push_weight=0.7, u_con_weight=1.5)
    loss, parts = spoco_loss(e, lab, g, generator=gen(1), **w)
    want = (2 * parts["pull"] + 0.5 * parts["push"] + 0.1 * parts["reg"] + 3 * parts["obj"]
            + 0.7 * parts["u_push"] + 1.5 * parts["u_con"])
    assert loss.item() == pytest.approx(want.item())
    assert all(parts[k].item() > 0 for k in parts)
    # without g the generator feeds only the anchors of L_obj (with g, the draws interleave)
    _, no_con = spoco_loss(e, lab, generator=gen(1), **w)
    assert no_con["obj"].item() == pytest.approx(object_loss(e, lab, generator=gen(1)).item())
    assert parts["u_push"].item() == pytest.approx(unlabelled_push_loss(e, lab).item())
    module = SPOCOLoss(generator=gen(1), **w)
    assert module(e, lab, g).item() == pytest.approx(loss.item())
    assert module(e, lab, g, gen(1)).item() == pytest.approx(loss.item())
    assert "delta_d=2.0" in repr(SPOCOLoss())
    _, no_g = SPOCOLoss().components(e, lab)
    assert no_g["u_con"].item() == 0.0


def test_invalid_inputs() -> None:
    e = torch.randn(1, 2, 3, 3)
    with pytest.raises(InputError):
        spoco_loss(e, torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(InputError, match="differ"):
        spoco_loss(e, torch.zeros(1, 3, 3, dtype=torch.long), background=0)
    with pytest.raises(InputError, match="obj_loss"):
        spoco_loss(e, torch.zeros(1, 3, 3, dtype=torch.long), obj_loss="ce")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=">= 0"):
        spoco_loss(e, torch.full((1, 3, 3), -2))
    with pytest.raises(InputError, match="g_embeddings"):
        spoco_loss(e, torch.zeros(1, 3, 3, dtype=torch.long), torch.randn(1, 2, 3, 4))


# ---------------------------------------------------------------- gradcheck

def test_gradcheck_differentiable_parts() -> None:
    torch.manual_seed(8)
    e = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: soft_masks(x[0], y), (e, a))
    lab = torch.tensor([[[1, 1, 0], [2, 2, 0], [0, 3, 0]]])
    for anchor in ("random", "mean"):
        assert torch.autograd.gradcheck(lambda x: object_loss(x, lab, anchor=anchor, generator=gen(0)), (e,))
    assert torch.autograd.gradcheck(lambda x: object_loss(x, lab, loss="bce", generator=gen(0)), (e,))
    # unlabelled push with pixels well inside the hinge and away from the means
    ep = emb1([0.0, 0.4, 3.0, 1.3, 2.2, 0.9]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: unlabelled_push_loss(x, lab1([1, 1, 2, 0, 0, 0])), (ep,))
    # consistency: f and g well separated per pixel so the covering decisions are stable
    f = emb1([0.0, 1.7, 3.1, 4.6]).requires_grad_(True)
    g = emb1([0.1, 1.5, 3.3, 4.4])
    assert torch.autograd.gradcheck(lambda x: consistency_loss(x, g, lab1([0, 0, 0, 0]), generator=gen(0)), (f,))
    assert torch.autograd.gradcheck(lambda x: spoco_loss(x, lab, x.detach() + 0.1, generator=gen(0))[0], (e,))


def test_object_masks_match_object_loss() -> None:
    torch.manual_seed(9)
    e = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    lab = torch.randint(0, 3, (2, 4, 5))
    lab[1] = 0  # no object in the second image
    soft, real = object_masks(e, lab, generator=gen(3))
    ids = [k for k in lab[0].unique().tolist() if k != 0]
    assert soft.shape == real.shape == (len(ids), 1, 4, 5)
    for i, k in enumerate(ids):
        assert torch.equal(real[i, 0], (lab[0] == k).double())
        assert soft[i, 0].max().item() == pytest.approx(1.0)  # the anchor pixel lies in the object
        assert soft[i, 0][lab[0] == k].max().item() == pytest.approx(1.0)
    d = 1 - 2 * (soft * real).flatten(1).sum(1) / ((soft ** 2).flatten(1).sum(1) + real.flatten(1).sum(1))
    assert (d.mean() / 2).item() == pytest.approx(object_loss(e, lab, region="image", generator=gen(3)).item())
    empty_soft, empty_real = object_masks(e, torch.zeros(2, 4, 5, dtype=torch.long))
    assert empty_soft.shape == empty_real.shape == (0, 1, 4, 5)
