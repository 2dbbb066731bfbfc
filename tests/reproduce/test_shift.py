"""Smoke run of ``unetkit reproduce shift``: the pipeline and its structural claims."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.reproduce import get_experiment
from unetkit.reproduce.shift import seam_score


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shift")
    assert main(["reproduce", "shift", "--out", str(out), "--budget", "smoke"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_report_and_figures_are_written(smoke: tuple[Path, dict]) -> None:
    out, results = smoke
    report = (out / "report.md").read_text()
    for name in ("a_same_looking_objects.png", "b_tile_and_stitch.png", "c_constant_input.png"):
        assert (out / name).stat().st_size > 1000
        assert name in report
    # numbers in the report are the run's numbers
    assert f"| 16 | {results['a']['spacing_16']['discs']} |" in report


def test_structural_claims_hold_even_untrained(smoke: tuple[Path, dict]) -> None:
    _, r = smoke
    # discs spaced by a multiple of f^l sit on one grid phase and get identical embeddings
    assert r["a"]["spacing_16"]["grid_phases_covered"] == 1
    assert r["a"]["spacing_16"]["distinct_centre_embeddings"] == 1
    assert r["a"]["spacing_16"]["neighbour_pairs_in_different_clusters"] == 0.0  # so no disc can be told apart
    assert r["a"]["spacing_15"]["grid_phases_covered"] == 16  # 4 x 4 discs at spacing 15 cover 4 phases per axis
    # constant input: nearest upsampling gives one output, learnt upsampling f^(d l) = 64
    assert r["c"]["nearest"]["distinct_output_vectors"] == 1
    assert r["c"]["transposed"]["distinct_output_vectors"] == 64
    # exact tiling equals the whole image; uncropped stitching does not
    case3 = next(v for k, v in r["b"].items() if k.startswith("3_"))
    case2 = r["b"]["2_train_w_gt_f^l_uncropped_20"]
    assert case3["max_abs_diff_to_whole_image"] <= 1e-5
    assert case2["max_abs_diff_to_whole_image"] > 1e-5


def test_seam_score_detects_a_step() -> None:
    labels = np.ones((20, 20), dtype=np.int32)
    smooth = np.zeros((2, 20, 20), dtype=np.float32)
    smooth[0] = np.linspace(0, 1, 20)[None, :]
    assert abs(seam_score(smooth, labels, np.array([8, 16]))) < 1e-6  # even ramp: no seam
    stepped = smooth.copy()
    stepped[1, :, 8:] += 1.0  # a jump between columns 7 and 8
    assert seam_score(stepped, labels, np.array([8])) > 10


def test_neighbours_separated_counts_lattice_pairs() -> None:
    from unetkit.reproduce.shift import neighbours_separated

    where = np.array([[0, 0], [0, 15], [15, 0], [15, 15]])
    assert neighbours_separated(where, np.array([1, 2, 2, 1]), 15) == 1.0  # a 2-colouring
    assert neighbours_separated(where, np.array([1, 1, 2, 2]), 15) == 0.5


def test_unknown_experiment() -> None:
    with pytest.raises(KeyError, match="available: shift"):
        get_experiment("nope")
