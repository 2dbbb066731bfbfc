"""Smoke test of benchmarks/spoco_step.py on a tiny U-Net and patch."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    yield from load_script("spoco_step")


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_main_tiny(bench, tmp_path, fraction):
    out = tmp_path / "spoco_step.json"
    report = bench.main(["--patch", "32", "--depth", "2", "--features", "4", "--dim", "4", "--objects", "6",
                         "--rounds", "2", "--warmup", "0", "--optimizer", "sgd", "--threads", "1", "--fraction", str(fraction),
                         "--json", str(out)])
    med = report["median_seconds"]
    assert set(med) == {"embedding", "spoco"} and all(v > 0 for v in med.values())
    assert report["ratio_spoco_to_embedding"] == pytest.approx(med["spoco"] / med["embedding"])
    assert all(len(v) == 2 for v in report["all_seconds"].values())
    assert json.loads(out.read_text())["ratio_spoco_to_embedding"] == report["ratio_spoco_to_embedding"]
