"""Smoke test of benchmarks/spoco_loss_vs_torch_em.py (skipped without torch-em, a bench extra)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from bench_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    yield from load_script("spoco_loss_vs_torch_em")


def test_scatter_mean(bench):
    src = torch.tensor([[1.0, 2.0, 3.0, 5.0]])
    out = bench.scatter_mean(src, torch.tensor([0, 0, 2, 2]), 3)
    assert out.tolist() == [[1.5, 0.0, 4.0]]


def test_sparsify_keeps_a_fraction(bench):
    _, _, lab = bench.synthetic(1, 32, 3, 6, 0)
    sparse = bench.sparsify(lab, 0.5, 0)
    n = int(torch.unique(lab).numel()) - 1
    assert int(sparse.max()) == round(0.5 * n) and set(torch.unique(sparse).tolist()) == set(range(round(0.5 * n) + 1))


@pytest.mark.skipif(importlib.util.find_spec("torch_em") is None, reason="torch-em (bench extra) not installed")
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad:UserWarning")  # inside torch-em
def test_main_tiny(bench, tmp_path):
    report = bench.main(["--size", "32", "--objects", "6", "--dim", "4", "--batch", "1", "--rounds", "1",
                         "--warmup", "0", "--threads", "1", "--json", str(tmp_path / "loss.json")])
    if not report["torch_em"]:
        pytest.skip(report["note"])
    dense, sparse = report["values"]["dense"], report["values"]["sparse"]
    for key in ("pull", "push", "reg"):  # the terms whose definitions agree (dense labels)
        assert dense["unetkit"][key] == pytest.approx(dense["torch_em"][key], rel=1e-4, abs=1e-6)
    assert sparse["unetkit"]["push"] == pytest.approx(sparse["torch_em"]["push"], rel=1e-4, abs=1e-6)
    assert sparse["unetkit"]["u_push"] == pytest.approx(sparse["torch_em"]["u_push"], rel=1e-4, abs=1e-6)
    assert dense["torch_em_obj_rowwise_reproduced"] == pytest.approx(dense["torch_em"]["obj"], rel=1e-4)
    assert report["ratio_torch_em_to_unetkit"] > 0
