"""Smoke test of benchmarks/clustering_speed.py on a tiny image."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    yield from load_script("clustering_speed")


def test_main_tiny(bench, tmp_path):
    out = tmp_path / "clustering.json"
    report = bench.main(["--size", "48", "--dim", "4", "--objects", "4", "--full-crops", "24", "32",
                         "--json", str(out)])
    results = report["results"]
    assert set(results) == {"mutex_watershed", "hdbscan", "mean_shift"}
    assert results["mutex_watershed"]["ratio_to_mws"] == 1.0
    for res in results.values():
        assert res["seconds"] > 0 and res["adapted_rand_error"] < 0.05 and 0.0 <= res["sbd"] <= 1.0
    full = report["hdbscan_all_pixels"]
    assert [c["edge"] for c in full["crops"]] == [24, 32]
    assert all(c["hdbscan_seconds"] > 0 and c["ratio"] > 0 for c in full["crops"])
    assert full["extrapolated_seconds"] > 0 and full["extrapolated_ratio_to_mws"] > 0
    assert json.loads(out.read_text())["results"].keys() == results.keys()
