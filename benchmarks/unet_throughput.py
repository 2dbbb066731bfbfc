#!/usr/bin/env python
"""Training-step throughput of ``unetkit.models.UNet`` against a hand-written reference U-Net.

Contenders, all built from the same config, fed the same input batch, on the same device, in
one process:

* ``unetkit``   - :class:`unetkit.models.UNet`.
* ``reference`` - :class:`ReferenceUNet` below: the same architecture written in the most direct
  way (explicit ``nn.Conv2d/3d``, ``F.max_pool``, ``F.interpolate`` / ``nn.ConvTranspose``,
  ``torch.cat`` with slicing for the centre crop; nothing imported from unetkit). Before timing,
  the script asserts that both have the same parameter count and that, after copying unetkit's
  weights into the reference (parameters matched by order), both give the same output to 1e-5.
* ``torch-em``  - ``torch_em.model.UNet2d`` / ``UNet3d`` (same-padding configs only, and only when
  ``torch_em`` is installed: ``pip install torch-em``). Its architecture is *not* identical
  (bilinear upsampling followed by a 1x1 conv), so the parameter counts are printed side by side.

One timed iteration is forward + ``output.mean().backward()`` + ``optimizer.zero_grad()``.
After a few warm-up iterations the contenders are interleaved (A B C, then C B A, ...) for
``--rounds`` rounds and the median time per iteration is kept for each. Absolute numbers on a
shared machine are noise; the result is the ratio ``unetkit / other`` of images per second
(> 1: unetkit is faster).

Efficiency against the hardware. In the same process, a ``--peak-size``^2 float32 matmul
(2048^2: 2 * 2048^3 FLOP) is interleaved with the contenders as the attainable peak; the
FLOPs of one U-Net pass are counted with ``torch.utils.flop_counter.FlopCounterMode``. Printed
as achieved GFLOP/s and as the fraction of that peak:

* ``training step``: unetkit's forward + backward (the iteration above);
* ``inference before``: one batch through unetkit's U-Net (with ``--inference-norm``, default
  batch norm as in the presets) as ``predict`` ran it before ``unetkit.inference.fast``: NCHW,
  ``torch.no_grad``;
* ``inference after``: the same batch through ``unetkit.inference.fast`` (batch norm folded,
  channels-last, ``torch.inference_mode``), i.e. what ``predict`` and the dask workers run now;
  the script asserts that its output is within 1e-5 of the plain pass.

Run ``python benchmarks/unet_throughput.py`` (2-D valid and 2-D same config, < 60 s on 2 CPU
cores) or see ``--help``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unetkit.inference.fast import forward_batch, to_fast_layout
from unetkit.models import UNet

TOLERANCE = 1e-5
PEAK_SIZE = 2048


# ---------------------------------------------------------------------------------------------
# The reference: the same U-Net written out by hand (no unetkit imports).
# ---------------------------------------------------------------------------------------------
class ReferenceUNet(nn.Module):
    """Plain U-Net: (conv 3x3 -> ReLU) x c per level, max pooling by ``factor``, nearest or
    transposed-conv upsampling, centre-cropped skip connections concatenated as [skip, up],
    final 1x1 conv. Parameters are registered in the same order as unetkit's ``UNet``
    (encoder convs, bottleneck convs, upsampling convs, decoder convs, head).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        depth: int = 4,
        factor: int = 2,
        base_features: int = 16,
        growth: int = 2,
        convs_per_level: int = 2,
        padding: str = "valid",
        upsampling: str = "nearest",
    ) -> None:
        super().__init__()
        Conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        ConvT = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        self.ndim = ndim
        self.factor = factor
        self.upsampling = upsampling
        pad = 0 if padding == "valid" else 1
        feats = [base_features * growth**i for i in range(depth + 1)]

        def block(cin: int, cout: int) -> nn.ModuleList:
            convs = [Conv(cin, cout, 3, padding=pad)]
            convs += [Conv(cout, cout, 3, padding=pad) for _ in range(convs_per_level - 1)]
            return nn.ModuleList(convs)

        self.down = nn.ModuleList()
        cin = in_channels
        for i in range(depth):
            self.down.append(block(cin, feats[i]))
            cin = feats[i]
        self.bottom = block(feats[depth - 1], feats[depth])
        self.up = nn.ModuleList()
        up_channels = []
        for i in reversed(range(depth)):
            if upsampling == "transposed":
                self.up.append(ConvT(feats[i + 1], feats[i], factor, stride=factor))
                up_channels.append(feats[i])
            else:
                up_channels.append(feats[i + 1])
        self.dec = nn.ModuleList(
            block(up_channels[k] + feats[i], feats[i]) for k, i in enumerate(reversed(range(depth)))
        )
        self.head = Conv(feats[0], out_channels, 1)

    @staticmethod
    def _convs(convs: nn.ModuleList, x: Tensor) -> Tensor:
        for conv in convs:
            x = F.relu(conv(x), inplace=True)
        return x

    def forward(self, x: Tensor) -> Tensor:
        pool = F.max_pool2d if self.ndim == 2 else F.max_pool3d
        skips = []
        for convs in self.down:
            x = self._convs(convs, x)
            skips.append(x)
            x = pool(x, self.factor)
        x = self._convs(self.bottom, x)
        for k, convs in enumerate(self.dec):
            if self.upsampling == "transposed":
                x = self.up[k](x)
            else:
                x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
            skip = skips[-1 - k]
            crop = [(s - t) // 2 for s, t in zip(skip.shape[2:], x.shape[2:])]
            skip = skip[(slice(None), slice(None)) + tuple(slice(c, c + t) for c, t in zip(crop, x.shape[2:]))]
            x = self._convs(convs, torch.cat([skip, x], dim=1))
        return self.head(x)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_weights_by_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``src``'s parameters into ``dst``, matched by registration order (shapes must agree)."""
    ps, pd = list(src.parameters()), list(dst.parameters())
    if len(ps) != len(pd):
        raise AssertionError(f"parameter tensors differ in number: {len(ps)} vs {len(pd)}")
    with torch.no_grad():
        for k, (a, b) in enumerate(zip(ps, pd)):
            if a.shape != b.shape:
                raise AssertionError(f"parameter #{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            b.copy_(a)


@torch.no_grad()
def max_output_difference(a: nn.Module, b: nn.Module, x: Tensor) -> float:
    """Largest absolute difference of the outputs (``inf`` if the shapes differ)."""
    ya, yb = a(x), b(x)
    if ya.shape != yb.shape:
        return math.inf
    return float((ya - yb).abs().max())


# ---------------------------------------------------------------------------------------------
# torch-em (optional)
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def load_torch_em() -> tuple[Any | None, str]:
    """``(module with UNet2d/UNet3d, note)``; ``(None, reason)`` when torch-em is not usable (cached).

    ``import torch_em`` pulls in its trainer and torchvision; where torchvision cannot load
    against the installed torch (e.g. PyPI's CUDA torchvision beside a CPU-only torch) the file
    that defines the U-Nets, ``torch_em/model/unet.py`` (torch and numpy only), is loaded on its
    own instead, and the note says so.
    """
    try:
        from torch_em.model import unet as tem_unet  # type: ignore[import-not-found]

        return tem_unet, ""
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch_em":
            return None, "torch_em not installed (pip install torch-em)"
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 (any import failure of the optional extra)
        error = f"{type(exc).__name__}: {exc}"
    spec = importlib.util.find_spec("torch_em")
    if spec is None or not spec.submodule_search_locations:
        return None, f"import torch_em failed ({error})"
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "unet.py"
    try:
        file_spec = importlib.util.spec_from_file_location("_torch_em_model_unet", path)
        assert file_spec is not None and file_spec.loader is not None
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
    except Exception as exc2:  # noqa: BLE001
        return None, f"import torch_em failed ({error}); loading {path} failed too ({exc2})"
    return module, f"`import torch_em` failed ({error.splitlines()[0][:120]}); loaded torch_em/model/unet.py directly"


def build_torch_em(module: Any, ndim: int, depth: int, base_features: int, growth: int) -> nn.Module:
    cls = module.UNet2d if ndim == 2 else module.UNet3d
    return cls(in_channels=1, out_channels=1, depth=depth, initial_features=base_features, gain=growth, norm=None)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def make_step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = model(x).mean()
        loss.backward()
        optimizer.zero_grad()

    return step


def time_interleaved(
    steps: dict[str, Callable[[], None]], rounds: int, warmup: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Seconds per iteration of each step, ``rounds`` samples each, contenders interleaved.

    The order alternates between forward and reversed from round to round, so that no contender
    always runs right after the same other one.
    """
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# Efficiency: FLOPs against the matmul peak
# ---------------------------------------------------------------------------------------------
def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the torch operations ``fn`` runs (forward and, if it calls backward, backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def make_matmul(size: int, device: torch.device) -> tuple[Callable[[], None], int]:
    """A ``size x size`` float32 matmul step and its FLOPs (2 size^3)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def step() -> None:
        torch.mm(a, b)

    return step, 2 * size**3


def inference_steps(model: nn.Module, x: Tensor) -> tuple[Callable[[], None], Callable[[], None], float]:
    """(before, after, max |after - before|) for one batch ``x`` ``(N, C, *S)`` through ``model``.

    before: NCHW under ``torch.no_grad``, NumPy in and out (``predict``'s batch step before
    :mod:`unetkit.inference.fast`); after: :func:`~unetkit.inference.fast.forward_batch` on a copy
    rewritten by :func:`~unetkit.inference.fast.to_fast_layout` (as on a dask worker; in-process
    ``predict`` applies the same rewrite for the duration of a prediction).
    """
    model = model.eval()
    fast = copy.deepcopy(model)
    fmt = to_fast_layout(fast, x.dim() - 2)
    batch = x.cpu().numpy()
    device = x.device

    @torch.no_grad()
    def before() -> Any:
        return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    def after() -> Any:
        return forward_batch(fast, batch, device, fmt)

    diff = float(abs(after() - before()).max())
    return before, after, diff


def efficiency(flops: int, seconds: float, peak: float) -> dict[str, float]:
    achieved = flops / seconds
    return {"gflops": achieved / 1e9, "fraction_of_peak": achieved / peak}


# ---------------------------------------------------------------------------------------------
# One configuration
# ---------------------------------------------------------------------------------------------
def run_config(
    *,
    ndim: int,
    depth: int,
    size: int,
    batch: int,
    rounds: int,
    warmup: int,
    padding: str,
    upsampling: str,
    base_features: int,
    device: str,
    torch_em: bool,
    seed: int = 0,
    peak_size: int = PEAK_SIZE,
    inference_norm: str | None = "batch",
) -> dict[str, Any]:
    """Build the contenders, check the reference against unetkit, time them and the inference
    paths against the matmul peak; a result dict."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    cfg = dict(ndim=ndim, depth=depth, factor=2, base_features=base_features, growth=2, convs_per_level=2,
               padding=padding, upsampling=upsampling)
    uk = UNet(1, 1, norm=None, **cfg).to(dev)
    ref = ReferenceUNet(1, 1, **cfg).to(dev)
    spatial = uk.valid_input_shapes((size,) * ndim)[0]
    out_spatial = uk.output_shape(spatial)

    # Same architecture: equal parameter counts and equal outputs with the same weights.
    p_uk, p_ref = n_params(uk), n_params(ref)
    assert p_uk == p_ref, f"parameter counts differ: unetkit {p_uk}, reference {p_ref}"
    copy_weights_by_order(uk, ref)
    probe = torch.randn(2, 1, *spatial, device=dev)
    diff = max_output_difference(uk, ref, probe)
    assert diff <= TOLERANCE, f"unetkit and reference outputs differ by {diff} > {TOLERANCE}"

    models: dict[str, nn.Module] = {"unetkit": uk, "reference": ref}
    params = {"unetkit": p_uk, "reference": p_ref}
    notes: list[str] = []
    if torch_em and padding == "same":
        module, note = load_torch_em()
        if note:
            notes.append(note)
        if module is not None:
            tem = build_torch_em(module, ndim, depth, base_features, 2).to(dev)
            models["torch-em"] = tem
            params["torch-em"] = n_params(tem)
            assert tem(probe[:1]).shape == uk(probe[:1]).shape
            if params["torch-em"] != p_uk:
                notes.append(
                    f"torch-em {cls_name(ndim)}(norm=None) is not the same architecture: its upsampling is "
                    f"{'bilinear' if ndim == 2 else 'trilinear'} interpolation + 1x1 conv halving the channels "
                    f"(unetkit: {upsampling}); parameters {params['torch-em']} vs {p_uk}"
                )
    elif torch_em:
        notes.append("torch-em skipped: it has same-padding convolutions only (use --padding same)")

    x = torch.randn(batch, 1, *spatial, device=dev)
    for m in models.values():
        m.train()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    matmul, matmul_flops = make_matmul(peak_size, dev)
    train_flops = count_flops(make_step(uk, x))
    times = time_interleaved({**{k: make_step(m, x) for k, m in models.items()}, "matmul": matmul}, rounds, warmup,
                             sync)
    peak_train = matmul_flops / statistics.median(times.pop("matmul"))

    # inference: plain NCHW against the fast path, interleaved with the matmul again
    torch.manual_seed(seed)
    net = UNet(1, 1, norm=inference_norm, **cfg).to(dev).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # non-trivial running statistics, as after training
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    before, after, inference_diff = inference_steps(net, x)
    assert inference_diff <= TOLERANCE, f"fast inference differs from the plain pass by {inference_diff} > {TOLERANCE}"
    with torch.no_grad():
        inference_flops = count_flops(lambda: net(x))
    inf_times = time_interleaved({"before": before, "after": after, "matmul": matmul}, rounds, warmup, sync)
    peak_inf = matmul_flops / statistics.median(inf_times.pop("matmul"))
    inf_med = {k: statistics.median(v) for k, v in inf_times.items()}

    med = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, Any] = {
        "config": dict(cfg, batch=batch, input_shape=list(spatial), output_shape=list(out_spatial),
                       rounds=rounds, warmup=warmup, device=str(dev)),
        "params": params,
        "max_output_difference": diff,
        "seconds_per_iteration": med,
        "images_per_second": {k: batch / t for k, t in med.items()},
        "ratio": {},
        "paired_ratio_median": {},
        "notes": notes,
        "peak": {"matmul_size": peak_size, "gflops_training": peak_train / 1e9, "gflops_inference": peak_inf / 1e9},
        "flops": {"training_step": train_flops, "inference": inference_flops},
        "efficiency": {
            "training_step": efficiency(train_flops, med["unetkit"], peak_train),
            "inference_before": efficiency(inference_flops, inf_med["before"], peak_inf),
            "inference_after": efficiency(inference_flops, inf_med["after"], peak_inf),
        },
        "inference": {"norm": inference_norm, "seconds_before": inf_med["before"], "seconds_after": inf_med["after"],
                      "speedup": inf_med["before"] / inf_med["after"], "max_output_difference": inference_diff},
    }
    for other in models:
        if other == "unetkit":
            continue
        result["ratio"][other] = med[other] / med["unetkit"]
        result["paired_ratio_median"][other] = statistics.median(
            o / u for o, u in zip(times[other], times["unetkit"])
        )
    return result


def cls_name(ndim: int) -> str:
    return "UNet2d" if ndim == 2 else "UNet3d"


def format_result(res: dict[str, Any]) -> str:
    c = res["config"]
    shape = "x".join(map(str, c["input_shape"]))
    out = "x".join(map(str, c["output_shape"]))
    lines = [
        f"{c['ndim']}-D U-Net, depth {c['depth']}, base {c['base_features']}, padding={c['padding']}, "
        f"upsampling={c['upsampling']}, batch {c['batch']} x {shape} -> {out}, {c['device']}, "
        f"{c['rounds']} rounds (median)",
        f"  reference == unetkit: parameters equal, max |output difference| after weight copy "
        f"{res['max_output_difference']:.2e}",
        f"  {'contender':<10} {'params':>10} {'ms/iter':>9} {'images/s':>9} {'unetkit/x':>10}",
    ]
    for name, t in res["seconds_per_iteration"].items():
        ratio = "" if name == "unetkit" else f"{res['ratio'][name]:.3f}"
        lines.append(
            f"  {name:<10} {res['params'][name]:>10} {t * 1e3:>9.1f} {res['images_per_second'][name]:>9.2f} {ratio:>10}"
        )
    eff, inf, peak = res["efficiency"], res["inference"], res["peak"]
    lines.append(
        f"  fraction of the {peak['matmul_size']}^2 fp32 matmul peak ({peak['gflops_training']:.1f} / "
        f"{peak['gflops_inference']:.1f} GFLOP/s during the training / inference timings):"
    )
    rows = [("training step (unetkit)", "training_step"),
            ("inference before (NCHW, no_grad)", "inference_before"),
            (f"inference after (fast path, norm={inf['norm']})", "inference_after")]
    for label, key in rows:
        lines.append(f"  {label:<40} {eff[key]['gflops']:>8.1f} GFLOP/s {eff[key]['fraction_of_peak']:>7.3f}")
    lines.append(f"  inference speed-up after / before {inf['speedup']:.2f}x, max |output difference| "
                 f"{inf['max_output_difference']:.1e}")
    lines += [f"  note: {n}" for n in res["notes"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ndim", type=int, choices=(2, 3), default=2)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--size", type=int, default=128, help="edge length; the nearest valid input size is used")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=20, help="timed iterations per contender (interleaved)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per contender first")
    p.add_argument("--features", type=int, default=16, help="base_features (initial features)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--padding", choices=("valid", "same"), default=None,
                   help="default: run a valid and a same config")
    p.add_argument("--upsampling", choices=("nearest", "transposed"), default="nearest")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-torch-em", dest="torch_em", action="store_false", help="do not try torch-em")
    p.add_argument("--json", type=Path, default=None, help="write the results to this file")
    p.add_argument("--peak-size", type=int, default=PEAK_SIZE, help="edge of the float32 matmul taken as the peak")
    p.add_argument("--inference-norm", choices=("batch", "none"), default="batch",
                   help="norm of the U-Net in the inference timings")
    return p.parse_args(argv)


def _load() -> float | None:
    """1-minute load average (None where the OS has none): how busy the machine was."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table per config and return ``{"results": [...], ...}``."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    paddings = [args.padding] if args.padding else ["valid", "same"]
    load_before = _load()
    print(f"load average (1 min) before: {load_before}, torch threads: {torch.get_num_threads()}", flush=True)
    results = []
    for padding in paddings:
        res = run_config(
            ndim=args.ndim, depth=args.depth, size=args.size, batch=args.batch, rounds=args.rounds,
            warmup=args.warmup, padding=padding, upsampling=args.upsampling, base_features=args.features,
            device=args.device, torch_em=args.torch_em, peak_size=args.peak_size,
            inference_norm=None if args.inference_norm == "none" else args.inference_norm,
        )
        print(format_result(res), flush=True)
        results.append(res)
    load_after = _load()
    print(f"load average (1 min) after: {load_after}", flush=True)
    report = {
        "results": results,
        "load_average": {"before": load_before, "after": load_after},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
