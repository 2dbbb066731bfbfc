"""Smoke test of benchmarks/hpunet_sampling.py on tiny models and one 32^2 image."""

from __future__ import annotations

import json
import math

import pytest
from bench_scripts import load_script

TINY = ["--size", "32", "--samples", "4", "--rounds", "1", "--warmup", "0", "--threads", "1",
        "--levels", "3", "--base", "4", "--max-channels", "8", "--blocks", "1", "--latent-scales", "2",
        "--depth", "2", "--features", "4", "--latent-dim", "2"]


@pytest.fixture(scope="module")
def bench():
    yield from load_script("hpunet_sampling")


def test_main_tiny(bench, tmp_path):
    out = tmp_path / "sampling.json"
    report = bench.main([*TINY, "--json", str(out)])
    med = report["median_seconds"]
    assert set(med) == {"hpunet_batched", "hpunet_naive", "probunet_batched", "probunet_naive"}
    assert all(v > 0 for v in med.values())
    assert set(report["speedup_naive_over_batched"]) == {"hpunet", "probunet"}
    for k, ratio in report["speedup_naive_over_batched"].items():
        assert math.isfinite(ratio) and ratio > 0
        assert ratio == pytest.approx(med[f"{k}_naive"] / med[f"{k}_batched"])
        check = report["checks"][k]
        assert check["batched_shape"] == check["naive_shape"] == [1, 4, 2, 32, 32]
        assert check["same_seed_bitwise_equal"] and check["finite"]
        assert check["spread_batched"] > 0 and check["spread_naive"] > 0
    assert report["cuda_peak_bytes"] == {k: None for k in med}
    assert all(len(v) == 1 for v in report["all_seconds"].values())
    assert json.loads(out.read_text())["speedup_naive_over_batched"] == report["speedup_naive_over_batched"]


def test_batched_and_naive_shapes(bench):
    import argparse

    import torch

    args = argparse.Namespace(seed=0, classes=3, levels=2, base=2, max_channels=4, blocks=1, latent_scales=1,
                              latent_channels=1)
    model = bench.build("hpunet", args).eval()
    x = torch.randn(2, 1, 8, 8)
    assert tuple(bench.batched(model, x, 3).shape) == (2, 3, 3, 8, 8)
    assert tuple(bench.naive(model, x, 3).shape) == (2, 3, 3, 8, 8)
