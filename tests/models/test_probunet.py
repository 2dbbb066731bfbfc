"""Probabilistic U-Net (sPU-Net): shapes in 2-D and 3-D, sampling control (mean, generator,
U-Net and prior once), gradients through the ELBO pass, orthogonal init, the global latent,
config validation and the Tileable members."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from probabilistic_cases import (
    check_generator,
    check_gradients,
    check_mean_sampling,
    check_orthogonal_init,
    check_shapes,
    count_calls,
    inputs,
)

from unetkit.errors import ConfigError, ShapeError
from unetkit.models import (
    ProbabilisticSegmenter,
    ProbUNet,
    UNet,
    as_tileable,
    create_model,
    gaussian_kl,
)
from unetkit.models.probabilistic import one_hot_labels


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(ndim: int = 2, **kw: object) -> ProbUNet:
    torch.manual_seed(0)
    return ProbUNet(1, 3, ndim, **{"depth": 2, "base_features": 4, "latent_dim": 3, **kw})


@pytest.mark.parametrize(("ndim", "shape", "norm"), [(2, (8, 12), "none"), (2, (8, 8), "batch"), (3, (4, 4, 8), "none")])
def test_shapes(ndim: int, shape: tuple[int, ...], norm: str) -> None:
    model = tiny(ndim, norm=norm)
    assert isinstance(model, ProbabilisticSegmenter) and model.latent_scales == 1
    out = check_shapes(model, shape)
    assert out.kl.shape == (2, 1)
    x, _ = inputs(model, shape)
    p = model.prior(x)
    assert p.mu.shape == p.logsigma.shape == (2, 3, *(1,) * ndim)  # one global latent per image
    assert model.unet(x).shape == (2, 4, *shape)  # the U-Net's last feature map


def test_mean_and_samples() -> None:
    check_mean_sampling(tiny(), (8, 8), some=None)
    with pytest.raises(ValueError, match="mean_scales"):
        tiny().sample(torch.zeros(1, 1, 8, 8), 2, mean_scales=(1,))


def test_generator_reproducible() -> None:
    check_generator(tiny(), (8, 8))


def test_sample_runs_unet_and_prior_once() -> None:
    model = tiny()
    unet, prior, combine, post = (count_calls(m) for m in (model.unet, model.prior, model.combine, model.posterior))
    with torch.no_grad():
        model.sample(torch.randn(2, 1, 8, 8), 4)
    assert unet == [1] and prior == [1] and combine == [1] and post == [0]


def test_elbo_uses_posterior_sample() -> None:
    model = tiny()
    x, labels = inputs(model, (8, 8))
    with torch.no_grad():
        q = model.posterior(torch.cat([x, one_hot_labels(labels, 3)], 1))
        p = model.prior(x)
        out = model.elbo_forward(x, labels, generator=torch.Generator().manual_seed(2))
        eps = torch.randn(q.mu.shape, generator=torch.Generator().manual_seed(2))
        z = q.mu + q.logsigma.exp() * eps
        feats = model.unet(x)
        torch.testing.assert_close(out.logits, model.combine(torch.cat([feats, z.expand(-1, -1, 8, 8)], 1)))
        torch.testing.assert_close(out.kl[:, 0], gaussian_kl(q.mu, q.logsigma, p.mu, p.logsigma).flatten(1).sum(1))
        torch.testing.assert_close(model.reconstruct(x, labels),
                                   model.combine(torch.cat([feats, q.mu.expand(-1, -1, 8, 8)], 1)))


def test_gradients_reach_prior_and_posterior() -> None:
    check_gradients(tiny(), (8, 8))


def test_orthogonal_init() -> None:
    check_orthogonal_init(tiny())


def test_config_validation() -> None:
    assert isinstance(create_model("probunet", depth=1, base_features=2), ProbUNet)
    with pytest.raises(ConfigError, match="model.latent_dim"):
        create_model("probunet", latent_dim=0)
    with pytest.raises(ConfigError, match="model.norm"):
        create_model("probunet", norm="group")
    with pytest.raises(ConfigError, match="model.depth"):
        create_model("probunet", depth=0)


def test_tileable_members() -> None:
    model = tiny()
    assert as_tileable(model) is model
    assert model.padding == "same" and not model.tiling_exact
    assert "same padding" in model.tiling_inexact_reason and "global latent" in model.tiling_inexact_reason
    assert model.shift_period == (4, 4) and model.min_input_shape() == (4, 4)
    with pytest.raises(ShapeError, match="not valid for this ProbUNet"):
        model(torch.zeros(1, 1, 8, 10))
    # halo = the same-padding U-Net's receptive-field radius
    assert model.halo == UNet(1, 2, depth=2, padding="same").halo == (20, 20)
    assert ProbUNet(1, 2).halo == (92, 92)  # default depth 4
    small = model.activation_bytes((32, 32))
    assert small > model.unet.activation_bytes((32, 32))
    assert model.activation_bytes((64, 64), batch_size=2) == pytest.approx(8 * small, rel=1e-6)


SIZE_MODEL = tiny(depth=1)


@settings(max_examples=8, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6))
def test_output_shape_matches_forward(h: int, w: int) -> None:
    shape = (2 * h, 2 * w)
    with torch.no_grad():
        y = SIZE_MODEL(torch.zeros(1, 1, *shape))
    assert tuple(y.shape[2:]) == SIZE_MODEL.output_shape(shape) == shape
