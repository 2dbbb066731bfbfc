"""Smoke test of benchmarks/tiling_vs_monai.py: tiny images, real seam checks (MONAI rows optional)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    yield from load_script("tiling_vs_monai")


# 2-D: depth 2 (halo 20, period 4), 64^2 tiles on 96^2; 3-D: depth 1 (halo 8), 32^3 tiles on 40^3
TINY = [
    "--size2d", "96x96", "--tile2d", "64", "--depth2d", "2", "--base2d", "4",
    "--size3d", "40x40x40", "--tile3d", "32", "--depth3d", "1", "--base3d", "4",
    "--batch", "2", "--repeats", "1",
]


def monai_available(bench) -> bool:
    return bench.load_monai()[0] is not None


def check_result(res, with_monai: bool) -> None:
    names = ["exact", "blend", "halo-crop"] + (["monai"] if with_monai else [])
    assert list(res["seconds_per_image"]) == names
    seam = res["seam"]
    # valid padding: tiled == whole image up to float rounding, seams invisible
    assert seam["exact"]["max"] < 1e-5
    assert seam["exact"]["interior_max"] < 1e-5
    assert seam["exact"]["step_ratio"] == pytest.approx(1.0, abs=1e-4)
    # same padding: clearly not the whole-image prediction
    for name in names[1:]:
        assert seam[name]["max"] > 1e-4, name
        assert seam[name]["mean"] > 1e-6, name
    assert seam["blend"]["interior_max"] > 1e-4
    for name in names:
        assert math.isfinite(res["megapixels_per_second"][name]) and res["megapixels_per_second"][name] > 0
        assert res["n_tiles"][name] >= 2
    # the same network input tile for every same-padding contender
    assert res["tile_shape"]["blend"] == res["tile_shape"]["halo-crop"]
    if with_monai:
        assert res["tile_shape"]["monai"] == res["tile_shape"]["blend"]
        assert set(res["ratio_vs_monai"]) == {"exact", "blend", "halo-crop"}
        for r in res["ratio_vs_monai"].values():
            assert math.isfinite(r) and r > 0
    else:
        assert res["ratio_vs_monai"] == {}
        assert any("MONAI" in n for n in res["notes"])


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tiles on one thread: on a loaded CPU, OpenMP threads waiting on each other at every
    small op make these runs ~10x slower. The thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_main_tiny(bench, tmp_path):
    out = tmp_path / "bench.json"
    report = bench.main(TINY + ["--threads", "1", "--json", str(out)])
    assert torch.get_num_threads() == 1 == report["threads"]
    assert [r["config"]["ndim"] for r in report["results"]] == [2, 3]
    for res in report["results"]:
        check_result(res, monai_available(bench))
    assert json.loads(out.read_text())["results"][0]["seam"] == report["results"][0]["seam"]


def test_without_monai(bench, monkeypatch, capsys):
    """MONAI missing: a clear note, and the unetkit rows still run and are checked."""
    threads = torch.get_num_threads()
    monkeypatch.setattr(bench, "load_monai", lambda: (None, "MONAI not installed (pip install monai)"))
    report = bench.main(TINY[:8] + ["--size3d", "0", "--batch", "2", "--repeats", "1"])
    assert torch.get_num_threads() == threads  # no --threads: left alone
    assert "MONAI not installed" in capsys.readouterr().out
    assert report["monai"] is None
    (res,) = report["results"]
    check_result(res, with_monai=False)


def test_seam_on_crop_when_whole_image_too_big(bench):
    res = bench.run_case(ndim=2, size=(96, 80), tile=64, depth=2, base=4, batch=2, repeats=1,
                         use_monai=False, seam_budget=200_000)
    assert tuple(res["config"]["seam_shape"]) != (96, 80)
    assert all(s <= n for s, n in zip(res["config"]["seam_shape"], (96, 80)))
    assert any("crop" in n for n in res["notes"])
    assert res["seam"]["exact"]["max"] < 1e-5
    assert res["seam"]["blend"]["max"] > 1e-4


def test_monai_window_count(bench):
    """monai_windows predicts the number of windows MONAI's sliding window really runs."""
    swi = bench.load_monai()[0]
    if swi is None:
        pytest.skip("MONAI not installed")
    calls = []

    def predictor(x):
        calls.append(x.shape[0])
        return x

    for shape, roi in (((70, 50), (32, 32)), ((20, 40, 33), (16, 16, 16)), ((24, 24), (32, 32))):
        calls.clear()
        with torch.no_grad():
            swi(torch.zeros(1, 1, *shape), roi_size=roi, sw_batch_size=1, predictor=predictor, overlap=0.25,
                mode="gaussian")
        assert sum(calls) == bench.monai_windows(shape, roi, 0.25), (shape, roi)


def test_step_ratio_sees_a_seam(bench):
    ref = np.tile(np.arange(16, dtype=np.float32), (1, 16, 1))  # (1, 16, 16), smooth ramp along x
    pred = ref.copy()
    assert bench.step_ratio(pred, ref, [[], [8]]) == pytest.approx(1.0)
    pred[:, :, 8:] += 3.0  # a jump at the seam x = 8
    assert bench.step_ratio(pred, ref, [[], [8]]) == pytest.approx(4.0)
    assert bench.step_ratio(pred, ref, [[], []]) is None
