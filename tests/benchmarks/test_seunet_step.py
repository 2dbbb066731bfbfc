"""Smoke test of benchmarks/seunet_step.py on tiny networks."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    yield from load_script("seunet_step")


def test_main_tiny(bench, tmp_path):
    out = tmp_path / "seunet_step.json"
    report = bench.main(["--patch", "16", "--depth", "1", "--features", "2", "--scales", "1", "3", "--rounds", "2",
                         "--warmup", "0", "--threads", "1", "--json", str(out)])
    med, mem = report["median_seconds"], report["activation_bytes"]
    assert set(med) == {"unet", "seunet_S1", "seunet_S3"} and all(v > 0 for v in med.values())
    assert report["time_ratio_to_unet"]["unet"] == 1.0
    # three lifted scales keep about three times the activations of one
    assert mem["seunet_S3"] > 2 * mem["seunet_S1"] > 0
    assert report["cuda_peak_bytes"] == {k: None for k in med}
    assert json.loads(out.read_text())["memory_ratio_to_unet"] == report["memory_ratio_to_unet"]


def test_saved_bytes_counts_what_backward_keeps(bench):
    import torch

    lin = torch.nn.Conv2d(1, 1, 1, bias=False)
    x = torch.randn(1, 1, 8, 8)
    y = torch.zeros(1, 8, 8, dtype=torch.long)
    # conv saves its input (8*8 float32 = 256 B); cross-entropy saves the log-softmax (256 B) and the target
    assert bench.saved_bytes(lin, x, y) >= 2 * 256
