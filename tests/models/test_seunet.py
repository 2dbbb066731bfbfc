"""SEU-Net and SResNet: shapes in 2-D and 3-D, size rules, Tileable members, shift and scale
equivariance of the whole network, config validation, a short training run and tiled prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import ConfigError, ShapeError
from unetkit.inference import predict
from unetkit.layers.scale_checks import image_scale_error, shift_error, smooth_image
from unetkit.models import SEUNet, SResNet, UNet, as_tileable, create_model, list_models


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _eval(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("subsampling", "upsampling", "projection"),
                         [("strided", "linear", "max"), ("quadratic", "nearest", "mean"), ("maxpool", "linear", "max")])
def test_seunet_forward_shapes(ndim: int, subsampling: str, upsampling: str, projection: str) -> None:
    net = SEUNet(2, 3, ndim, depth=2, base_features=2, scales=2 if ndim == 3 else 3, scale_depth=2,
                 subsampling=subsampling, upsampling=upsampling, projection=projection)  # type: ignore[arg-type]
    shape = (8,) * ndim if ndim == 3 else (12, 16)
    x = torch.randn(2, 2, *shape)
    assert net(x).shape == (2, 3, *shape)
    assert net.output_shape(shape) == shape
    assert net.lifted_features(x).shape == (2, 3, net.scales, *shape)


@pytest.mark.parametrize("ndim", [2, 3])
def test_sresnet_forward_shapes(ndim: int) -> None:
    net = SResNet(1, 4, ndim, depth=2, base_features=2, scales=2, upsampling="nearest" if ndim == 3 else "linear")
    shape = (8,) * ndim if ndim == 3 else (12, 20)
    assert net(torch.randn(1, 1, *shape)).shape == (1, 4, *shape)


@pytest.mark.parametrize("cls", [SEUNet, SResNet])
def test_size_rules_and_tileable_members(cls: type) -> None:
    net = cls(1, 2, depth=2, base_features=2, scales=2)
    assert as_tileable(net) is net
    assert net.padding == "same"
    assert net.shift_period == (4, 4)
    assert net.min_input_shape() == (4, 4)
    assert not net.tiling_exact and "tile border" in net.tiling_inexact_reason
    assert net.is_valid_input((12, 16)) and not net.is_valid_input((12, 15))
    assert net.valid_input_shapes((12, 15))[0] == (12, 16)
    assert net.input_shape_for((8, 8)) == (8, 8)
    with pytest.raises(ShapeError, match=rf"not valid for this {cls.__name__} .*\(12, 16\)"):
        net(torch.zeros(1, 1, 12, 15))
    with pytest.raises(ShapeError, match="channels"):
        net(torch.zeros(1, 3, 12, 16))
    with pytest.raises(ShapeError, match="2-D image batch"):
        net(torch.zeros(1, 1, 2, 12, 16))
    small, big = net.activation_bytes((32, 32)), net.activation_bytes((64, 64), batch_size=2)
    assert 0 < small < big
    assert cls(1, 2, depth=2, base_features=2, scales=4).activation_bytes((32, 32)) > small


def test_halo_is_the_receptive_field_bound() -> None:
    """depth 1, S = 2: lift radius ceil(4 * 0.866) = 4; 3x3 convs at dilation 2 reach 2 px each:
    2 encoder convs (4) + strided conv (2) + 2 bottleneck convs at half resolution (8) + the
    upsampling (2) + 2 decoder convs (4) = 24. Grows as 2^(S-1) 2^depth."""
    assert SEUNet(1, 2, depth=1, base_features=2, scales=2).halo == (24, 24)
    assert SEUNet(1, 2, depth=2, base_features=2, scales=4).halo[0] > 4 * SEUNet(1, 2, depth=1, scales=2).halo[0]
    assert SResNet(1, 2, ndim=3, depth=1, base_features=2, scales=2).halo == (14, 14, 14)


@pytest.mark.parametrize("cls", [SEUNet, SResNet])
@given(shift=st.lists(st.integers(-3, 3), min_size=2, max_size=2))
@settings(max_examples=4, deadline=None)
def test_network_is_shift_equivariant_for_its_period_away_from_the_border(cls: type, shift: list[int]) -> None:
    """Exact (< 1e-5) at pixels farther than halo + shift from the border: also checks that the halo
    bounds the receptive field."""
    net = _eval(cls(1, 2, depth=1, base_features=3, scales=2))
    x = torch.randn(1, 1, 76, 76)
    period = net.shift_period[0]
    err = shift_error(net, x, [period * s for s in shift], ndim=2, margin=net.halo[0])
    assert err < 1e-5


def test_odd_shift_is_not_equivariant() -> None:
    net = _eval(SEUNet(1, 2, depth=1, base_features=3, scales=2))
    x = torch.randn(1, 1, 76, 76)
    assert shift_error(net, x, [1, 0], ndim=2, margin=net.halo[0]) > 1e-3


def test_seunet_is_closer_to_scale_equivariant_than_unet() -> None:
    """Downscaling a 2x-upsampled smooth image: SEU-Net(D_2 f) vs D_2 SEU-Net(f), random weights.
    Measured (2-D, S = 3, depth 2, 64 px base, 12 px margin): SEU-Net 5.0e-2 (2.2e-2 .. 5.0e-2
    over weight seeds 0-2), U-Net 1.1e-1 relative max error."""
    base = smooth_image((64, 64), channels=1, seed=5)
    torch.manual_seed(0)
    se = _eval(SEUNet(1, 3, depth=2, base_features=4, scales=3))
    un = _eval(UNet(1, 3, depth=2, base_features=4, padding="same", norm="batch"))
    e_se = image_scale_error(se, base, ndim=2, margin=12)
    e_un = image_scale_error(un, base, ndim=2, margin=12)
    assert e_se < 0.1
    assert e_se < e_un


def test_scale_dropout_acts_in_training_only() -> None:
    net = SEUNet(1, 2, depth=1, base_features=4, scales=3, scale_dropout=0.5, norm="none")
    x = torch.randn(2, 1, 16, 16)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        net.train()
        torch.manual_seed(1)
        a = net(x)
        torch.manual_seed(2)
        assert not torch.allclose(a, net(x))


def test_registered_with_config_schemas() -> None:
    assert {"seunet", "sresnet"} <= set(list_models())
    net = create_model("seunet", depth=2, base_features=4, scales=3, subsampling="quadratic")
    assert isinstance(net, SEUNet) and net.subsampling == "quadratic"
    assert isinstance(create_model("sresnet", depth=1, scales=2), SResNet)
    with pytest.raises(ConfigError, match="subsampling"):
        create_model("seunet", subsampling="avg")
    with pytest.raises(ConfigError, match="scales"):
        create_model("seunet", scales=0)
    with pytest.raises(ConfigError, match="projection"):
        create_model("sresnet", projection="max")  # SResNet always averages


def test_trains_and_predicts_any_size(tmp_path: Path) -> None:
    """A short training run through the trainer, then tiled prediction on a size that is not a
    multiple of 2^depth (inexact tiling warns)."""
    from unetkit.data.synthetic import write_dataset
    from unetkit.training import Trainer, load_model, validate_config

    data = tmp_path / "data"
    write_dataset(data, 3, (32, 32), seed=3, semantic=True)
    cfg = {
        "out": str(tmp_path / "run"), "seed": 7, "task": {"name": "semantic"},
        "model": {"name": "seunet", "depth": 1, "base_features": 3, "scales": 2, "scale_dropout": 0.25},
        "data": {"train": {"images": str(data / "images"), "labels": str(data / "labels")}, "val_fraction": 0.34,
                 "patch_shape": [16, 16], "batch_size": 2},
        "training": {"iterations": 2, "val_every": 2, "checkpoint_every": 2, "device": "cpu"},
    }
    result = Trainer(validate_config(cfg), progress=False).fit()
    model = load_model(result.run_dir)
    assert isinstance(model, SEUNet)
    image = np.random.default_rng(0).standard_normal((1, 75, 83)).astype(np.float32)
    whole = predict(model, image, memory_budget=None)
    assert whole.shape[-2:] == (75, 83)
    with pytest.warns(UserWarning, match="not exact"):
        tiled = predict(model, image, tile_shape=(72, 96))
    assert tiled.shape == whole.shape
