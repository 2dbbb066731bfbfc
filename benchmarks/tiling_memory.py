#!/usr/bin/env python
"""Peak memory of out-of-core prediction: a Zarr image >= 4x the tile memory budget.

Writes a random float32 Zarr image of ``--factor`` times the budget (bytes), then runs
``predict_file``-style prediction Zarr -> Zarr in a fresh subprocess and reports its peak
resident memory (``ru_maxrss``) above the baseline measured in the same process right before
prediction (after importing torch and building the model). The claim checked: the increase
stays within the budget plus a small constant, however large the image is.

    python benchmarks/tiling_memory.py --budget-mib 64 --factor 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from unetkit.models import UNet
from unetkit.inference import predict, plan_tiles, estimate_tile_bytes
import zarr
src_path, dst_path, budget, depth, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
torch.set_num_threads(2)
model = UNet(1, 2, depth=depth, base_features=base).eval()
src = zarr.open_array(src_path, mode="r")
plan = plan_tiles(model, src.shape, memory_budget=budget)
out = zarr.open_array(dst_path, mode="w", shape=(2, *src.shape), chunks=(2, *plan.core_shape), dtype="f4")
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# warm the allocator and libraries with one tile so the baseline includes fixed costs
with torch.no_grad():
    model(torch.zeros(1, 1, *model.geometry.min_input_shape()))
base_rss = rss()
t0 = time.perf_counter()
predict(model, src, memory_budget=budget, out=out)
print(json.dumps({"baseline_bytes": base_rss, "peak_bytes": rss(), "seconds": time.perf_counter() - t0,
                  "tile": plan.input_shape, "tiles": plan.n_tiles,
                  "estimate_bytes": estimate_tile_bytes(model, plan.input_shape)}))
"""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-mib", type=float, default=64)
    ap.add_argument("--factor", type=float, default=4.0, help="image bytes / budget")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--base", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import numpy as np
    import zarr

    budget = int(args.budget_mib * 2**20)
    side = int(np.sqrt(args.factor * budget / 4)) + 1
    with tempfile.TemporaryDirectory() as tmp:
        src = zarr.open_array(f"{tmp}/src.zarr", mode="w", shape=(side, side), chunks=(1024, 1024), dtype="f4")
        rng = np.random.default_rng(0)
        for y in range(0, side, 1024):
            src[y : y + 1024] = rng.random((min(1024, side - y), side), dtype=np.float32)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/src.zarr", f"{tmp}/dst.zarr", str(budget),
                               str(args.depth), str(args.base)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    image_bytes = side * side * 4
    increase = res["peak_bytes"] - res["baseline_bytes"]
    out = {
        "image": [side, side], "image_mib": image_bytes / 2**20, "budget_mib": args.budget_mib,
        "image_over_budget": image_bytes / budget, "tile": res["tile"], "tiles": res["tiles"],
        "estimate_mib": res["estimate_bytes"] / 2**20, "baseline_mib": res["baseline_bytes"] / 2**20,
        "peak_mib": res["peak_bytes"] / 2**20, "increase_mib": increase / 2**20,
        "increase_over_budget": increase / budget, "predict_seconds": res["seconds"], "wall_seconds": wall,
    }
    print(f"image {side}x{side} float32 = {out['image_mib']:.0f} MiB = {out['image_over_budget']:.1f} x budget "
          f"({args.budget_mib:g} MiB); tile {tuple(res['tile'])}, {res['tiles']} tiles, estimate {out['estimate_mib']:.1f} MiB")
    print(f"peak RSS {out['peak_mib']:.0f} MiB, baseline {out['baseline_mib']:.0f} MiB: increase {out['increase_mib']:.0f} MiB "
          f"= {out['increase_over_budget']:.2f} x budget; prediction {res['seconds']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
