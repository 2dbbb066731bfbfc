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
    # ...and the seam score sees it: float rounding for case 3, clearly more for case 2
    assert case3["seam_score"] < 1e-3
    assert case2["seam_score"] > 10 * case3["seam_score"]
    assert all(r["pairs"] > 0 for k, r in r["b"].items() if k[0] in "123")


def _ramp(size: int = 20) -> np.ndarray:
    """``(2, size, size)`` embeddings rising by 0.1 per pixel along x in channel 0."""
    emb = np.zeros((2, size, size), dtype=np.float64)
    emb[0] = 0.1 * np.arange(size)[None, :]
    return emb


NO_LINES = np.array([], dtype=int)


def test_seam_score_is_zero_when_the_prediction_equals_the_reference() -> None:
    labels = np.ones((20, 20), dtype=np.int32)
    r = seam_score(_ramp(), _ramp(), labels, (np.array([8]), np.array([8, 16])), (0, 20))
    assert r["seam_score"] == 0.0 and r["max_excess_jump"] == 0.0
    assert r["pairs"] == 20 + 2 * 20  # one line across y, two across x, 20 pixels long each


def test_seam_score_measures_a_step_against_the_reference_jump() -> None:
    labels = np.ones((20, 20), dtype=np.int32)
    stepped = _ramp()
    stepped[1, :, 8:] += 1.0  # a jump of 1 between columns 7 and 8, where the reference jumps by 0.1
    r = seam_score(stepped, _ramp(), labels, (NO_LINES, np.array([8])), (0, 20))
    assert r["mean_excess_jump"] == pytest.approx(1.0)
    assert r["reference_jump"] == pytest.approx(0.1)
    assert r["seam_score"] == pytest.approx(10.0)
    # a line elsewhere does not see the step
    assert seam_score(stepped, _ramp(), labels, (NO_LINES, np.array([12])), (0, 20))["seam_score"] == pytest.approx(0.0)


def test_seam_score_only_counts_pairs_inside_one_object_and_the_region() -> None:
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[:, :10] = 1
    labels[:, 10:] = 2  # column 10 starts another object: the pair (9, 10) is not inside one object
    stepped = _ramp()
    stepped[1, :, 10:] += 5.0
    stepped[1, :, 4:] += 1.0
    r = seam_score(stepped, _ramp(), labels, (NO_LINES, np.array([4, 10])), (0, 20))
    assert r["pairs"] == 20 and r["mean_excess_jump"] == pytest.approx(1.0)
    labels[:5] = 0  # background rows do not count
    assert seam_score(stepped, _ramp(), labels, (NO_LINES, np.array([4])), (0, 20))["pairs"] == 15
    # the region [6, 20) excludes column 4 and the pairs beside it
    with pytest.raises(ValueError, match="no within-object pixel pair"):
        seam_score(stepped, _ramp(), labels, (NO_LINES, np.array([4])), (6, 20))


def test_excess_map_marks_the_step() -> None:
    from unetkit.reproduce.shift import excess_map

    stepped = _ramp()
    stepped[1, :, 8:] += 1.0
    m = excess_map(stepped, _ramp())
    assert m.shape == (20, 20)
    assert np.allclose(m[:, 7], 1.0) and np.allclose(np.delete(m, 7, axis=1), 0.0)


def test_neighbours_separated_counts_lattice_pairs() -> None:
    from unetkit.reproduce.shift import neighbours_separated

    where = np.array([[0, 0], [0, 15], [15, 0], [15, 15]])
    assert neighbours_separated(where, np.array([1, 2, 2, 1]), 15) == 1.0  # a 2-colouring
    assert neighbours_separated(where, np.array([1, 1, 2, 2]), 15) == 0.5


def test_unknown_experiment() -> None:
    with pytest.raises(KeyError, match="available: shift"):
        get_experiment("nope")
