"""The fast inference path (channels-last, batch-norm folding, inference mode) stays within 1e-5 of
the plain model and leaves the caller's model exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unetkit.inference import predict
from unetkit.inference.fast import channels_last_format, fast_layout, forward_batch, input_format, to_fast_layout
from unetkit.models import UNet


def model_with(norm: str | None, ndim: int, upsampling: str = "nearest", seed: int = 0) -> UNet:
    """A He-initialised U-Net (outputs of std ~1, max ~5-10, like a trained net's logits) whose
    norm layers are not the identity (random running statistics and affine parameters)."""
    torch.manual_seed(seed)
    net = UNet(2, 3, ndim=ndim, depth=2, base_features=8 if ndim == 2 else 4, norm=norm,  # type: ignore[arg-type]
               upsampling=upsampling)  # type: ignore[arg-type]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # He: activations keep their scale
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.GroupNorm, nn.modules.batchnorm._NormBase)) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net


def snapshot(net: nn.Module) -> tuple[list, dict, list]:
    params = list(net.parameters())
    return params, {k: v.clone() for k, v in net.state_dict().items()}, [p.stride() for p in params]


def assert_unchanged(net: nn.Module, before: tuple[list, dict, list]) -> None:
    params, state, strides = before
    now = list(net.parameters())
    assert len(now) == len(params) and all(a is b for a, b in zip(now, params))  # the same Parameter objects
    assert [p.stride() for p in now] == strides
    after = net.state_dict()
    assert after.keys() == state.keys()
    assert all(torch.equal(after[k], state[k]) for k in state)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("norm", [None, "batch", "group", "instance"])
def test_fast_batch_within_1e5_of_plain_model(ndim: int, norm: str | None) -> None:
    """No norm / batch norm: channels-last (+ folding) within 1e-5; group / instance norm keep NCHW
    and give the plain model's outputs bitwise."""
    net = model_with(norm, ndim, upsampling="transposed" if norm == "batch" else "nearest").eval()
    shape = net.valid_input_shapes((60,) * ndim if ndim == 2 else (28, 28, 28))[0]
    batch = np.random.default_rng(1).normal(size=(3, 2, *shape)).astype(np.float32)
    with torch.no_grad():
        plain = net(torch.from_numpy(batch)).numpy()
    assert plain.std() > 0.2 and 1 < np.abs(plain).max() < 20  # outputs of a typical scale
    before = snapshot(net)
    net.train()  # predict puts it in eval mode and back
    with fast_layout(net, ndim) as fmt:
        assert not net.training
        left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        fast = norm in (None, "batch")
        assert fmt == (channels_last_format(ndim) if fast else torch.contiguous_format) == input_format(net, ndim)
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
        assert all(c.weight.is_contiguous(memory_format=fmt) for c in convs)
        result = forward_batch(net, batch, torch.device("cpu"), fmt)
    assert net.training
    assert_unchanged(net, before)
    assert left == 0  # every batch norm was folded into its convolution (5 conv blocks x 2 at depth 2)
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()) == 10 * (norm == "batch")
    assert result.shape == plain.shape and result.dtype == np.float32
    if fast:
        np.testing.assert_allclose(result, plain, rtol=0, atol=1e-5)
    else:
        np.testing.assert_array_equal(result, plain)


def test_restored_after_an_error() -> None:
    net = model_with("batch", 2).eval()
    before = snapshot(net)
    with pytest.raises(RuntimeError, match="boom"), fast_layout(net, 2):
        raise RuntimeError("boom")
    assert_unchanged(net, before)
    assert not net.training


def test_predict_is_fast_and_within_1e5_of_the_plain_forward_pass() -> None:
    """predict (whole image, one tile) against the plain model's own forward pass; the model's
    parameters afterwards are the same objects with the same values (an optimizer holds them)."""
    net = model_with("batch", 2, seed=3).eval()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    shape = net.valid_input_shapes((92, 92))[0]
    image = np.random.default_rng(2).normal(size=(2, *shape)).astype(np.float32)
    with torch.no_grad():
        plain = net(torch.from_numpy(image)[None])[0].numpy()
    h = net.halo
    pred = predict(net, image)[(slice(None), *(slice(a, a + o) for a, o in zip(h, plain.shape[1:])))]
    np.testing.assert_allclose(pred, plain, rtol=0, atol=1e-5)
    assert all(p is q for p, q in zip(optimizer.param_groups[0]["params"], net.parameters()))


def test_to_fast_layout_is_permanent_and_equal_to_the_context() -> None:
    """The dask workers' permanent rewrite and the in-process context give bitwise equal outputs."""
    a, b = model_with("batch", 3).eval(), model_with("batch", 3).eval()
    shape = a.valid_input_shapes((28, 28, 28))[0]
    batch = np.random.default_rng(4).normal(size=(2, 2, *shape)).astype(np.float32)
    fmt = to_fast_layout(b, 3)
    assert fmt == torch.channels_last_3d and not any(isinstance(m, nn.BatchNorm3d) for m in b.modules())
    with fast_layout(a, 3) as fmt_a:
        x = forward_batch(a, batch, torch.device("cpu"), fmt_a)
    np.testing.assert_array_equal(x, forward_batch(b, batch, torch.device("cpu"), fmt))
