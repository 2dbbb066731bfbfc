#!/usr/bin/env python
"""Tiled prediction of a large 2-D image and a 3-D volume: unetkit against MONAI's sliding window.

Contenders, one process, the same image, the same network input tile shape and the same number
of tiles per forward pass (``--batch``):

* ``exact``     - :func:`unetkit.inference.predict` with a **valid-padding** U-Net (exact
  tile-and-stitch: the stitched result equals the whole-image prediction).
* ``blend``     - ``predict(..., mode="blend", overlap=0.25)`` with the **same-padding** U-Net of
  the same weights (the parameter shapes do not depend on the padding, so the state dict is
  copied): Gaussian-weighted overlapping tiles.
* ``halo-crop`` - ``predict(..., mode="halo-crop")`` with the same-padding net: each tile keeps
  its centre, a margin of ceil(halo / f^l) * f^l pixels is thrown away on every side.
* ``monai``     - ``monai.inferers.sliding_window_inference(x, roi_size=T, sw_batch_size=B,
  predictor=same_padding_net, overlap=0.25, mode="gaussian")`` (only when MONAI is importable;
  ``pip install -c constraints.txt monai``, the ``bench`` extra).

The same-padding contenders run tiles of exactly ``T`` (the multiple of f^l nearest to
``--tile2d`` / ``--tile3d``); the valid-padding net runs the valid input shape nearest to ``T``
(valid inputs of a depth-3 U-Net are 8k + 4, so T = 256 becomes 252; at depth 2 they coincide).
The weights are He-initialised (``kaiming_normal_``, zero biases) so that the outputs have a
spread of order 1 like a trained net's logits, not the ~1e-3 of PyTorch's default init.

Timing: one untimed forward pass of a batch of tiles per network, then ``--repeats`` rounds in
which every contender predicts the whole image, interleaved (A B C D, D C B A, ...); the median
time per image is kept. Absolute times on a shared CPU are noise; the result is the throughput
ratio ``x / monai`` (> 1: faster than MONAI).

Seam error: max and mean absolute difference between each tiled prediction and the whole-image
prediction of the same network (``predict(net, image, memory_budget=None)``), over the whole
image and over its interior (without a band of ``halo`` pixels along the image border: there the
whole-image pass of the same-padding net sees its own zero padding while the tilings mirror the
image or pad differently, a border policy rather than a seam), also divided by the standard
deviation of that whole-image prediction (JSON). Where one whole-image pass of the
same-padding net would need more than ``--seam-budget-mib`` of activations, the seam error is
measured on a centred crop that fits (reported as ``seam_shape``). For the modes that cut tiles
hard (``exact``, ``halo-crop``) ``step_ratio`` is the mean jump |y[s] - y[s-1]| across the
seam lines s of the tiled prediction divided by the same mean in the whole-image prediction
(1 = seams invisible).

Defaults: 2-D 2048^2, depth-3 base-16 nets, tile 256 (valid: 252); 3-D 112x160x160, depth-2
base-8 nets, tile 96^3 for all four (a depth-3 valid net would keep only 32^3 of a 124^3 tile,
too slow for a CPU run; ``--depth3d 3 --base3d 16 --tile3d 160`` for that). Run
``python benchmarks/tiling_vs_monai.py --threads 1`` (~8 min on a busy 2-core CPU) or see ``--help``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unetkit.data.synthetic import blobs
from unetkit.errors import ShapeError
from unetkit.inference import estimate_tile_bytes, plan_tiles, predict
from unetkit.models import UNet

CONTENDERS = ("exact", "blend", "halo-crop", "monai")
LABELS = {
    "exact": "unetkit exact (valid)",
    "blend": "unetkit blend (same)",
    "halo-crop": "unetkit halo-crop (same)",
    "monai": "MONAI gaussian (same)",
}


# ---------------------------------------------------------------------------------------------
# MONAI (optional)
# ---------------------------------------------------------------------------------------------
@functools.cache
def load_monai() -> tuple[Callable[..., Any] | None, str]:
    """``(sliding_window_inference, version)``, or ``(None, reason)`` when MONAI is not usable."""
    try:
        import monai  # type: ignore[import-not-found]
        from monai.inferers import sliding_window_inference  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "monai":
            return None, "MONAI not installed (pip install -c constraints.txt monai): MONAI rows left out"
        return None, f"import monai failed ({type(exc).__name__}: {exc}): MONAI rows left out"
    except Exception as exc:  # noqa: BLE001 (any import failure of the optional extra)
        return None, f"import monai failed ({type(exc).__name__}: {exc}): MONAI rows left out"
    return sliding_window_inference, str(monai.__version__)


def monai_windows(image_shape: Sequence[int], roi: Sequence[int], overlap: float) -> int:
    """Number of windows MONAI's sliding window runs (its scan interval: int(roi * (1 - overlap)))."""
    n = 1
    for s, r in zip(image_shape, roi):
        if s <= r:
            continue
        step = max(int(r * (1 - overlap)), 1)
        n *= math.ceil((s - r) / step) + 1
    return n


# ---------------------------------------------------------------------------------------------
# Networks and image
# ---------------------------------------------------------------------------------------------
def he_init(model: nn.Module) -> nn.Module:
    """He-normal weights, zero biases (outputs of order 1, like a trained net's logits)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()
    return model


def build_nets(ndim: int, depth: int, base: int, seed: int) -> tuple[UNet, UNet]:
    """(valid-padding net, same-padding net with the valid net's weights), both in eval mode."""
    torch.manual_seed(seed)
    cfg = dict(ndim=ndim, depth=depth, factor=2, base_features=base, growth=2, convs_per_level=2, norm=None)
    valid = he_init(UNet(1, 1, padding="valid", **cfg))
    same = UNet(1, 1, padding="same", **cfg)
    same.load_state_dict(valid.state_dict())  # parameter shapes do not depend on the padding
    return valid.eval(), same.eval()


def make_image(shape: Sequence[int], seed: int) -> np.ndarray:
    """Crowded synthetic cells (``unetkit.data.synthetic.blobs``), z-scored, float32."""
    image, _ = blobs(tuple(shape), seed=seed)
    return ((image - image.mean()) / image.std()).astype(np.float32)


def pick_tiles(valid: UNet, same: UNet, image_shape: tuple[int, ...], tile: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(valid-net tile, same-net tile): the cubic tiles with the edge nearest to ``tile`` (the
    smaller one on a tie) that each net accepts and its planner can use (exact, resp. halo-crop,
    whose minimum is larger than blend's)."""

    def nearest(model: UNet, mode: str) -> tuple[int, ...]:
        last: Exception | None = None
        for k in range(4 * tile):
            for edge in (tile - k, tile + k) if k else (tile,):
                cand = (edge,) * model.ndim
                if edge < 1 or not model.geometry.is_valid_input(cand):
                    continue
                try:
                    plan_tiles(model, image_shape, tile_shape=cand, mode=mode)  # type: ignore[arg-type]
                    return cand
                except ShapeError as exc:
                    last = exc
        raise ShapeError(f"no cubic tile near {tile} works for {mode!r} tiling: {last}")

    return nearest(valid, "exact"), nearest(same, "halo-crop")


def warm_up(model: UNet, tile: tuple[int, ...], batch: int) -> None:
    """One forward pass for every batch size up to ``batch`` (the last batch of a plan is partial)."""
    with torch.no_grad():
        for b in range(1, batch + 1):
            model(torch.zeros(b, 1, *tile))


# ---------------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------------
def make_contenders(
    valid: UNet, same: UNet, t_valid: tuple[int, ...], t_same: tuple[int, ...], batch: int, overlap: float,
    swi: Callable[..., Any] | None,
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> function(image) -> (C_out, *S) float32 prediction."""

    def exact(image: np.ndarray) -> np.ndarray:
        return predict(valid, image, t_valid, batch)

    def blend(image: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "blended tiling ... is not exact": measured here
            return predict(same, image, t_same, batch, mode="blend", overlap=overlap)

    def halo_crop(image: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return predict(same, image, t_same, batch, mode="halo-crop")

    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {"exact": exact, "blend": blend, "halo-crop": halo_crop}
    if swi is not None:

        @torch.no_grad()
        def monai(image: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(image)[None, None]
            y = swi(x, roi_size=t_same, sw_batch_size=batch, predictor=same, overlap=overlap, mode="gaussian")
            return y[0].float().numpy()

        fns["monai"] = monai
    return fns


def time_interleaved(
    fns: dict[str, Callable[[np.ndarray], np.ndarray]], image: np.ndarray, repeats: int, progress: bool = False
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Seconds per image, ``repeats`` samples each, contenders interleaved; and the last outputs."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    outputs: dict[str, np.ndarray] = {}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            outputs[name] = fns[name](image)
            times[name].append(time.perf_counter() - t0)
        if progress:
            done = ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names)
            print(f"  round {r + 1}/{repeats}: {done}", flush=True)
    return times, outputs


# ---------------------------------------------------------------------------------------------
# Seam measures
# ---------------------------------------------------------------------------------------------
def seam_lines(plan: Any) -> list[list[int]]:
    """Per spatial axis, the image positions s where one tile's kept core ends and the next begins."""
    return [[a.image_start for a in axis[1:]] for axis in plan.axes]


def step_ratio(pred: np.ndarray, ref: np.ndarray, lines: list[list[int]]) -> float | None:
    """Mean |y[s] - y[s-1]| over all seam lines in ``pred`` / the same in ``ref`` (``None``: no seams)."""
    num = den = 0.0
    count = 0
    for ax, positions in enumerate(lines):
        axis = ax + 1  # channel axis first
        for s in positions:
            a = np.take(pred, s, axis=axis) - np.take(pred, s - 1, axis=axis)
            b = np.take(ref, s, axis=axis) - np.take(ref, s - 1, axis=axis)
            num += float(np.abs(a).sum())
            den += float(np.abs(b).sum())
            count += a.size
    if count == 0 or den == 0:
        return None
    return num / den


def seam_errors(pred: np.ndarray, ref: np.ndarray, band: Sequence[int]) -> dict[str, float | None]:
    """|pred - ref| over the whole image and over its interior (``band`` pixels per axis off the
    image border, where the whole-image pass of a same-padding net sees its own zero padding and
    the tilings mirror or pad differently: that is border policy, not seams). ``*_over_std``:
    divided by the standard deviation of ``ref``."""
    diff = np.abs(pred.astype(np.float64) - ref.astype(np.float64))
    scale = float(ref.std()) or 1.0
    inner = diff[(slice(None), *(slice(b, n - b) for b, n in zip(band, diff.shape[1:])))]
    out: dict[str, float | None] = {
        "max": float(diff.max()), "mean": float(diff.mean()), "mean_over_std": float(diff.mean()) / scale,
        "interior_max": None, "interior_mean": None, "interior_mean_over_std": None,
    }
    if inner.size:
        out.update(interior_max=float(inner.max()), interior_mean=float(inner.mean()),
                   interior_mean_over_std=float(inner.mean()) / scale)
    return out


def seam_shape_for(same: UNet, shape: tuple[int, ...], budget: int) -> tuple[int, ...]:
    """The image shape itself, or a smaller one (same aspect, multiples of f^l) whose whole-image
    pass of the same-padding net fits ``budget`` bytes of activations."""
    period = same.shift_period

    def fits(s: tuple[int, ...]) -> bool:
        return estimate_tile_bytes(same, s) <= budget

    if fits(tuple(-(-n // p) * p for n, p in zip(shape, period))):
        return shape
    scale = 1.0
    while True:
        scale *= 0.9
        cand = tuple(max(p, int(n * scale) // p * p) for n, p in zip(shape, period))
        if fits(cand) or all(c == p for c, p in zip(cand, period)):
            return cand


def centre_crop(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    starts = [(n - s) // 2 for n, s in zip(image.shape, shape)]
    return np.ascontiguousarray(image[tuple(slice(a, a + s) for a, s in zip(starts, shape))])


# ---------------------------------------------------------------------------------------------
# One case (2-D or 3-D)
# ---------------------------------------------------------------------------------------------
def run_case(
    *,
    ndim: int,
    size: Sequence[int],
    tile: int,
    depth: int,
    base: int,
    batch: int,
    repeats: int,
    overlap: float = 0.25,
    use_monai: bool = True,
    seam_budget: int = 4 << 30,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    shape = tuple(int(s) for s in size)
    if len(shape) != ndim:
        raise ValueError(f"size {shape} needs {ndim} values")
    notes: list[str] = []
    swi, monai_info = load_monai() if use_monai else (None, "MONAI rows skipped (--no-monai)")
    if swi is None:
        notes.append(monai_info)
    valid, same = build_nets(ndim, depth, base, seed)
    t_valid, t_same = pick_tiles(valid, same, shape, tile)
    image = make_image(shape, seed)
    fns = make_contenders(valid, same, t_valid, t_same, batch, overlap, swi)

    plans = {
        "exact": plan_tiles(valid, shape, tile_shape=t_valid),
        "blend": plan_tiles(same, shape, tile_shape=t_same, mode="blend", overlap=overlap),
        "halo-crop": plan_tiles(same, shape, tile_shape=t_same, mode="halo-crop"),
    }
    n_tiles = {k: p.n_tiles for k, p in plans.items()}
    tiles = {"exact": t_valid, "blend": t_same, "halo-crop": t_same}
    if swi is not None:
        n_tiles["monai"] = monai_windows(shape, t_same, overlap)
        tiles["monai"] = t_same

    # warm-up (allocator, kernels): every batch size the plans will run, per network
    warm_up(valid, t_valid, batch)
    warm_up(same, t_same, batch)
    if progress:
        print(f"{ndim}-D {'x'.join(map(str, shape))}: tiles valid {t_valid}, same {t_same}; "
              f"{repeats} interleaved rounds", flush=True)
    times, outputs = time_interleaved(fns, image, repeats, progress)
    med = {k: statistics.median(v) for k, v in times.items()}
    mpix = float(np.prod(shape)) / 1e6
    throughput = {k: mpix / t for k, t in med.items()}

    # seam error against the whole-image prediction of the same network
    seam_shape = seam_shape_for(same, shape, seam_budget)
    if seam_shape != shape:
        notes.append(
            f"seam error measured on a centred {'x'.join(map(str, seam_shape))} crop (one whole-image pass of "
            f"the same-padding net on {'x'.join(map(str, shape))} needs more than {seam_budget >> 20} MiB)"
        )
        seam_image = centre_crop(image, seam_shape)
        seam_out = {k: f(seam_image) for k, f in fns.items()}
        seam_plans = {
            "exact": plan_tiles(valid, seam_shape, tile_shape=t_valid),
            "halo-crop": plan_tiles(same, seam_shape, tile_shape=t_same, mode="halo-crop"),
        }
    else:
        seam_image, seam_out, seam_plans = image, outputs, plans
    whole = {
        "valid": predict(valid, seam_image, memory_budget=None),
        "same": predict(same, seam_image, memory_budget=None),
    }
    seam: dict[str, dict[str, Any]] = {}
    for k, y in seam_out.items():
        ref = whole["valid" if k == "exact" else "same"]
        seam[k] = seam_errors(y, ref, valid.halo)
        hard = k in ("exact", "halo-crop")  # tiles cut without overlap: seam lines to look at
        seam[k]["step_ratio"] = step_ratio(y, ref, seam_lines(seam_plans[k])) if hard else None

    ratio: dict[str, float] = {}
    paired: dict[str, float] = {}
    if "monai" in med:
        for k in med:
            if k != "monai":
                ratio[k] = throughput[k] / throughput["monai"]
                paired[k] = statistics.median(m / u for m, u in zip(times["monai"], times[k]))
    return {
        "config": dict(
            ndim=ndim, image_shape=list(shape), depth=depth, base_features=base, batch=batch, repeats=repeats,
            overlap=overlap, params=sum(p.numel() for p in valid.parameters()),
            halo=list(valid.halo), shift_period=list(valid.shift_period), seam_shape=list(seam_shape),
            monai=monai_info if swi is not None else None,
        ),
        "tile_shape": {k: list(v) for k, v in tiles.items()},
        "n_tiles": n_tiles,
        "seconds_per_image": med,
        "all_seconds": times,
        "megapixels_per_second": throughput,
        "ratio_vs_monai": ratio,
        "paired_ratio_median": paired,
        "seam": seam,
        "reference_std": {k: float(v.std()) for k, v in whole.items()},
        "notes": notes,
    }


def _e(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def format_case(res: dict[str, Any]) -> str:
    c = res["config"]
    shape = "x".join(map(str, c["image_shape"]))
    unit = "MPix/s" if c["ndim"] == 2 else "MVox/s"
    lines = [
        f"{c['ndim']}-D image {shape}, U-Net depth {c['depth']} base {c['base_features']} ({c['params']:,} parameters, "
        f"halo {c['halo'][0]}, period {c['shift_period'][0]}), batch {c['batch']}, {c['repeats']} repeats (median)"
        + (f", MONAI {c['monai']}" if c["monai"] else ""),
        (f"  {'contender':<25} {'tile':>11} {'tiles':>6} {'s/image':>8} {unit:>7} {'x/MONAI':>8} "
         f"{'seam max':>9} {'seam mean':>9} {'int. max':>9} {'int. mean':>9} {'step':>6}"),
    ]
    for k in res["seconds_per_image"]:
        s = res["seam"][k]
        step = "-" if s["step_ratio"] is None else f"{s['step_ratio']:.3f}"
        ratio = f"{res['ratio_vs_monai'][k]:.3f}" if k in res["ratio_vs_monai"] else "-"
        lines.append(
            f"  {LABELS[k]:<25} {'x'.join(map(str, res['tile_shape'][k])):>11} {res['n_tiles'][k]:>6} "
            f"{res['seconds_per_image'][k]:>8.2f} {res['megapixels_per_second'][k]:>7.3f} {ratio:>8} "
            f"{s['max']:>9.2e} {s['mean']:>9.2e} {_e(s['interior_max']):>9} {_e(s['interior_mean']):>9} {step:>6}"
        )
    sd = res["reference_std"]
    lines.append(
        f"  seam error = |tiled - whole-image prediction of the same net| on {'x'.join(map(str, c['seam_shape']))}; "
        f"int. = without a {c['halo'][0]}-px band along the image border; step = mean jump across seam lines, "
        f"tiled / whole; whole-image output std: valid {sd['valid']:.3g}, same {sd['same']:.3g}"
    )
    lines += [f"  note: {n}" for n in res["notes"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.lower().replace(",", "x").split("x") if v)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size2d", type=_shape, default=(2048, 2048), help="2-D image shape, e.g. 2048x2048 (0: skip)")
    p.add_argument("--size3d", type=_shape, default=(112, 160, 160), help="3-D volume shape Z x Y x X (0: skip)")
    p.add_argument("--tile2d", type=int, default=256, help="tile edge of the same-padding net (nearest valid)")
    p.add_argument("--tile3d", type=int, default=96, help="tile edge of the same-padding net (nearest valid)")
    p.add_argument("--depth2d", type=int, default=3)
    p.add_argument("--base2d", type=int, default=16)
    p.add_argument("--depth3d", type=int, default=2,
                   help="a depth-3 valid net keeps only 32^3 of a 124^3 tile: too slow for a CPU run")
    p.add_argument("--base3d", type=int, default=8)
    p.add_argument("--batch", type=int, default=4, help="tiles per forward pass (sw_batch_size for MONAI)")
    p.add_argument("--repeats", type=int, default=3, help="timed predictions per contender (interleaved)")
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seam-budget-mib", type=int, default=4096,
                   help="largest whole-image pass for the seam reference; a centred crop beyond")
    p.add_argument("--no-monai", dest="monai", action="store_false", help="leave the MONAI rows out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no per-round progress lines")
    p.add_argument("--json", type=Path, default=None, help="write the results to this file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table per case and return ``{"results": [...], ...}``."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    _, monai_info = load_monai()
    if args.monai and load_monai()[0] is None:
        print(f"note: {monai_info}; running the unetkit rows only", flush=True)
    cases = []
    if any(args.size2d):
        cases.append(dict(ndim=2, size=args.size2d, tile=args.tile2d, depth=args.depth2d, base=args.base2d))
    if any(args.size3d):
        cases.append(dict(ndim=3, size=args.size3d, tile=args.tile3d, depth=args.depth3d, base=args.base3d))
    results = []
    for case in cases:
        res = run_case(**case, batch=args.batch, repeats=args.repeats, overlap=args.overlap, use_monai=args.monai,
                       seam_budget=args.seam_budget_mib << 20, seed=args.seed, progress=not args.quiet)
        print(format_case(res), flush=True)
        results.append(res)
    report = {
        "results": results,
        "torch": torch.__version__,
        "monai": monai_info if load_monai()[0] is not None else None,
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
