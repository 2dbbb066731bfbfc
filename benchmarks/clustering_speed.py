"""Seconds per image of the embedding clustering methods: mutex watershed vs HDBSCAN vs mean shift.

A synthetic ``--size`` x ``--size`` image of ``--dim``-D "random but clustered" embeddings: the
image is cut into ``--objects`` Voronoi cells (random centres) plus a background of about half
the image; every cell gets a random embedding centre (centres at least ``2 delta_d`` = 4 apart)
and every pixel that centre plus Gaussian noise (``--noise`` per channel, so the noise norm is
below ``delta_v`` = 0.5 for the defaults). All methods run in one process, one after the other,
``--repeats`` times each (the best time is kept), with their SPOCO settings: mean shift with
``bandwidth = delta_v`` (Gaussian kernel, the EmbeddingTask default), HDBSCAN with
``min_size = 200`` (its default 10 000-pixel subsample), the mutex watershed with the default
offsets and ``delta_d = 2``. Printed: seconds, adapted Rand error and symmetric best Dice (SBD)
against the synthetic truth, and the time ratios to the mutex watershed.

HDBSCAN on *all* pixels (as the SPOCO paper ran it; ``max_samples`` = pixel count, so no
subsample) is far slower than the rest, so it runs on centred square crops of ``--full-crops``
edge lengths, smallest first, together with the mutex watershed on the same crop (interleaved,
so both ratios are measured in one run); a crop is skipped once the previous one took longer
than ``--full-budget`` / 4 seconds. The time at ``--size`` is then *extrapolated* from the two
largest crops with a power law ``t ~ pixels^k`` (printed as such, never as a measurement),
unless ``--size`` itself is among the crops measured.

    .venv/bin/python benchmarks/clustering_speed.py                 # 512^2, 16-D: a few minutes
    .venv/bin/python benchmarks/clustering_speed.py --objects 50 --noise 0.1 --json clustering.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from benchcommon import load, machine, write_report

from unetkit.clustering import hdbscan, mean_shift, mutex_watershed
from unetkit.metrics.instance import adapted_rand_error, symmetric_best_dice


def synthetic(size: int, dim: int, objects: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dim, size, size)`` float32 embeddings and the ``(size, size)`` truth (0 = background)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, size=(2 * objects, 2))
    yy, xx = np.mgrid[:size, :size]
    d2 = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    cell = d2.argmin(-1)
    gt = np.where(cell < objects, cell + 1, 0)  # half of the cells form the background
    centres: list[np.ndarray] = []
    while len(centres) < objects + 1:
        c = rng.uniform(-6, 6, size=dim)
        if all(np.linalg.norm(c - o) >= 4.0 for o in centres):
            centres.append(c)
    emb = np.asarray(centres)[gt] + rng.normal(scale=noise, size=(size, size, dim))
    return np.moveaxis(emb, -1, 0).astype(np.float32), gt


def best_time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def crop(emb: np.ndarray, gt: np.ndarray, edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred ``edge`` x ``edge`` crop (Voronoi cells are convex, so a cut object stays one piece)."""
    o = (gt.shape[0] - edge) // 2
    return np.ascontiguousarray(emb[:, o:o + edge, o:o + edge]), gt[o:o + edge, o:o + edge]


def hdbscan_all_pixels(emb: np.ndarray, gt: np.ndarray, edges: list[int], budget: float, size: int) -> dict:
    """HDBSCAN without subsampling vs the mutex watershed on growing crops; power-law extrapolation."""
    crops: list[dict] = []
    for edge in sorted(e for e in edges if e <= size):
        if crops and crops[-1]["hdbscan_seconds"] > budget / 4:
            break
        e, g = crop(emb, gt, edge)
        t0 = time.perf_counter()
        mws = mutex_watershed(e, delta_d=2.0)
        t1 = time.perf_counter()
        hdb = hdbscan(e, min_size=200, max_samples=edge * edge)
        t2 = time.perf_counter()
        mws_again = time.perf_counter()
        mutex_watershed(e, delta_d=2.0)
        mws_sec = min(t1 - t0, time.perf_counter() - mws_again)
        crops.append({"edge": edge, "pixels": edge * edge, "hdbscan_seconds": t2 - t1, "mws_seconds": mws_sec,
                      "ratio": (t2 - t1) / mws_sec, "hdbscan_sbd": float(symmetric_best_dice(hdb, g)),
                      "mws_sbd": float(symmetric_best_dice(mws, g)), "hdbscan_objects": int(hdb.max())})
    out: dict = {"crops": crops, "min_size": 200}
    if crops and crops[-1]["edge"] == size:
        out["measured_seconds"] = crops[-1]["hdbscan_seconds"]
    elif len(crops) >= 2:
        a, b = crops[-2], crops[-1]
        k = float(np.log(b["hdbscan_seconds"] / a["hdbscan_seconds"]) / np.log(b["pixels"] / a["pixels"]))
        out["exponent"] = k
        out["extrapolated_seconds"] = b["hdbscan_seconds"] * (size * size / b["pixels"]) ** k
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--objects", type=int, default=30)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-crops", type=int, nargs="*", default=[64, 128, 256],
                    help="crop edges for HDBSCAN on all pixels (empty: skip it)")
    ap.add_argument("--full-budget", type=float, default=240.0,
                    help="seconds; no larger crop once one took more than a quarter of this")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    args = ap.parse_args(argv)

    emb, gt = synthetic(args.size, args.dim, args.objects, args.noise, args.seed)
    methods = {
        "mutex_watershed": lambda: mutex_watershed(emb, delta_d=2.0),
        "hdbscan": lambda: hdbscan(emb, min_size=200),
        "mean_shift": lambda: mean_shift(emb, bandwidth=0.5, largest_is_background=True),
    }
    results = {}
    for name, fn in methods.items():
        sec, labels = best_time(fn, args.repeats)
        results[name] = {"seconds": sec, "adapted_rand_error": float(adapted_rand_error(labels, gt)),
                         "sbd": float(symmetric_best_dice(labels, gt)), "objects": int(labels.max())}
    ref = results["mutex_watershed"]["seconds"]
    for res in results.values():
        res["ratio_to_mws"] = res["seconds"] / ref
    full = hdbscan_all_pixels(emb, gt, args.full_crops, args.full_budget, args.size)
    if full.get("extrapolated_seconds") is not None:
        full["extrapolated_ratio_to_mws"] = full["extrapolated_seconds"] / ref
    print(f"{args.size}x{args.size}, {args.dim}-D embeddings, {args.objects} objects + background; "
          f"torch threads {torch.get_num_threads()}, load {load():.1f}")
    for name, res in results.items():
        print(f"  {name:16s} {res['seconds']:8.3f} s   x{res['ratio_to_mws']:7.1f} of MWS   "
              f"ARE {res['adapted_rand_error']:.3f}   SBD {res['sbd']:.3f}   objects {res['objects']}")
    if full["crops"]:
        print("  HDBSCAN on all pixels (no subsample) vs mutex watershed, same crop, interleaved:")
        for c in full["crops"]:
            print(f"    {c['edge']:4d}^2  HDBSCAN {c['hdbscan_seconds']:8.3f} s (SBD {c['hdbscan_sbd']:.3f})   "
                  f"MWS {c['mws_seconds']:.3f} s (SBD {c['mws_sbd']:.3f})   ratio x{c['ratio']:.0f}")
        if full.get("extrapolated_seconds") is not None:
            print(f"    EXTRAPOLATED to {args.size}^2 (t ~ pixels^{full['exponent']:.2f} from the two largest crops): "
                  f"HDBSCAN ~{full['extrapolated_seconds']:.0f} s, x{full['extrapolated_ratio_to_mws']:.0f} of MWS "
                  f"({args.size}^2 MWS measured above)")
    report = {"config": vars(args) | {"json": None}, "results": results, "hdbscan_all_pixels": full,
              "machine": machine(load=load())}
    return write_report(report, args.json)


if __name__ == "__main__":
    main()
