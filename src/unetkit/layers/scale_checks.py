"""Measured equivariance of the scale-space layers and of whole networks (for tests and the README table).

Two errors, both relative: ``max |a - b| / max |b|`` over an interior window (away from the
border by ``margin`` pixels of the finer input, so padding does not count).

* Shift: ``layer(shift(x, t))`` against ``shift(layer(x), t * out_factor)`` for a shift ``t`` by a
  multiple of the layer's period (``out_factor`` = 1/2 after stride 2, 2 after upsampling).
  Exact layers give float rounding (~1e-7).
* Scale: test images are 2x-upsampled base images, ``f = U_2 b`` (linear, so ``D_2 f = b``
  exactly), with ``b`` smooth noise. For lifted outputs, ``Phi(D_2 f)[k]`` against
  ``D_2 Phi(f)[k + 1]`` for k = 0..S-2 (the semigroup action moves every scale one index
  down, so the coarsest scale has no counterpart); for networks (projected outputs),
  ``net(D_2 f)`` against ``D_2 net(f)``.

:func:`equivariance_errors` measures every layer type and SEU-Net against a U-Net of the same width
(random weights, eval mode); ``python -m unetkit.layers.scale_checks`` prints the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from unetkit.layers.scale_conv import ScaleBatchNorm, ScaleConv
from unetkit.layers.scale_lift import GaussianLift, gaussian_blur
from unetkit.layers.scale_projection import ScaleProjection
from unetkit.layers.scale_sampling import (
    QuadraticDilationPool,
    ScaleMaxPool,
    ScaleUpsample,
    lattice_upsample,
)


def smooth_image(shape: Sequence[int], *, channels: int = 1, sigma: float = 2.0, seed: int = 0) -> Tensor:
    """Gaussian-smoothed white noise ``(1, channels, *shape)``, float32, unit standard deviation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, *shape, generator=g)
    x = gaussian_blur(x, sigma, len(shape))
    return (x - x.mean()) / x.std()


def _interior(x: Tensor, ndim: int, margin: int | Sequence[int]) -> Tensor:
    """``x`` without ``margin`` pixels (one value, or one per axis) at both ends of its last ``ndim`` axes."""
    margins = [margin] * ndim if isinstance(margin, int) else list(margin)
    return x[(..., *(slice(m, x.shape[x.dim() - ndim + i] - m) for i, m in enumerate(margins)))]


def _relative(a: Tensor, b: Tensor) -> float:
    if b.numel() == 0:
        raise ValueError(f"nothing left to compare after the margins (shape {tuple(b.shape)}); use larger inputs")
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _subsample(x: Tensor, ndim: int) -> Tensor:
    return x[(..., *([slice(None, None, 2)] * ndim))]


def shift_error(fn: Callable[[Tensor], Tensor], x: Tensor, shift: Sequence[int], *, ndim: int,
                out_factor: float = 1.0, margin: int = 0) -> float:
    """Relative max error of ``fn(roll(x, shift))`` against ``roll(fn(x), shift * out_factor)``.

    ``x`` is ``(N, C, *spatial)`` (or lifted); the rolled-in wrap-around and ``margin`` pixels of
    the *output* at each border are left out of the comparison.
    """
    dims = tuple(range(-ndim, 0))
    out_shift = [round(s * out_factor) for s in shift]
    with torch.no_grad():
        a = fn(torch.roll(x, tuple(shift), dims))
        b = torch.roll(fn(x), tuple(out_shift), dims)
    margins = [margin + abs(s) for s in out_shift]
    return _relative(_interior(a, ndim, margins), _interior(b, ndim, margins))


def lifted_scale_error(fn: Callable[[Tensor], Tensor], base: Tensor, *, ndim: int, margin: int = 0,
                       unreached: int = 0) -> float:
    """Relative max error of ``fn(b)[:, :, k]`` against ``D_2 fn(U_2 b)[:, :, k + 1]``,
    k = 0..S-2-``unreached``.

    ``fn`` maps images ``(N, C, *spatial)`` to lifted features ``(N, C', S, *spatial')``; ``margin``
    is in pixels of ``fn(b)``. ``unreached``: coarsest scales left out because their taps reach past
    S-1 (``(J - 1)`` per ScaleConv of scale depth J): there the lifting of ``b`` has a scale that
    ``U_2 b`` lacks, which the truncated range excludes.
    """
    fine = lattice_upsample(base, 2, "linear", ndim)
    with torch.no_grad():
        coarse = fn(base)
        keep = coarse.shape[2] - 1 - unreached
        coarse_out = coarse[:, :, :keep]
        fine_out = _subsample(fn(fine), ndim)[:, :, 1:keep + 1]
    return _relative(_interior(coarse_out, ndim, margin), _interior(fine_out, ndim, margin))


def image_scale_error(fn: Callable[[Tensor], Tensor], base: Tensor, *, ndim: int, margin: int = 0) -> float:
    """Relative max error of ``fn(b)`` against ``D_2 fn(U_2 b)`` for image-to-image ``fn``."""
    fine = lattice_upsample(base, 2, "linear", ndim)
    with torch.no_grad():
        a = fn(base)
        b = _subsample(fn(fine), ndim)
    return _relative(_interior(a, ndim, margin), _interior(b, ndim, margin))


def _eval(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in module.parameters():
        nn.init.normal_(p, 0.0, 0.3)
    return module.eval()


def action_error(fn: Callable[[Tensor], Tensor], lifted: Tensor, *, ndim: int, margin: int = 0) -> float:
    """Relative max error of ``fn(R G)`` against ``R fn(G)`` for lifted ``G`` ``(N, C, S, *spatial)``,
    with the scale action ``(R G)(k, x) = G(k + 1, 2 x)`` (k = 0..S-2); for a projected (image)
    output ``R`` is just ``D_2``. ``margin`` is in pixels of ``fn(R G)``. Measures a layer alone, on
    features that are exactly related by the action (no lifting error)."""
    acted = _subsample(lifted[:, :, 1:], ndim)
    with torch.no_grad():
        a = fn(acted)
        full = fn(lifted)
    b = _subsample(full[:, :, 1:] if full.dim() == lifted.dim() else full, ndim)
    return _relative(_interior(a, ndim, margin), _interior(b, ndim, margin))


def equivariance_errors(ndim: int = 2, size: int = 96, scales: int = 4,
                        net_margin: int = 16) -> dict[str, dict[str, float]]:
    """Measured relative errors ``{name: {"shift": e, "scale": e, "scale after lift": e}}``.

    * ``"shift"``: :func:`shift_error` for a shift by 2 per axis (4 for the networks).
    * ``"scale"``: :func:`action_error`, the layer alone on lifted smooth noise.
    * ``"scale after lift"``: :func:`lifted_scale_error` / :func:`image_scale_error` of lifting then
      the layer on a 2x-upsampled base image (includes the lifting's own error; for J > 1 only the
      scales inside the truncated range, k <= S-1-J).

    ``nan`` where a measurement does not apply. Also ``"SEU-Net"`` and ``"U-Net"`` (same width:
    depth 2, 8 base features, random weights N(0, 0.3), eval mode, same padding), compared at pixels
    at least ``net_margin`` base pixels from the border (their receptive fields reach further: the
    network numbers include some border effect).

    Layers are compared at pixels farther than the lifting radius plus 2^S (in the layer's input
    resolution) from the border, so ``size`` (the base image's edge; the fine image and the shift
    test use ``2 * size``) must exceed twice that.
    """
    from unetkit.models import SEUNet, UNet

    nan = float("nan")
    lift = GaussianLift(ndim, scales)
    margin = lift.radius + 2**scales
    base = smooth_image((size,) * ndim, channels=2, seed=1)
    fine = smooth_image((2 * size,) * ndim, channels=2, seed=2)
    lifted = lift(fine)
    shift = [2] * ndim
    layers: dict[str, tuple[nn.Module, float]] = {
        "ScaleConv J=1": (ScaleConv(2, 3, ndim), 1.0),
        "ScaleConv J=2 truncate": (ScaleConv(2, 3, ndim, scale_depth=2), 1.0),
        "ScaleConv J=2 repeat": (ScaleConv(2, 3, ndim, scale_depth=2, scale_boundary="repeat"), 1.0),
        "ScaleConv stride 2": (ScaleConv(2, 3, ndim, stride=2), 0.5),
        "QuadraticDilationPool": (QuadraticDilationPool(ndim), 0.5),
        "ScaleMaxPool": (ScaleMaxPool(ndim), 0.5),
        "ScaleUpsample linear": (ScaleUpsample(ndim, 2, "linear"), 2.0),
        "ScaleUpsample nearest": (ScaleUpsample(ndim, 2, "nearest"), 2.0),
        "ScaleBatchNorm (eval)": (ScaleBatchNorm(2), 1.0),
        "ScaleProjection max": (ScaleProjection("max"), 1.0),
        "ScaleProjection mean": (ScaleProjection("mean"), 1.0),
    }
    out: dict[str, dict[str, float]] = {
        "GaussianLift": {
            "shift": shift_error(lift, fine, shift, ndim=ndim, margin=lift.radius),
            "scale": nan,
            "scale after lift": lifted_scale_error(lift, base, ndim=ndim, margin=lift.radius),
        }
    }
    for name, (layer, factor) in layers.items():
        layer = _eval(layer)
        m = int(margin * factor)
        after = nan
        if factor != 2.0:  # upsampled outputs of a base image have no finer counterpart
            measure = lifted_scale_error if "Projection" not in name else image_scale_error
            extra = {"unreached": layer.scale_depth - 1} if isinstance(layer, ScaleConv) else {}
            after = measure(lambda x, f=layer: f(lift(x)), base, ndim=ndim, margin=m, **extra)
        out[name] = {
            "shift": shift_error(layer, lifted, shift, ndim=ndim, out_factor=factor, margin=m),
            "scale": action_error(layer, lifted, ndim=ndim, margin=m // 2),
            "scale after lift": after,
        }
    torch.manual_seed(0)
    nets = {
        "SEU-Net": SEUNet(2, 3, ndim, depth=2, base_features=8, scales=scales).eval(),
        "U-Net": UNet(2, 3, ndim, depth=2, base_features=8, padding="same", norm="batch").eval(),
    }
    for name, net in nets.items():
        out[name] = {
            "shift": shift_error(net, smooth_image((2 * size,) * ndim, channels=2, seed=3), [4] * ndim, ndim=ndim,
                                 margin=2 * net_margin),
            "scale": nan,
            "scale after lift": image_scale_error(net, base, ndim=ndim, margin=net_margin),
        }
    return out


def format_table(errors: dict[str, dict[str, float]]) -> str:
    """The errors as a Markdown table."""
    lines = ["| layer / network | shift | scale (layer alone) | scale (lift, then layer; network) |",
             "|---|---|---|---|"]
    for name, e in errors.items():
        cells = ["-" if math.isnan(v) else f"{v:.1e}" for v in (e["shift"], e["scale"], e["scale after lift"])]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(equivariance_errors()))
