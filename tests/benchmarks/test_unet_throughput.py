"""Smoke test of benchmarks/unet_throughput.py: tiny configs, real equivalence checks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    yield from load_script("unet_throughput")


TINY = ["--depth", "2", "--size", "44", "--batch", "1", "--rounds", "2", "--warmup", "1", "--peak-size", "256"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--ndim", "2", "--features", "4"],
        ["--ndim", "2", "--features", "4", "--upsampling", "transposed"],
        # 3-D: valid rounds 24 up to its smallest input, 44^3; same runs at 24^3 (time budget)
        ["--ndim", "3", "--features", "4", "--size", "24"],
    ],
    ids=["2d-nearest", "2d-transposed", "3d-nearest"],
)
def test_main_tiny(bench, extra, tmp_path):
    threads = torch.get_num_threads()
    out = tmp_path / "bench.json"
    report = bench.main(TINY + extra + ["--json", str(out)])
    assert torch.get_num_threads() == threads  # no --threads: left alone
    results = report["results"]
    assert [r["config"]["padding"] for r in results] == ["valid", "same"]
    for res in results:
        params = res["params"]
        assert params["unetkit"] == params["reference"] > 0
        assert res["max_output_difference"] <= bench.TOLERANCE
        assert "reference" in res["ratio"]
        for name, ratio in res["ratio"].items():
            assert math.isfinite(ratio) and ratio > 0, (name, ratio)
        for ips in res["images_per_second"].values():
            assert math.isfinite(ips) and ips > 0
        # efficiency against the matmul peak: FLOPs counted, fractions sane, fast inference exact
        assert res["peak"]["matmul_size"] == 256 and res["peak"]["gflops_inference"] > 0
        assert res["flops"]["training_step"] > 2 * res["flops"]["inference"] > 0  # backward ~ 2x forward
        assert set(res["efficiency"]) == {"training_step", "inference_before", "inference_after"}
        for name, eff in res["efficiency"].items():
            assert 0 < eff["fraction_of_peak"] < 1.5 and eff["gflops"] > 0, (name, eff)
        assert res["inference"]["max_output_difference"] <= bench.TOLERANCE
        assert res["inference"]["speedup"] > 0 and res["inference"]["norm"] == "batch"
    assert report["load_average"].keys() == {"before", "after"}
    assert json.loads(out.read_text())["results"][0]["params"] == results[0]["params"]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("upsampling", ["nearest", "transposed"])
def test_equivalence_check_detects_differences(bench, ndim, padding, upsampling):
    """Equal after the weight copy; the check fails once one reference weight is perturbed."""
    torch.manual_seed(0)
    cfg = dict(ndim=ndim, depth=2, base_features=4, padding=padding, upsampling=upsampling)
    uk = bench.UNet(1, 1, **cfg)
    ref = bench.ReferenceUNet(1, 1, **cfg)
    assert bench.n_params(uk) == bench.n_params(ref)
    x = torch.randn(2, 1, *uk.valid_input_shapes((24,) * ndim)[0])
    assert bench.max_output_difference(uk, ref, x) > bench.TOLERANCE  # independent inits differ
    bench.copy_weights_by_order(uk, ref)
    assert bench.max_output_difference(uk, ref, x) <= bench.TOLERANCE
    with torch.no_grad():
        ref.down[0][0].weight.add_(0.05)
    assert bench.max_output_difference(uk, ref, x) > bench.TOLERANCE


def test_run_config_rejects_wrong_reference(bench, monkeypatch):
    """Same parameter shapes, skip concatenated in the other order: run_config must refuse."""

    class Swapped(bench.ReferenceUNet):
        def forward(self, x):
            skips = []
            for convs in self.down:
                x = self._convs(convs, x)
                skips.append(x)
                x = torch.nn.functional.max_pool2d(x, self.factor)
            x = self._convs(self.bottom, x)
            for k, convs in enumerate(self.dec):
                x = self.up[k](x)
                x = self._convs(convs, torch.cat([x, skips[-1 - k]], dim=1))
            return self.head(x)

    monkeypatch.setattr(bench, "ReferenceUNet", Swapped)
    with pytest.raises(AssertionError, match="outputs differ"):
        bench.run_config(ndim=2, depth=2, size=32, batch=1, rounds=1, warmup=0, padding="same",
                         upsampling="transposed", base_features=4, device="cpu", torch_em=False)


def test_run_config_rejects_parameter_mismatch(bench, monkeypatch):
    class Wider(bench.ReferenceUNet):
        def __init__(self, *args, base_features=16, **kwargs):
            super().__init__(*args, base_features=base_features + 1, **kwargs)

    monkeypatch.setattr(bench, "ReferenceUNet", Wider)
    with pytest.raises(AssertionError, match="parameter counts differ"):
        bench.run_config(ndim=2, depth=2, size=32, batch=1, rounds=1, warmup=0, padding="same",
                         upsampling="nearest", base_features=4, device="cpu", torch_em=False)
