"""Speed-up of ``predict_dask`` with 2 workers over 1 worker (one torch thread each), same plan.

Writes a random 2-D float32 Zarr image of ``--size`` x ``--size`` pixels, starts a LocalCluster
of 1 and one of 2 worker processes (warmed up before timing: workers import torch and build the
model on a small image first) and times ``predict_dask`` of the whole image into a new Zarr store
on each, interleaved (1, 2, 2, 1, ...) ``--repeats`` times; the median is kept. All runs follow
the same tiling plan (``--tile``), and the script checks that the 1- and 2-worker outputs are
bitwise equal. Printed: both wall-clock times and the ratio t(1) / t(2).

Cluster start-up is not timed (it is a fixed cost of a few seconds, printed separately). On a
shared machine the ratio is bounded by the free cores: note the load average printed with it.

    .venv/bin/python benchmarks/dask_speedup.py                    # 2-D 1536^2, depth 3: ~10-30 s per worker count
    .venv/bin/python benchmarks/dask_speedup.py --size 1024 --depth 2 --json dask.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unetkit.data.io import write_image
from unetkit.inference import plan_tiles, predict_dask
from unetkit.models import UNet


def _load() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover -- not on every platform
        return None


def _run_all(model: UNet, source: Path, folder: Path, tile: tuple[int, ...], warm: Path, repeats: int) -> list[dict]:
    """Start a 1-worker and a 2-worker LocalCluster, warm both up, then time them interleaved
    (1, 2, 2, 1, 1, 2, ...) so that a change in the machine's load hits both alike."""
    from distributed import Client, LocalCluster

    results: dict[int, dict] = {}
    with contextlib.ExitStack() as stack:
        clients = {}
        for n in (1, 2):
            t0 = time.perf_counter()
            cluster = stack.enter_context(
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"))
            clients[n] = stack.enter_context(Client(cluster))
            clients[n].wait_for_workers(n)
            results[n] = {"workers": n, "startup_seconds": time.perf_counter() - t0, "all_seconds": []}
            # warm-up: every worker imports torch and builds the model once (cached afterwards)
            predict_dask(model, warm, folder / f"warm-{n}.zarr", scheduler=clients[n], tile_shape=tile,
                         overwrite=True)
        order = [n for r in range(repeats) for n in ((1, 2) if r % 2 == 0 else (2, 1))]
        for n in order:
            t = time.perf_counter()
            predict_dask(model, source, folder / f"out-{n}.zarr", scheduler=clients[n], tile_shape=tile,
                         overwrite=True)
            results[n]["all_seconds"].append(time.perf_counter() - t)
            print(f"  {n} worker(s): {results[n]['all_seconds'][-1]:.2f} s   (load {_load()})", flush=True)
    for r in results.values():
        r["seconds"] = float(np.median(r["all_seconds"]))
    return [results[1], results[2]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1536, help="image edge length (2-D, pixels)")
    ap.add_argument("--depth", type=int, default=3, help="U-Net depth")
    ap.add_argument("--features", type=int, default=16, help="base features")
    ap.add_argument("--tile", type=int, default=252, help="tile edge (nearest valid input shape is used)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="timed runs per worker count, interleaved (the median is kept)")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = UNet(1, 2, ndim=2, depth=args.depth, base_features=args.features).eval()
    tile = model.valid_input_shapes((args.tile, args.tile))[0]
    shape = (args.size, args.size)
    plan = plan_tiles(model, shape, tile_shape=tile)
    print(f"image {shape}, U-Net depth {args.depth} base {args.features}, tile {tile} -> core {plan.core_shape}, "
          f"{plan.n_tiles} tiles ({plan.grid}); {os.cpu_count()} CPU cores; load before: {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dask-speedup-") as tmp:
        folder = Path(tmp)
        img = np.random.default_rng(0).random(shape, dtype=np.float32)
        write_image(folder / "src.zarr", img, axes="YX")
        write_image(folder / "warm.zarr", img[: 2 * tile[0], : 2 * tile[1]], axes="YX")
        results = _run_all(model, folder / "src.zarr", folder, tile, folder / "warm.zarr", args.repeats)
        import zarr

        equal = bool(np.array_equal(zarr.open_array(str(folder / "out-1.zarr"), mode="r")[...],
                                    zarr.open_array(str(folder / "out-2.zarr"), mode="r")[...]))
    one, two = results
    speedup = one["seconds"] / two["seconds"]
    load = _load()
    print(f"1 worker : {one['seconds']:.2f} s   (cluster start-up {one['startup_seconds']:.1f} s, not timed)")
    print(f"2 workers: {two['seconds']:.2f} s   (cluster start-up {two['startup_seconds']:.1f} s, not timed)")
    print(f"speed-up 2 workers / 1 worker: {speedup:.2f}x   outputs bitwise equal: {equal}   load after: {load}")
    if args.json:
        args.json.write_text(json.dumps({
            "image_shape": shape, "depth": args.depth, "base_features": args.features, "tile_shape": tile,
            "core_shape": plan.core_shape, "n_tiles": plan.n_tiles, "results": results, "speedup": speedup,
            "bitwise_equal": equal, "cpu_count": os.cpu_count(), "load_after": load,
            "platform": platform.platform(), "torch": torch.__version__,
        }, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
