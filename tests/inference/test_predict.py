"""Whole-image prediction: output shapes for any size, alignment with the forward pass,
shift equivariance, channel handling and input errors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from unetkit.errors import InputError
from unetkit.inference import plan_tiles, predict
from unetkit.models import Tileable, UNet


@lru_cache(maxsize=None)
def _net(
    ndim: int = 2,
    depth: int = 2,
    padding: str = "valid",
    upsampling: str = "nearest",
    in_channels: int = 1,
    out_channels: int = 2,
    factor: int | tuple[int, ...] = 2,
    base_features: int = 2,
    gain: float = 1.8,
) -> UNet:
    """A small seeded U-Net in eval mode. ``gain`` scales every conv weight so that the deep
    levels contribute visibly to the output (at default init their share is ~1e-6, which would
    hide misalignments of the pooling grid)."""
    torch.manual_seed(0)
    net = UNet(in_channels, out_channels, ndim=ndim, depth=depth, factor=factor, base_features=base_features,
               padding=padding, upsampling=upsampling).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                m.weight.mul_(gain)
    return net


def _forward(net: UNet, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(image)[None, None])[0].numpy()


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- shapes

CONFIGS = [(nd, pad, up) for nd in (2, 3) for pad in ("valid", "same") for up in ("nearest", "transposed")]


@settings(max_examples=12, deadline=None)
@given(data=st.data(), config=st.sampled_from(CONFIGS))
def test_output_has_image_shape(data: st.DataObject, config: tuple[int, str, str]) -> None:
    ndim, padding, upsampling = config
    depth, hi = (2, 40) if ndim == 2 else (1, 9)
    shape = data.draw(st.tuples(*[st.integers(1, hi)] * ndim), label="shape")
    net = _net(ndim=ndim, depth=depth, padding=padding, upsampling=upsampling)
    out = predict(net, _image(shape))
    assert out.shape == (2, *shape)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), config=st.sampled_from(CONFIGS), depth=st.integers(1, 4))
def test_single_tile_plan_gives_smallest_covering_output(data: st.DataObject, config: tuple[int, str, str], depth: int) -> None:
    ndim, padding, _ = config
    factor = data.draw(st.sampled_from([2, 3] if ndim == 2 else [2, (1, 2, 2)]), label="factor")
    geo = UNet(1, 1, ndim=ndim, depth=depth, factor=factor, padding=padding, base_features=1)  # type: ignore[arg-type]
    shape = data.draw(st.tuples(*[st.integers(1, 300)] * ndim), label="shape")
    plan = plan_tiles(geo, shape, memory_budget=None)
    assert plan.n_tiles == 1
    out_shape = plan.output_shape
    assert geo.output_shape(plan.input_shape) == out_shape  # a valid tile
    min_out = geo.output_shape(geo.min_input_shape())
    for n, o, step, m, axis, h in zip(shape, out_shape, geo.shift_period, min_out, plan.axes, geo.halo):
        (tile,) = axis
        before, d = -tile.input_start, tile.keep_start
        margin = h if padding == "valid" else 0
        assert before % step == 0  # the pooling grid starts at image pixel 0
        assert before - margin == d and 0 <= d < step  # output pixel d sits on image pixel 0
        assert (tile.image_start, tile.image_stop) == (0, n)
        assert o >= n + d  # covers the image
        assert o == m or o - step < n + d  # and is the smallest valid output that does


def test_plan_needs_the_tileable_protocol() -> None:
    """A model without the protocol is refused naming what it lacks; one member missing is named alone."""
    with pytest.raises(InputError, match=r"Conv2d cannot be tiled: it lacks ndim, halo, shift_period, .*activation_bytes of the Tileable"):
        plan_tiles(nn.Conv2d(1, 1, 3), (10, 10))
    with pytest.raises(InputError, match=r"Conv2d cannot be tiled"):
        predict(nn.Conv2d(1, 1, 3), np.zeros((10, 10), np.float32))

    class NoMemoryEstimate:
        """A U-Net's members, all but ``activation_bytes``."""

        def __getattr__(self, name: str) -> object:
            if name == "activation_bytes":
                raise AttributeError(name)
            return getattr(_net(), name)

    net = NoMemoryEstimate()
    assert not isinstance(net, Tileable)
    with pytest.raises(InputError, match=r"lacks activation_bytes of the Tileable protocol"):
        plan_tiles(net, (10, 10))
    assert isinstance(_net(), Tileable)


# ----------------------------------------------------------------------------- alignment


@pytest.mark.parametrize(
    ("ndim", "depth", "factor", "upsampling"),
    [(2, 1, 2, "nearest"), (2, 2, 2, "nearest"), (2, 2, 2, "transposed"), (3, 1, (1, 2, 2), "nearest")],
)
def test_predict_equals_forward_pass_on_valid_input(ndim: int, depth: int, factor: int | tuple[int, ...], upsampling: str) -> None:
    """Output pixel i of predict sits on image pixel i: on a valid-size image, predict cropped by
    the halo is the direct forward pass (exactly equal where the halo is a multiple of the shift
    period, so both passes use the same pooling grid)."""
    net = _net(ndim=ndim, depth=depth, factor=factor, upsampling=upsampling)
    h, period = net.halo, net.shift_period
    assert all(x % p == 0 for x, p in zip(h, period))
    near = (2 * h[0] + 9, 2 * h[1] + 13) if ndim == 2 else (2 * h[0] + 5, 2 * h[1] + 7, 2 * h[2] + 6)
    shape = net.valid_input_shapes(near)[0]
    image = _image(shape)
    direct = _forward(net, image)
    pred = predict(net, image)
    crop = tuple(slice(hh, hh + o) for hh, o in zip(h, direct.shape[1:]))
    np.testing.assert_allclose(pred[(slice(None), *crop)], direct, atol=1e-5, rtol=0)
    # sanity: a one-pixel misalignment would be visible at this tolerance
    off = tuple(slice(hh + 1, hh + 1 + o) for hh, o in zip(h, direct.shape[1:]))
    assert np.abs(pred[(slice(None), *off)] - direct).max() > 1e-3


@pytest.mark.parametrize("depth", [3, 4])
def test_predict_equals_forward_pass_deeper(depth: int) -> None:
    """Halo 44 (depth 3) and 92 (depth 4) are not multiples of f^l: the grid must still match."""
    net = _net(depth=depth, base_features=4)
    h = net.halo[0]
    image = _image(net.valid_input_shapes((2 * h + 36, 2 * h + 36))[0])
    direct = _forward(net, image)
    o = direct.shape[-1]
    np.testing.assert_allclose(predict(net, image)[:, h : h + o, h : h + o], direct, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("padding", "upsampling"), [("valid", "nearest"), ("valid", "transposed"), ("same", "nearest"), ("same", "transposed")]
)
def test_shift_by_period_commutes_with_predict(padding: str, upsampling: str) -> None:
    net = _net(padding=padding, upsampling=upsampling)
    h, p = net.halo[0], net.shift_period[0]
    big = _image((71, 66), seed=1)
    small = big[p:, 2 * p :]  # the same image shifted by (p, 2p)
    a, b = predict(net, big), predict(net, small)
    m = h + p  # away from every border of both images
    inner_b = b[:, m : small.shape[0] - m, m : small.shape[1] - m]
    inner_a = a[:, p + m : p + small.shape[0] - m, 2 * p + m : 2 * p + small.shape[1] - m]
    assert inner_b.size > 0
    np.testing.assert_allclose(inner_b, inner_a, atol=1e-5, rtol=0)
    if padding == "valid":  # a shift by one pixel is not a symmetry
        moved = predict(net, big[1:, :])
        assert np.abs(moved[:, m : 40, m : 40] - a[:, m + 1 : 41, m : 40]).max() > 1e-3


# ----------------------------------------------------------------------------- channels, stacks


def test_channel_axis_optional_for_one_channel_models() -> None:
    net = _net()
    image = _image((23, 30))
    out = predict(net, image)
    np.testing.assert_array_equal(predict(net, image[None]), out)
    np.testing.assert_array_equal(predict(net, image.astype(np.float64)), out)
    # integer images are accepted and converted
    ints = (np.arange(23 * 30).reshape(23, 30) % 7).astype(np.uint8)
    np.testing.assert_allclose(predict(net, ints), predict(net, ints.astype(np.float32)))


def test_stack_matches_single_images() -> None:
    net = _net(in_channels=2, out_channels=3)
    stack = _image((3, 2, 19, 25))
    for batch_size in (1, 2, 5):
        out = predict(net, stack, batch_size=batch_size)
        assert out.shape == (3, 3, 19, 25)
        for k in range(3):
            np.testing.assert_allclose(out[k], predict(net, stack[k]), atol=1e-6, rtol=0)


def test_predict_uses_eval_mode_and_restores_training() -> None:
    torch.manual_seed(0)
    net = UNet(1, 2, depth=2, base_features=2, norm="batch")
    with torch.no_grad():  # non-trivial running statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    image = _image((16, 16))
    net.train()
    out = predict(net, image)
    assert net.training
    net.eval()
    np.testing.assert_array_equal(predict(net, image), out)
    assert not net.training


@pytest.mark.parametrize(
    ("in_channels", "shape"),
    [
        (2, (20, 20)),  # channel axis omitted for a 2-channel model
        (2, (3, 20, 20)),  # wrong channel count
        (1, (2, 20, 20)),  # 2 channels for a 1-channel model
        (1, (20,)),  # too few axes
        (1, (1, 1, 1, 20, 20)),  # too many axes for a 2-D model
        (2, (4, 3, 20, 20)),  # stack with the wrong channel count
    ],
)
def test_bad_shapes_raise_input_error(in_channels: int, shape: tuple[int, ...]) -> None:
    net = _net(in_channels=in_channels)
    with pytest.raises(InputError, match=r"\(" + ", ".join(map(str, shape)) + r",?\)"):
        predict(net, np.zeros(shape, np.float32))


def test_bad_dtypes_raise_input_error() -> None:
    net = _net()
    with pytest.raises(InputError, match=r"\(8, 8\).*complex"):
        predict(net, np.zeros((8, 8), np.complex64))
    with pytest.raises(InputError, match=r"\(8, 8\)"):
        predict(net, np.full((8, 8), "a"))
