"""Scale-space layers: shapes (2-D and 3-D), shift and scale equivariance, D_2 U_2 = id, scale
dropout statistics, the coarsest scale for J > 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import ShapeError
from unetkit.layers.scale import (
    GaussianLift,
    QuadraticDilationPool,
    ScaleBatchNorm,
    ScaleConv,
    ScaleConvBlock,
    ScaleDropout,
    ScaleMaxPool,
    ScaleProjection,
    ScaleUpsample,
    gaussian_kernel1d,
    gaussian_sigmas,
    lattice_upsample,
    scale_subsampling,
)
from unetkit.layers.scale_checks import (
    action_error,
    equivariance_errors,
    format_table,
    lifted_scale_error,
    shift_error,
    smooth_image,
)
from unetkit.layers.scale_lift import mirror_indices

FAST = settings(max_examples=8, deadline=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lifted(ndim: int, size: int, scales: int = 3, channels: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, channels, scales, *(size,) * ndim, generator=g)


def _seeded(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    return module.eval()


# ---------------------------------------------------------------------------------- lifting
def test_sigmas_follow_the_semigroup_rule() -> None:
    s = gaussian_sigmas(4, 0.5)
    assert s[0] == 0
    np.testing.assert_allclose(s, [0.5 * math.sqrt(4**k - 1) for k in range(4)])
    for k in range(3):  # sigma_{k+1}^2 = 4 sigma_k^2 + 3 sigma_base^2
        assert s[k + 1] ** 2 == pytest.approx(4 * s[k] ** 2 + 3 * 0.25)
    k = gaussian_kernel1d(2.0)
    assert k.numel() == 17 and float(k.sum()) == pytest.approx(1.0)


@given(n=st.integers(1, 12), pad=st.integers(0, 30))
@FAST
def test_mirror_indices_match_numpy_reflect(n: int, pad: int) -> None:
    expected = np.pad(np.arange(n), pad, mode="reflect" if n > 1 else "edge")
    np.testing.assert_array_equal(mirror_indices(n, pad).numpy(), expected)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("padding", ["reflect", "zeros"])
def test_lift_shapes_identity_at_scale_zero_and_constants(ndim: int, padding: str) -> None:
    lift = GaussianLift(ndim, scales=3, padding=padding)  # type: ignore[arg-type]
    x = torch.randn(2, 3, *(9,) * ndim)
    y = lift(x)
    assert y.shape == (2, 3, 3, *(9,) * ndim)
    torch.testing.assert_close(y[:, :, 0], x, rtol=0, atol=0)
    const = lift(torch.full((1, 1, *(9,) * ndim), 2.0))
    if padding == "reflect":  # radius 8 > size 9: folds repeatedly, still exact on constants
        torch.testing.assert_close(const, torch.full_like(const, 2.0))
    else:
        assert float(const[:, :, -1].min()) < 2.0  # zero padding darkens the coarse scales


def test_lift_refuses_non_image() -> None:
    with pytest.raises(ShapeError, match="not a 2-D image batch"):
        GaussianLift(2, 3)(torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="padding"):
        GaussianLift(2, 3, padding="wrap")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("depth", "boundary"), [(1, "truncate"), (2, "truncate"), (3, "repeat")])
def test_scale_conv_shapes(ndim: int, stride: int, depth: int, boundary: str) -> None:
    conv = ScaleConv(2, 5, ndim, 3, scale_depth=depth, stride=stride, scale_boundary=boundary)  # type: ignore[arg-type]
    y = conv(_lifted(ndim, 7))
    assert y.shape == (2, 5, 3, *(4 if stride == 2 else 7,) * ndim)
    assert conv.weight.shape == (5, 2 * depth, *(3,) * ndim)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["strided", "quadratic", "maxpool"])
def test_subsampling_shapes_round_up(ndim: int, kind: str) -> None:
    layer = scale_subsampling(kind, 2, ndim)  # type: ignore[arg-type]
    for size in (8, 7):
        assert layer(_lifted(ndim, size)).shape == (2, 2, 3, *(size // 2 + size % 2,) * ndim)


@pytest.mark.parametrize("ndim", [2, 3])
def test_other_layer_shapes(ndim: int) -> None:
    x = _lifted(ndim, 6)
    assert ScaleUpsample(ndim, 2, "linear")(x).shape == (2, 2, 3, *(12,) * ndim)
    assert ScaleUpsample(ndim, 4, "nearest")(x).shape == (2, 2, 3, *(24,) * ndim)
    assert ScaleProjection("max")(x).shape == (2, 2, *(6,) * ndim)
    assert ScaleProjection("mean")(x).shape == (2, 2, *(6,) * ndim)
    assert ScaleBatchNorm(2)(x).shape == x.shape
    assert ScaleDropout(0.5).train()(x).shape == x.shape
    assert ScaleConvBlock(2, 4, ndim, scale_depth=2)(x).shape == (2, 4, 3, *(6,) * ndim)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        ScaleConv(1, 1, 2, 4)
    with pytest.raises(ValueError, match="stride"):
        ScaleConv(1, 1, 2, stride=3)
    with pytest.raises(ValueError, match="scale_boundary"):
        ScaleConv(1, 1, 2, scale_boundary="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subsampling"):
        scale_subsampling("avg", 1, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p must be"):
        ScaleDropout(1.0)
    with pytest.raises(ShapeError, match="expected 2"):
        ScaleConv(2, 1, 2)(_lifted(2, 5, channels=3))
    with pytest.raises(ShapeError, match="not a lifted 2-D"):
        ScaleConv(2, 1, 2)(torch.zeros(1, 2, 5, 5))


def test_batch_norm_shares_statistics_over_scales() -> None:
    bn = ScaleBatchNorm(2).train()
    x = _lifted(2, 5, scales=4) * torch.arange(1.0, 5.0).reshape(1, 1, 4, 1, 1)
    y = bn(x)
    assert bn.running_mean.shape == (2,)
    per_channel = y.transpose(0, 1).reshape(2, -1)  # statistics over N, S and space
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    assert not torch.allclose(y[:, :, 0].std(), y[:, :, 3].std())  # not normalised per scale


# ---------------------------------------------------------------------------------- D_2 U_2 = id
@given(ndim=st.sampled_from([2, 3]), sizes=st.lists(st.integers(1, 7), min_size=3, max_size=3),
       factor=st.sampled_from([2, 3, 4]), mode=st.sampled_from(["nearest", "linear"]))
@FAST
def test_subsampling_an_upsampled_map_is_the_identity(ndim: int, sizes: list[int], factor: int, mode: str) -> None:
    x = torch.randn(1, 2, 3, *sizes[:ndim])
    y = lattice_upsample(x, factor, mode, ndim)  # type: ignore[arg-type]
    assert y.shape[-ndim:] == tuple(factor * s for s in sizes[:ndim])
    assert torch.equal(y[(..., *([slice(None, None, factor)] * ndim))], x)  # bit for bit


def test_linear_upsampling_interpolates_between_lattice_values() -> None:
    y = lattice_upsample(torch.tensor([[[0.0, 2.0, 4.0]]]), 2, "linear", 1)
    torch.testing.assert_close(y, torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0, 4.0]]]))


# ---------------------------------------------------------------------------------- shift equivariance
LIFTED_LAYERS = {  # name -> (layer factory (ndim) -> module, output shift per input shift, period, reach)
    "conv J=1": (lambda nd: ScaleConv(2, 3, nd), 1.0, 1, 4),  # reach: 2^(S-1) * (K // 2) input pixels, S = 3
    "conv J=2": (lambda nd: ScaleConv(2, 3, nd, scale_depth=2), 1.0, 1, 4),
    "conv J=2 repeat 5x5": (lambda nd: ScaleConv(2, 3, nd, 5, scale_depth=2, scale_boundary="repeat"), 1.0, 1, 8),
    "conv stride 2": (lambda nd: ScaleConv(2, 3, nd, stride=2), 0.5, 2, 4),
    "quadratic pool": (lambda nd: QuadraticDilationPool(nd), 0.5, 2, 4),
    "max pool": (lambda nd: ScaleMaxPool(nd), 0.5, 2, 4),
    "upsample linear": (lambda nd: ScaleUpsample(nd, 2, "linear"), 2.0, 1, 1),
    "upsample nearest": (lambda nd: ScaleUpsample(nd, 2, "nearest"), 2.0, 1, 0),
    "batch norm (eval)": (lambda nd: ScaleBatchNorm(2), 1.0, 1, 0),
    "projection max": (lambda nd: ScaleProjection("max"), 1.0, 1, 0),
    "projection mean": (lambda nd: ScaleProjection("mean"), 1.0, 1, 0),
    "dropout (eval)": (lambda nd: ScaleDropout(0.5), 1.0, 1, 0),
}


@pytest.mark.parametrize("name", list(LIFTED_LAYERS))
@given(data=st.data())
@settings(max_examples=5, deadline=None)
def test_layers_are_shift_equivariant_for_multiples_of_their_period(name: str, data: st.DataObject) -> None:
    """Exact (< 1e-6 relative) on the interior: pixels whose context stays inside the input."""
    make, factor, period, reach = LIFTED_LAYERS[name]
    ndim = data.draw(st.sampled_from([2, 2, 3]), label="ndim")
    size = data.draw(st.sampled_from([24, 26]) if ndim == 2 else st.just(24), label="size")
    shift = [period * data.draw(st.integers(-2, 2), label=f"shift{i}") for i in range(ndim)]
    x = _lifted(ndim, size, scales=3)
    margin = math.ceil(reach * factor)
    err = shift_error(_seeded(make(ndim)), x, shift, ndim=ndim, out_factor=factor, margin=margin)
    assert err < 1e-6, f"{name}: shift {shift} error {err}"


@given(shift=st.lists(st.integers(-5, 5), min_size=2, max_size=2))
@FAST
def test_lift_is_shift_equivariant_for_every_shift(shift: list[int]) -> None:
    lift = GaussianLift(2, scales=3)
    x = torch.randn(1, 1, 40, 40)
    assert shift_error(lift, x, shift, ndim=2, margin=lift.radius) < 1e-6


# ---------------------------------------------------------------------------------- scale equivariance
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("depth", "boundary", "stride"),
                         [(1, "truncate", 1), (2, "truncate", 1), (3, "repeat", 1), (2, "truncate", 2)])
def test_scale_conv_commutes_exactly_with_the_scale_action(ndim: int, depth: int, boundary: str, stride: int) -> None:
    """(conv(R G))(k) = (R conv(G))(k) for every k = 0..S-2, border included (even sizes, zero padding)."""
    conv = _seeded(ScaleConv(2, 3, ndim, scale_depth=depth, stride=stride, scale_boundary=boundary))  # type: ignore[arg-type]
    x = _lifted(ndim, 16 if ndim == 2 else 8, scales=4)
    assert action_error(conv, x, ndim=ndim) < 1e-6


def test_lift_then_conv_commutes_with_downscaling_of_upsampled_images() -> None:
    """Measured (2-D, S = 3, base image = smooth noise sigma 2, interior): lift 6e-2, lift + conv
    7e-2 relative max error; the tolerance 0.1 leaves room for seeds."""
    lift = GaussianLift(2, scales=3)
    base = smooth_image((48, 48), channels=2, seed=4)
    assert lifted_scale_error(lift, base, ndim=2, margin=lift.radius) < 0.1
    conv = _seeded(ScaleConv(2, 3, 2))
    assert lifted_scale_error(lambda x: conv(lift(x)), base, ndim=2, margin=lift.radius + 4) < 0.1


# ---------------------------------------------------------------------------------- J > 1 at the coarsest scale
def test_scale_depth_two_at_the_coarsest_scale() -> None:
    """truncate: scale S-1 sees only tap j = 0; repeat: F(S-1) stands in for F(S), so the taps add up.
    Scales k <= S-J are the same for both."""
    x = _lifted(2, 9, scales=3)
    trunc = _seeded(ScaleConv(2, 3, 2, scale_depth=2))
    rep = ScaleConv(2, 3, 2, scale_depth=2, scale_boundary="repeat")
    rep.load_state_dict(trunc.state_dict())
    w = trunc.weight.detach().reshape(3, 2, 2, 3, 3)  # (out, c, j, kh, kw)
    j0, summed = ScaleConv(2, 3, 2), ScaleConv(2, 3, 2)
    with torch.no_grad():
        j0.weight.copy_(w[:, :, 0])
        summed.weight.copy_(w.sum(2))
        for m in (j0, summed):
            m.bias.copy_(trunc.bias)
    with torch.no_grad():
        a, b = trunc(x), rep(x)
        torch.testing.assert_close(a[:, :, :2], b[:, :, :2])
        torch.testing.assert_close(a[:, :, 2], j0(x)[:, :, 2])
        torch.testing.assert_close(b[:, :, 2], summed(x)[:, :, 2])
        assert not torch.allclose(a[:, :, 2], b[:, :, 2])


# ---------------------------------------------------------------------------------- scale dropout
@pytest.mark.parametrize("rescale", [True, False])
def test_scale_dropout_statistics(rescale: bool) -> None:
    torch.manual_seed(0)
    p = 0.25
    drop = ScaleDropout(p, rescale=rescale).train()
    x = torch.ones(64, 16, 4, 3, 3)
    y = drop(x)
    # one draw per (sample, channel, scale), constant over space
    assert torch.equal(y, y[..., :1, :1].expand_as(y))
    mask = y[..., 0, 0]
    dropped = float((mask == 0).float().mean())
    assert abs(dropped - p) < 0.035  # 4096 draws: standard deviation 0.0068
    kept = mask[mask != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p) if rescale else 1.0))
    if rescale:
        assert abs(float(mask.mean()) - 1.0) < 0.05
    assert torch.equal(drop.eval()(x), x)


# ---------------------------------------------------------------------------------- the table
def test_equivariance_table_small() -> None:
    errors = equivariance_errors(ndim=2, size=80, scales=3)
    for name, e in errors.items():
        if name != "SEU-Net":  # its receptive field crosses the comparison margin
            assert e["shift"] < 1e-6, name
    for name in ("ScaleConv J=1", "ScaleConv J=2 truncate", "ScaleConv J=2 repeat", "ScaleConv stride 2",
                 "ScaleBatchNorm (eval)"):
        assert errors[name]["scale"] < 1e-6, name
    assert errors["SEU-Net"]["scale after lift"] < errors["U-Net"]["scale after lift"]
    assert "| SEU-Net |" in format_table(errors)


def test_odd_shifts_break_stride_two_equivariance() -> None:
    """Control: the check detects a broken equivariance (stride 2 commutes only with even shifts)."""
    x = _lifted(2, 24, scales=3)
    conv = _seeded(ScaleConv(2, 3, 2, stride=2))
    assert shift_error(conv, x, [2, 0], ndim=2, out_factor=0.5, margin=2) < 1e-6
    # an odd shift cannot be matched by any output shift (the even lattice moves)
    errs = [shift_error(conv, x, [1, 0], ndim=2, out_factor=f, margin=3) for f in (0.0, 1.0)]
    assert min(errs) > 1e-2
