"""U-Net shapes and size arithmetic in 2-D and 3-D, both paddings, both upsamplings."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import ShapeError
from unetkit.models import UNet, UNetGeometry, create_model


@pytest.mark.parametrize(
    ("depth", "size", "expected"),
    [(4, 204, 20), (4, 236, 52), (3, 220, 132)],
)
def test_paper_sizes(depth: int, size: int, expected: int) -> None:
    """Numbers from the shift-equivariance paper (2 valid 3x3 convs per level, f = 2)."""
    net = UNet(1, 1, depth=depth, base_features=2)
    assert net.output_shape((size, size)) == (expected, expected)
    assert net.input_shape_for((expected, expected)) == (size, size)
    out = net(torch.zeros(1, 1, size, size))
    assert tuple(out.shape) == (1, 1, expected, expected)


def test_halo_and_shift_period() -> None:
    net = UNet(1, 1, depth=4)
    assert net.halo == (92, 92)
    assert net.shift_period == (16, 16)
    net3 = UNet(1, 1, ndim=3, depth=2, factor=(1, 2, 2))
    assert net3.shift_period == (1, 4, 4)
    # factor 1 along z: two convs per level on 2 + 1 = 3 levels on the way down and 2 up -> 5 blocks * 4 px / 2
    assert net3.halo[0] == 10


def test_invalid_size_names_nearest() -> None:
    net = UNet(1, 1, depth=4, base_features=2)
    with pytest.raises(ShapeError, match=r"\(204, 204\)"):
        net(torch.zeros(1, 1, 200, 200))
    with pytest.raises(ValueError, match="Nearest valid output shapes"):
        net.input_shape_for((21, 21))
    assert net.valid_input_shapes((200, 204))[0] == (204, 204)
    assert net.valid_input_shapes((204, 204)) == [(204, 204)]


def test_too_small_input_refused() -> None:
    net = UNet(1, 1, depth=4, base_features=2)
    smallest = net.geometry.min_input_shape()
    assert net.output_shape(smallest)[0] >= 1
    with pytest.raises(ShapeError):
        net.output_shape((smallest[0] - 16, smallest[1]))


def test_wrong_channels_or_rank() -> None:
    net = UNet(2, 1, depth=1, base_features=2)
    with pytest.raises(ShapeError, match="input channels"):
        net(torch.zeros(1, 1, 20, 20))
    with pytest.raises(ShapeError, match="4-D tensor"):
        net(torch.zeros(1, 2, 4, 20, 20))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="norm"):
        UNet(1, 1, norm="layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="upsampling"):
        UNet(1, 1, upsampling="bilinear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        UNet(1, 1, ndim=3, factor=(2, 2))
    with pytest.raises(ValueError, match="depth"):
        UNet(1, 1, depth=0)


def test_registry() -> None:
    net = create_model("unet", in_channels=1, out_channels=3, depth=2)
    assert isinstance(net, UNet)
    with pytest.raises(ValueError, match="known models"):
        create_model("vnet")


geometries = st.fixed_dictionaries(
    {
        "ndim": st.sampled_from([2, 3]),
        "depth": st.integers(1, 3),
        "factor": st.sampled_from([2, 3]),
        "padding": st.sampled_from(["valid", "same"]),
        "upsampling": st.sampled_from(["nearest", "transposed"]),
        "norm": st.sampled_from([None, "batch", "group", "instance"]),
        "convs": st.integers(1, 2),
    }
)


@settings(max_examples=30, deadline=None)
@given(cfg=geometries, near=st.integers(1, 60), data=st.data())
def test_forward_matches_arithmetic(cfg: dict, near: int, data: st.DataObject) -> None:
    """For random configurations the real forward pass has exactly the predicted output shape."""
    ndim = cfg["ndim"]
    if ndim == 3 and cfg["factor"] == 3 and cfg["depth"] > 2:
        cfg["depth"] = 2  # keep 3-D volumes small
    factor: int | tuple[int, ...] = cfg["factor"]
    if ndim == 3 and data.draw(st.booleans()):
        factor = (1, cfg["factor"], cfg["factor"])  # anisotropic
    net = UNet(
        1, 2, ndim=ndim, depth=cfg["depth"], factor=factor, base_features=2, convs_per_level=cfg["convs"],
        padding=cfg["padding"], upsampling=cfg["upsampling"], norm=cfg["norm"],
    ).eval()
    # instance/group norm need more than one pixel per channel in the bottleneck
    floor = tuple(m + p for m, p in zip(net.geometry.min_input_shape(), net.shift_period))
    shape = net.valid_input_shapes(tuple(max(near, f) for f in floor))[0]
    out_shape = net.output_shape(shape)
    assert net.input_shape_for(out_shape) == shape
    y = net(torch.randn(1, 1, *shape))
    assert tuple(y.shape) == (1, 2, *out_shape)
    if cfg["padding"] == "same":
        assert out_shape == shape
    else:
        assert all(s - o == 2 * h for s, o, h in zip(shape, out_shape, net.halo))
    # consecutive valid sizes differ by the shift period
    bigger = tuple(s + p for s, p in zip(shape, net.shift_period))
    assert net.geometry.is_valid_input(bigger)
    assert not net.geometry.is_valid_input(tuple(s + 1 for s in shape)) or any(p == 1 for p in net.shift_period)


@settings(max_examples=40, deadline=None)
@given(
    depth=st.integers(1, 4),
    factor=st.integers(2, 4),
    convs=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    n=st.integers(1, 400),
)
def test_geometry_is_consistent(depth: int, factor: int, convs: int, padding: str, n: int) -> None:
    """Nearest valid shapes are valid, really nearest, and round-trip through input_shape_for."""
    geo = UNetGeometry(1 + 1, depth, (factor, factor), convs, 3, padding)  # type: ignore[arg-type]
    candidates = geo.valid_input_shapes((n, n))
    assert 1 <= len(candidates) <= 4
    best = candidates[0][0]
    assert geo.is_valid_input((best, best))
    # brute force: no valid size strictly closer to n exists
    lo, hi = max(1, n - abs(best - n)), n + abs(best - n)
    closer = [m for m in range(lo, hi + 1) if abs(m - n) < abs(best - n) and geo.is_valid_input((m, m))]
    assert closer == []
    out = geo.output_shape((best, best))
    assert geo.input_shape_for(out) == (best, best)
    period = factor**depth
    assert geo.shift_period == (period, period)
    assert geo.output_shape((best + period, best + period))[0] == out[0] + period


def test_deterministic_with_seed() -> None:
    torch.manual_seed(0)
    a = UNet(1, 2, depth=2, base_features=4)
    torch.manual_seed(0)
    b = UNet(1, 2, depth=2, base_features=4)
    x = torch.randn(1, 1, 44, 44)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_gradients_flow_to_all_parameters() -> None:
    net = UNet(1, 2, depth=2, base_features=4, upsampling="transposed", norm="batch")
    net(torch.randn(2, 1, 44, 44)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("norm", [None, "none", "batch", "group", "instance"])
def test_tiling_exactness_is_declared(norm: str | None, padding: str) -> None:
    """Exact iff valid padding and no per-tile statistics; the reason names every cause."""
    from unetkit.models import Tileable

    net = UNet(1, 1, depth=1, base_features=2, padding=padding, norm=norm)  # type: ignore[arg-type]
    assert isinstance(net, Tileable)
    per_tile = norm in ("group", "instance")
    assert net.tiling_exact is (padding == "valid" and not per_tile)
    reason = net.tiling_inexact_reason
    assert (reason == "") is net.tiling_exact
    assert (f"{norm} normalisation computes statistics per tile" in reason) is per_tile
    assert ("zero padding" in reason) is (padding == "same")


def test_activation_bytes_grows_with_tile_and_batch() -> None:
    net = UNet(1, 2, depth=3, base_features=8)
    small, big = net.valid_input_shapes((100, 100))[0], net.valid_input_shapes((300, 300))[0]
    a = net.activation_bytes(small)
    assert 0 < a < net.activation_bytes(big) and net.activation_bytes(small, 3) == pytest.approx(3 * a, rel=1e-6)
    assert net.activation_bytes(small) >= 4 * (1 + 2 + 8) * small[0] * small[1]  # at least input, output, one map
