"""Tile-and-stitch: tiled prediction equals whole-image prediction for valid U-Nets."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import ShapeError
from unetkit.inference import InexactTilingWarning, estimate_tile_bytes, plan_tiles, predict
from unetkit.models import UNet


@lru_cache(maxsize=None)
def net(ndim: int = 2, depth: int = 2, factor: int | tuple[int, ...] = 2, upsampling: str = "nearest",
        padding: str = "valid", out_channels: int = 2) -> UNet:
    """A small U-Net whose deep levels matter (weights scaled up, so a wrong pooling phase shows)."""
    torch.manual_seed(depth * 10 + ndim)
    model = UNet(1, out_channels, ndim=ndim, depth=depth, factor=factor, base_features=3, upsampling=upsampling,  # type: ignore[arg-type]
                 padding=padding).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.8)
    return model


def image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def coverage(plan) -> np.ndarray:  # noqa: ANN001
    count = np.zeros(plan.image_shape, dtype=np.int32)
    for t in plan.tiles():
        count[t.target] += 1
    return count


CONFIGS = [
    (2, 1, 2, "nearest"), (2, 2, 2, "transposed"), (2, 3, 2, "nearest"), (2, 2, 3, "nearest"),
    (2, 4, 2, "transposed"), (3, 1, 2, "transposed"), (3, 2, (1, 2, 2), "nearest"),
]


@settings(max_examples=40, deadline=None)
@given(config=st.sampled_from(CONFIGS), data=st.data())
def test_tiled_equals_whole_image(config: tuple, data: st.DataObject) -> None:
    """Any image size (primes included), any valid tile >= the minimum, any batch of tiles."""
    ndim, depth, factor, upsampling = config
    model = net(ndim, depth, factor, upsampling)
    geo = model.geometry
    hi = 130 if ndim == 2 else 20
    shape = data.draw(st.tuples(*[st.integers(1, hi)] * ndim), label="shape")
    extra = data.draw(st.tuples(*[st.integers(0, 2)] * ndim), label="extra periods")
    tile = geo.valid_input_shapes(tuple(m + e * p for m, e, p in zip(_min_tile(model), extra, geo.shift_period)))[0]
    batch = data.draw(st.integers(1, 3), label="batch")
    img = image(shape, data.draw(st.integers(0, 100), label="seed"))
    whole = predict(model, img, memory_budget=None)
    tiled = predict(model, img, tile_shape=tile, batch_size=batch)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)
    plan = plan_tiles(model, shape, tile_shape=tile)
    assert (coverage(plan) == 1).all()  # cores partition the image
    for axis, p in zip(plan.axes, geo.shift_period):
        if len(axis) > 1:
            assert all(a.image_start % p == 0 for a in axis)  # cores start on the f^l grid
            assert (axis[0].image_stop - axis[0].image_start) % p == 0  # and are n * f^l long


def _min_tile(model: UNet) -> tuple[int, ...]:
    from unetkit.inference.tiling import _min_tile as smallest

    return smallest(model, "exact")


def test_many_tiles_in_3d_are_exact() -> None:
    model = net(3, 2, 2, "transposed")
    img = image((30, 41, 37), 3)
    tile = _min_tile(model)
    plan = plan_tiles(model, img.shape, tile_shape=tile)
    assert plan.n_tiles > 8
    np.testing.assert_allclose(predict(model, img, tile_shape=tile, batch_size=4), predict(model, img, memory_budget=None),
                               rtol=0, atol=1e-5)


def test_uncropped_stitching_would_differ() -> None:
    """Control: keeping tile outputs that are not cut on the f^l grid gives seams (so the test above can fail)."""
    model = net(2, 3, 2, "nearest")
    img = image((120, 120), 5)
    whole = predict(model, img, memory_budget=None)
    geo = model.geometry
    tile = _min_tile(model)
    out = geo.output_shape(tile)
    shifted = np.zeros_like(whole)
    step = out[0]  # stitch whole output tiles (w > f^l), not n * f^l cores
    h = geo.halo[0]
    padded = np.pad(img, [(h, h + step), (h, h + step)], mode="reflect")
    for y in range(0, 120, step):
        for x in range(0, 120, step):
            window = torch.from_numpy(padded[y : y + tile[0], x : x + tile[1]][None, None].copy())
            with torch.no_grad():
                res = model(window)[0].numpy()
            ys, xs = min(step, 120 - y), min(step, 120 - x)
            shifted[:, y : y + ys, x : x + xs] = res[:, :ys, :xs]
    assert np.abs(shifted - whole).max() > 1e-3


def test_invalid_tile_is_refused_with_nearest() -> None:
    model = net(2, 4, 2, "nearest")
    with pytest.raises(ShapeError, match=r"nearest valid tile shapes: \(204, 204\)"):
        plan_tiles(model, (500, 500), tile_shape=(200, 200))
    with pytest.raises(ShapeError, match=r"smallest valid tile is \(204, 204\)"):
        plan_tiles(model, (500, 500), tile_shape=(188, 188))
    with pytest.raises(ShapeError, match="needs 2 values"):
        plan_tiles(model, (500, 500), tile_shape=(204,))


def test_memory_budget_picks_the_largest_fitting_tile() -> None:
    model = UNet(1, 2, depth=3, base_features=8)
    shape = (900, 700)
    sizes = []
    for budget in (20 << 20, 80 << 20, 320 << 20):
        plan = plan_tiles(model, shape, memory_budget=budget, batch_size=2)
        assert estimate_tile_bytes(model, plan.input_shape, 2) <= budget
        sizes.append(int(np.prod(plan.input_shape)))
        # one more period on every axis would not fit (or would exceed the whole image)
        bigger = tuple(t + p for t, p in zip(plan.input_shape, model.shift_period))
        whole = plan_tiles(model, shape, memory_budget=None).input_shape
        assert estimate_tile_bytes(model, bigger, 2) > budget or any(b > w for b, w in zip(bigger, whole))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    small = plan_tiles(model, (50, 60), memory_budget=1 << 40)
    assert small.n_tiles == 1


def test_same_padding_modes_warn_and_cover() -> None:
    model = net(2, 2, 2, "nearest", padding="same")
    img = image((150, 130), 1)
    whole = predict(model, img, memory_budget=None)
    for mode in ("halo-crop", "blend"):
        plan = plan_tiles(model, img.shape, tile_shape=(64, 64), mode=mode)  # type: ignore[arg-type]
        assert plan.n_tiles > 1
        if mode == "halo-crop":
            assert (coverage(plan) == 1).all()
        else:
            assert (coverage(plan) >= 1).all()
        with pytest.warns(UserWarning, match="not exact"):
            tiled = predict(model, img, tile_shape=(64, 64), mode=mode)  # type: ignore[arg-type]
        assert tiled.shape == whole.shape and np.isfinite(tiled).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(model, img, memory_budget=None)  # one tile: nothing to warn about
    with pytest.raises(ValueError, match="mode .exact."):
        plan_tiles(net(2, 2), (50, 50), mode="blend")


def test_out_of_core_source_and_target(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    model = net(2, 2, 2, "transposed")
    img = image((157, 203), 2)
    src = zarr.open_array(str(tmp_path / "src.zarr"), mode="w", shape=img.shape, chunks=(64, 64), dtype="f4")
    src[:] = img
    tgt = zarr.open_array(str(tmp_path / "tgt.zarr"), mode="w", shape=(2, *img.shape), chunks=(2, 32, 32), dtype="f4")
    tile = _min_tile(model)
    result = predict(model, src, tile_shape=tile, out=tgt)
    assert result is tgt
    np.testing.assert_allclose(tgt[:], predict(model, img, memory_budget=None), rtol=0, atol=1e-5)


def test_pixelwise_transform_keeps_exactness() -> None:
    model = net(2, 2, 2, "nearest")
    img = 1000 + 50 * image((90, 77), 4)

    def norm(window: np.ndarray) -> np.ndarray:
        return (window - 1000) / 50

    tile = _min_tile(model)
    np.testing.assert_allclose(predict(model, img, tile_shape=tile, transform=norm),
                               predict(model, (img - 1000) / 50, memory_budget=None), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- normalisation and exactness

NORMS = [None, "batch", "group", "instance"]
PER_TILE = {"group": "group normalisation", "instance": "instance normalisation"}


@lru_cache(maxsize=None)
def normed(norm: str | None, ndim: int = 2) -> UNet:
    """A small valid U-Net with ``norm`` whose statistics and affine parameters are not trivial
    (batch norm: random running statistics, used in eval mode)."""
    torch.manual_seed(11)
    factor = 2 if ndim == 2 else (1, 2, 2)
    model = UNet(1, 2, ndim=ndim, depth=2 if ndim == 2 else 1, factor=factor, base_features=4, norm=norm)  # type: ignore[arg-type]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
                m.weight.mul_(1.8)
    return model.eval()


@settings(max_examples=10, deadline=None)
@given(norm=st.sampled_from(NORMS), shape=st.tuples(st.integers(40, 100), st.integers(40, 100)),
       seed=st.integers(0, 100))
def test_per_tile_statistics_are_flagged_and_warned(norm: str | None, shape: tuple[int, int], seed: int) -> None:
    """No norm and batch norm (eval) tile exactly and say nothing; group and instance norm say they
    are not exact, and a multi-tile plan warns naming the cause (and does differ: the warning is due)."""
    model = normed(norm)
    assert model.tiling_exact is (norm not in PER_TILE)
    img = image(shape, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one tile: the whole-image prediction, never a warning
        whole = predict(model, img, memory_budget=None)
    tile = model.valid_input_shapes((76, 76))[0]
    assert plan_tiles(model, shape, tile_shape=tile).n_tiles > 1
    if norm in PER_TILE:
        with pytest.warns(InexactTilingWarning, match=f"{PER_TILE[norm]} computes statistics per tile"):
            tiled = predict(model, img, tile_shape=tile, batch_size=2)
        assert np.abs(tiled - whole).max() > 1e-3
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tiled = predict(model, img, tile_shape=tile, batch_size=2)
        np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(norm=st.sampled_from(["group", "instance"]), shape=st.tuples(st.integers(30, 130), st.integers(30, 130)),
       batch=st.integers(1, 3))
def test_inexact_model_takes_one_covering_tile_when_it_fits(norm: str, shape: tuple[int, int], batch: int) -> None:
    """A budget that holds the covering tile (as a batch of one, whatever batch_size) gives one tile:
    the whole-image prediction, bitwise, no warning. One byte less: the largest tiles that fit, on
    the shift-period grid, with a warning."""
    model = normed(norm)
    img = image(shape, 3)
    covering = plan_tiles(model, shape, memory_budget=None)
    need = model.activation_bytes(covering.input_shape, 1)
    plan = plan_tiles(model, shape, memory_budget=need, batch_size=batch)
    assert plan.n_tiles == 1 and plan.input_shape == covering.input_shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(predict(model, img, memory_budget=need, batch_size=batch),
                                      predict(model, img, memory_budget=None))
    small = plan_tiles(model, shape, memory_budget=need - 1, batch_size=batch)
    assert small.n_tiles > 1 and (coverage(small) == 1).all()
    assert model.activation_bytes(small.input_shape, batch) <= need - 1 or small.input_shape == _min_tile(model)
    for axis, p in zip(small.axes, model.shift_period):
        assert all(a.image_start % p == 0 for a in axis)  # exact grid placement kept
    with pytest.warns(InexactTilingWarning, match=f"{PER_TILE[norm]}.*raise memory_budget"):
        predict(model, img, memory_budget=need - 1, batch_size=batch)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_3d_norms(norm: str | None) -> None:
    """The 3-D preset's case (it had group norm, now batch): anisotropic 3-D U-Net; group norm
    warns and differs, batch norm in eval mode is exact."""
    model = normed(norm, ndim=3)
    img = image((14, 40, 37), 5)
    tile = model.valid_input_shapes((12, 28, 28))[0]
    assert plan_tiles(model, img.shape, tile_shape=tile).n_tiles >= 8
    whole = predict(model, img, memory_budget=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiled = predict(model, img, tile_shape=tile, batch_size=4)
    inexact = [w for w in caught if issubclass(w.category, InexactTilingWarning)]
    if norm in PER_TILE:
        assert len(inexact) == 1 and PER_TILE[norm] in str(inexact[0].message)
        assert np.abs(tiled - whole).max() > 1e-3
    else:
        assert not inexact
        np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)
