"""Smoke test of benchmarks/hpunet_step.py on tiny models and a 2 x 32^2 batch."""

from __future__ import annotations

import json
import math

import pytest
from bench_scripts import load_script

TINY = ["--size", "32", "--batch", "2", "--rounds", "1", "--warmup", "0", "--threads", "1",
        "--levels", "3", "--base", "4", "--max-channels", "8", "--blocks", "1", "--latent-scales", "2",
        "--depth", "2", "--features", "4", "--latent-dim", "2", "--unet-depth", "2"]


@pytest.fixture(scope="module")
def bench():
    yield from load_script("hpunet_step")


def test_main_tiny(bench, tmp_path):
    out = tmp_path / "hpunet_step.json"
    report = bench.main([*TINY, "--json", str(out)])
    med, mem = report["median_seconds"], report["activation_bytes"]
    assert set(med) == set(mem) == {"unet", "hpunet", "probunet"} and all(v > 0 for v in med.values())
    for ratios in (report["time_ratio_to_unet"], report["memory_ratio_to_unet"]):
        assert ratios["unet"] == 1.0 and all(math.isfinite(r) and r > 0 for r in ratios.values())
    assert report["parameters"]["hpunet"] == report["hpunet_parameters"]
    assert report["cuda_peak_bytes"] == {k: None for k in med}
    assert json.loads(out.read_text())["memory_ratio_to_unet"] == report["memory_ratio_to_unet"]


def test_matched_unet_is_closest(bench):
    import argparse

    args = argparse.Namespace(classes=2, unet_depth=2)
    target = 5000
    base = bench.matched_unet_base(target, args)
    gap = abs(bench.n_params(bench.unet(base, args)) - target)
    for other in (base - 1, base + 1):
        if other >= 1:
            assert abs(bench.n_params(bench.unet(other, args)) - target) >= gap
