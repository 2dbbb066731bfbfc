"""``unetkit reproduce hpunet``: the smoke run's outputs; metrics, regions and claims on hand-built cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.data.ambiguous import ambiguous_objects
from unetkit.reproduce import EXPERIMENTS
from unetkit.reproduce.hpunet import (
    MODELS,
    OUTPUTS,
    _random_colourings,
    ambiguous_metrics,
    claims,
    instance_scores,
    regions,
    spread,
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("hpunet")
    assert main(["reproduce", "hpunet", "--out", str(out), "--budget", "smoke"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_outputs_and_keys(smoke: tuple[Path, dict]) -> None:
    out, r = smoke
    assert "hpunet" in EXPERIMENTS
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    for figure in ("samples.png", "instances.png", "training.png"):
        assert (out / figure).stat().st_size > 1000
        assert figure in (out / "report.md").read_text()
    assert set(r["ambiguous"]) == {*MODELS, "oracle"}
    assert set(r["spread"]) == {"hpunet", "hpunet_only_0", "hpunet_only_1", "oracle"}  # smoke: 2 latent scales
    assert set(r["instances"]) == {*MODELS, "oracle", "foreground_components"}
    assert len(r["geco"]["kl_last"]) == 2
    for m in MODELS:
        assert set(r["ambiguous"][m]) == {"ged", "hungarian_iou", "freq_mae", "freq_mae_ambiguous", "iou_rec"}
        assert 0 <= r["ambiguous"][m]["hungarian_iou"] <= 1 and 0 <= r["ambiguous"][m]["iou_rec"] <= 1
        assert 0 <= r["instances"][m]["rand_error"] <= 1
        assert (out / "runs" / f"ambiguous_{m}" / "checkpoints" / "last.pt").is_file()
    assert r["instances"]["oracle"]["rand_error"] == pytest.approx(0.0, abs=1e-9)  # true colourings cluster exactly
    assert r["geco"]["kappa"] == 0.05 and r["seconds"] > 0
    for line in claims(r):
        assert line in (out / "report.md").read_text()


def test_metrics_of_the_true_distribution_beat_a_constant_guess() -> None:
    data = ambiguous_objects(3, (32, 32), 4, seed=5, n_objects=2, radius=(4.0, 6.0))
    rng = np.random.default_rng(0)
    from unetkit.data.ambiguous import sample_truth

    truth = np.stack([sample_truth(data, i, 64, rng) for i in range(3)])
    empty = np.zeros_like(truth)
    good, bad = ambiguous_metrics(truth, data, None), ambiguous_metrics(empty, data, None)
    assert good["freq_mae"] < 0.05 < bad["freq_mae"]
    assert good["ged"] < bad["ged"]
    perfect = ambiguous_metrics(truth, data, data.graders)  # reconstructions equal to the graders
    assert perfect["iou_rec"] == pytest.approx(1.0)


def test_regions_and_spread_by_hand() -> None:
    data = ambiguous_objects(1, (40, 40), 2, seed=1, n_objects=2, radius=(6.0, 7.0), presence=(0.5, 1.0))
    core, ring = regions(data, 0)
    uncertain = data.presence[0, : data.n_objects[0]] < 1
    assert core.any() == bool(uncertain.any()) and ring.any() == bool((~uncertain).any())
    assert not (core & ring).any()
    always = np.zeros((1, 8, 40, 40), dtype=np.int64)
    assert spread(always, data)["core_std"] in (0.0,) or np.isnan(spread(always, data)["core_std"])
    flip = np.zeros((1, 8, 40, 40), dtype=np.int64)
    flip[0, ::2][:, core] = 1  # half of the samples mark the cores
    if core.any():
        assert spread(flip, data)["core_std"] == pytest.approx(0.5)


def test_random_colourings_cluster_back_to_the_instances() -> None:
    inst = np.zeros((1, 24, 24), dtype=np.int64)
    inst[0, 2:11, 2:11], inst[0, 2:11, 11:20], inst[0, 13:22, 4:16] = 1, 2, 3  # two touching squares
    draws = _random_colourings(inst, 16, 8, np.random.default_rng(0))
    assert draws.shape == (1, 16, 24, 24) and draws[:, :, inst[0] == 0].max() == 0
    found, err = instance_scores(draws, inst)
    assert err == pytest.approx(0.0, abs=1e-9) and found[0].max() == 3


def _results(**over: float) -> dict:
    amb = {"ged": 0.3, "hungarian_iou": 0.5, "iou_rec": 0.8, "freq_mae": 0.1, "freq_mae_ambiguous": 0.2}
    r = {"ambiguous": {"hpunet": dict(amb), "probunet": dict(amb), "oracle": dict(amb)},
         "spread": {k: {"core_std": 0.3, "ring_std": 0.3}
                    for k in ("hpunet", "hpunet_only_0", "hpunet_only_1", "hpunet_only_2")},
         "instances": {m: {"rand_error": 0.5, "iou_rec": 0.5, "colours_per_sample": 3.0}
                       for m in (*MODELS, "oracle", "foreground_components")},
         "budget_sizes": {"samples": 16, "colours": 8},
         "geco": {"lambda_first": 1.0, "lambda_max": 2.0, "lambda_max_step": 10, "lambda_last": 1.5,
                  "rec_per_pixel_last": 0.1, "kappa": 0.05, "kl_last": [0.5, 20.0, 1.0]}}
    r["ambiguous"]["hpunet"]["hungarian_iou"] = over.get("hpu_hiou", 0.5)
    r["ambiguous"]["hpunet"]["iou_rec"] = over.get("hpu_rec", 0.8)
    r["spread"]["hpunet_only_0"]["core_std"] = over.get("global_core", 0.3)
    r["spread"]["hpunet_only_2"]["ring_std"] = over.get("local_ring", 0.3)
    r["spread"]["hpunet_only_1"]["core_std"] = over.get("middle_core", 0.1)
    r["instances"]["hpunet"]["rand_error"] = over.get("hpu_rand", 0.5)
    return r


def test_claims_follow_the_numbers() -> None:
    text = "\n".join(claims(_results(hpu_hiou=0.6, hpu_rec=0.95, global_core=0.4, local_ring=0.4, hpu_rand=0.1)))
    assert "HPU-Net 0.600 beats prob. U-Net 0.500" in text
    assert "HPU-Net 0.950 beats prob. U-Net 0.800" in text
    assert "The most global scale carries more" in text and "the most local scale carries more" in text
    assert "HPU-Net 0.100 beats prob. U-Net 0.500" in text  # Rand error: lower is better
    assert "The HPU-Net beats foreground components" in text
    assert "Most presence variation: scale 0 alone (0.400)" in text and "scale 1 20.00" in text
    text = "\n".join(claims(_results(hpu_hiou=0.4, hpu_rec=0.81, hpu_rand=0.9, global_core=0.0, middle_core=0.35)))
    assert "HPU-Net 0.400 loses to prob. U-Net 0.500" in text and "HPU-Net 0.810 ties with" in text
    assert "does not carry more of the presence" in text and "HPU-Net 0.900 loses to" in text
    assert "does not beat foreground components" in text and "Most presence variation: scale 1 alone (0.350)" in text
