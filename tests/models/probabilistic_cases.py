"""Checks shared by the tests of the probabilistic models (HPU-Net, ProbUNet): every function
takes a built model (a :class:`~unetkit.models.probabilistic.ProbabilisticSegmenter`) and inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.models.probabilistic import ElboOutput, ProbabilisticSegmenter


def inputs(model: nn.Module, shape: tuple[int, ...], n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image batch ``(n, C_in, *shape)`` and labels ``(n, *shape)`` with some ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model.in_channels, *shape, generator=g)
    labels = torch.randint(-1, model.out_channels, (n, *shape), generator=g)
    return x, labels


def check_shapes(model: nn.Module, shape: tuple[int, ...]) -> ElboOutput:
    """forward / sample / reconstruct / elbo_forward shapes; returns the ELBO output."""
    assert isinstance(model, ProbabilisticSegmenter)
    x, labels = inputs(model, shape)
    c = model.out_channels
    assert model(x).shape == (2, c, *shape)
    assert model.sample(x, 3).shape == (2, 3, c, *shape)
    assert model.reconstruct(x, labels).shape == (2, c, *shape)
    assert model.reconstruct(x, labels, sample=True).shape == (2, c, *shape)
    out = model.elbo_forward(x, labels)
    assert isinstance(out, ElboOutput)
    assert out.logits.shape == (2, c, *shape)
    assert out.kl.shape == (2, model.latent_scales)
    assert torch.isfinite(out.kl).all() and (out.kl >= 0).all()
    return out


@torch.no_grad()
def check_mean_sampling(model: nn.Module, shape: tuple[int, ...], some: tuple[int, ...] | None) -> None:
    """All scales at the mean: every sample == forward(x); only ``some`` at the mean: samples differ."""
    x, _ = inputs(model, shape)
    ref = model(x)
    samples = model.sample(x, 3, mean_scales=range(model.latent_scales))
    for k in range(3):
        torch.testing.assert_close(samples[:, k], ref, atol=1e-6, rtol=0)
    mixed = model.sample(x, 3, mean_scales=some or ())
    assert not torch.allclose(mixed[:, 0], mixed[:, 1], atol=1e-6)
    assert not torch.allclose(mixed[:, 0], ref, atol=1e-6)


@torch.no_grad()
def check_generator(model: nn.Module, shape: tuple[int, ...]) -> None:
    """A fixed generator makes sample, reconstruct(sample=True) and elbo_forward reproducible and
    leaves torch's global RNG alone."""
    x, labels = inputs(model, shape)
    state = torch.get_rng_state()
    a = model.sample(x, 2, generator=torch.Generator().manual_seed(3))
    b = model.sample(x, 2, generator=torch.Generator().manual_seed(3))
    c = model.sample(x, 2, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)
    r1 = model.reconstruct(x, labels, sample=True, generator=torch.Generator().manual_seed(5))
    r2 = model.reconstruct(x, labels, sample=True, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(r1, r2, atol=0, rtol=0)
    e1 = model.elbo_forward(x, labels, generator=torch.Generator().manual_seed(6))
    e2 = model.elbo_forward(x, labels, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(e1.logits, e2.logits, atol=0, rtol=0)
    assert torch.equal(torch.get_rng_state(), state)


def count_calls(module: nn.Module) -> list[int]:
    """A one-element counter incremented by a forward hook on ``module``."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


def check_gradients(model: nn.Module, shape: tuple[int, ...]) -> None:
    """loss = CE + KL sum through elbo_forward: every parameter (prior and posterior) gets a
    non-zero gradient."""
    x, labels = inputs(model, shape)
    out = model.elbo_forward(x, labels)
    loss = F.cross_entropy(out.logits, labels, ignore_index=-1) + out.kl.sum()
    loss.backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"
    assert any(n.startswith("posterior.") for n, _ in model.named_parameters())


def check_orthogonal_init(model: nn.Module) -> None:
    """Every convolution weight, seen as ``(out, in * prod(kernel))``, has orthonormal rows or
    columns; biases are tiny (truncated normal sigma 0.001)."""
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    assert convs
    for m in convs:
        w = m.weight.detach().reshape(m.weight.shape[0], -1)
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
        if m.bias is not None:
            assert m.bias.abs().max() <= 0.002 + 1e-9
