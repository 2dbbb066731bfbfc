"""``unetkit reproduce shift``: the smoke run's outputs and structural claims; the measures on hand-built cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.reproduce import get_experiment
from unetkit.reproduce.shift import (
    A_NETS,
    BOUND,
    MARGIN,
    band_width,
    border_distance,
    border_profile,
    constant_output_stats,
    disc_table,
    excess_map,
    greedy_separable,
    lattice_neighbours,
    phase_spread,
    seam_excess,
    separation,
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shift")
    assert main(["reproduce", "shift", "--out", str(out), "--budget", "smoke"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_report_figures_and_keys_are_written(smoke: tuple[Path, dict]) -> None:
    out, r = smoke
    report = (out / "report.md").read_text()
    for name in ("a_same_looking_objects.png", "b_tile_and_stitch.png", "c_constant_input.png",
                 "c_same_padding_border.png"):
        assert (out / name).stat().st_size > 1000
        assert name in report
    # OUTPUTS (what --overwrite may replace) is exactly what a run writes
    from unetkit.reproduce.shift import OUTPUTS

    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    # every trained net has its untrained baseline, with the same measures
    for key, spacing, up in A_NETS:
        entry = r["a"][key]
        assert (entry["spacing"], entry["upsampling"]) == (spacing, up)
        assert set(entry["trained"]) == set(entry["untrained"]) >= {
            "pairs_beyond_margin", "neighbour_pairs_beyond_margin", "separable_set", "mean_shift_clusters",
            "neighbour_distance_median_per_margin", "same_phase_max_distance"}
    for case in r["b"]["cases"].values():
        for state in ("trained", "untrained"):
            assert {"mean_excess_per_margin", "max_excess_per_margin", "pairs"} <= set(case[state])
            assert case[state]["pairs"] > 0
    for net in ("valid_nearest", "valid_transposed"):
        assert set(r["c"][net]) == {"trained", "untrained", "random_x2"}
    same = r["c"]["same_padding_nearest"]
    assert len(same["trained"]["profile"]) == (same["image"] - 1) // 2 + 1
    # the report's numbers are the run's numbers
    row = r["a"]["spacing_15_transposed"]
    assert f"| spacing 15, transposed | {row['discs']} / {row['grid_phases_covered']} | trained |" in report
    for case in r["b"]["cases"].values():
        assert f"| {case['boundaries']} | {case['trained']['pairs']} |" in report


def test_structural_claims_hold_trained_or_not(smoke: tuple[Path, dict]) -> None:
    _, r = smoke
    for state in ("trained", "untrained"):
        # discs spaced by a multiple of f^l sit on one grid phase and get the same embedding: none separable
        s16 = r["a"]["spacing_16_transposed"][state]
        assert r["a"]["spacing_16_transposed"]["grid_phases_covered"] == 1
        assert s16["same_phase_max_distance"] <= 1e-6 * s16["embedding_scale"]
        assert s16["separable_set"] == 1 and s16["neighbour_pairs_beyond_margin"] == 0.0
        # 4 x 4 discs at spacing 15 cover 4 phases per axis; copies on one phase agree, phases differ
        s15 = r["a"]["spacing_15_transposed"][state]
        assert r["a"]["spacing_15_transposed"]["grid_phases_covered"] == 16
        assert s15["between_phase_min_distance"] > s15["same_phase_max_distance"]
        # constant input, valid padding: nearest upsampling gives exactly one output, learnt upsampling one per phase
        assert r["c"]["valid_nearest"][state]["distinct_output_vectors_exact"] == 1
        transposed = r["c"]["valid_transposed"][state]
        assert transposed["within_phase_max_spread"] == 0.0
        assert transposed["distinct_output_vectors_exact"] == transposed["phase_classes"] == BOUND
        # zero padding: a constant image gives a non-constant output near the border, constant far from it
        same = r["c"]["same_padding_nearest"]
        prof = same[state]["profile"]
        assert 0 < same[state]["band_nonconstant"] <= same["unaffected_from_distance"]
        assert prof[0] > same[state]["interior_floor"]
    # exact tiling equals the whole image; uncropped stitching does not
    case2, case3 = (v["trained"] for k, v in r["b"]["cases"].items() if k[0] in "23")
    scale = r["b"]["max_abs_whole_image_embedding_w20"]
    assert case3["max_abs_diff_to_whole_image"] <= 1e-5 * scale
    assert case2["max_abs_diff_to_whole_image"] > 10 * case3["max_abs_diff_to_whole_image"]
    assert case2["mean_excess_per_margin"] > 10 * case3["mean_excess_per_margin"]


# ------------------------------------------------------------------------------------------- separability
def test_separation_on_hand_made_embeddings() -> None:
    v = np.array([[0.0], [10.0], [20.0], [3.0]])  # distances: 10, 20, 3 | 10, 7 | 17
    r = separation(v, 6.0, pairs=np.array([[0, 3], [0, 1]]))
    assert r["objects"] == 4
    assert r["pairs_beyond_margin"] == pytest.approx(5 / 6)
    assert r["min_distance_per_margin"] == pytest.approx(0.5)
    assert r["separable_set"] == 3  # 0, 10, 20; 3 is within the margin of 0
    assert r["neighbour_pairs_beyond_margin"] == 0.5
    assert r["neighbour_distance_min_per_margin"] == pytest.approx(0.5)
    assert r["neighbour_distance_median_per_margin"] == pytest.approx((3 + 10) / 2 / 6)
    assert "mean_shift_clusters" not in r


def test_separation_clusters_by_mean_shift() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    v = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.01, size=(15, 2))
    pairs = np.array([[0, 1], [0, 5], [5, 10]])  # same cluster, then two pairs across clusters
    r = separation(v, MARGIN, pairs=pairs, bandwidth=3.0)
    assert r["mean_shift_clusters"] == 3
    assert r["separable_set"] == 3
    assert r["neighbour_pairs_in_different_clusters"] == pytest.approx(2 / 3)
    assert r["neighbour_pairs_beyond_margin"] == pytest.approx(2 / 3)
    # the same layout shrunk far below the margin: one cluster, nothing separable
    tiny = separation(v * 1e-4, MARGIN, pairs=pairs, bandwidth=3.0)
    assert tiny["mean_shift_clusters"] == 1 and tiny["separable_set"] == 1 and tiny["pairs_beyond_margin"] == 0.0


def test_greedy_separable_counts_identical_rows_once() -> None:
    square = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0], [7.0, 7.0]])
    assert greedy_separable(square, 6.0) == 4
    assert greedy_separable(np.vstack([square, square]), 6.0) == 4
    assert greedy_separable(square, 7.0) == 2  # 'farther than': the sides (7) do not count, the diagonal does
    assert greedy_separable(np.zeros((5, 3)), 1e-9) == 1


def test_greedy_separable_keeps_the_rows_with_fewest_conflicts_first() -> None:
    star = np.array([[0.0, 0.0], [0.0, 4.0], [4.0, 0.0]])  # the centre conflicts with both others (margin 5)
    assert greedy_separable(star, 5.0) == 2  # row order would keep the centre and then nothing else
    assert greedy_separable(star, 5.0, max_graph=1) == 1  # ... as the row-order fallback for large inputs does
    line = np.arange(10.0)[:, None] * 4.0  # 0, 4, ..., 36 with margin 5: every second point
    assert greedy_separable(line, 5.0) == 5


def test_lattice_neighbours_and_phase_spread() -> None:
    where = np.array([[0, 0], [0, 15], [15, 0], [15, 15], [0, 30]])
    pairs = lattice_neighbours(where, 15)
    assert {tuple(p) for p in pairs} == {(0, 1), (0, 2), (1, 3), (2, 3), (1, 4)}
    v = np.array([[0.0, 0.0], [0.0, 0.0], [4.0, 0.0], [4.0, 1.0]])
    within, between = phase_spread(v, np.array([0, 0, 1, 1]))
    assert within == pytest.approx(0.5) and between == pytest.approx(np.hypot(4.0, 0.5))
    within, between = phase_spread(v[:2], np.array([3, 3]))
    assert within == 0.0 and np.isnan(between)


def test_disc_table_means_and_spread() -> None:
    labels = np.zeros((4, 6), dtype=np.int32)
    labels[1:3, 0:2] = 1
    labels[1:3, 3:5] = 2
    emb = np.zeros((2, 4, 6))
    emb[0, 1:3, 0] = 1.0
    emb[0, 1:3, 1] = 3.0  # disc 1: values 1, 3 in channel 0 -> mean 2, every pixel 1 away
    emb[1, 1:3, 3:5] = 5.0  # disc 2: constant
    _, _, means, spread = disc_table(emb, labels)
    assert np.allclose(means, [[2.0, 0.0], [0.0, 5.0]])
    assert np.allclose(spread, [1.0, 0.0])


def test_constant_output_stats_on_a_periodic_and_a_constant_array() -> None:
    H = W = 20
    yy, xx = np.mgrid[:H, :W]
    y = np.stack([10.0 * (yy % 8), 10.0 * (xx % 8)]).astype(np.float32)  # one vector per phase, 10 apart
    r = constant_output_stats(y, margin=6.0, bandwidth=3.0)
    assert r["distinct_output_vectors_exact"] == r["phase_classes"] == 64
    assert r["within_phase_max_spread"] == 0.0
    assert r["between_phase_min_distance"] == pytest.approx(10.0)
    assert r["phase_means_separable_set"] == 64 and r["phase_means_pairs_beyond_margin"] == 1.0
    assert r["phase_means_mean_shift_clusters"] == 64
    c = constant_output_stats(np.full((3, H, W), 0.25, np.float32), margin=6.0, bandwidth=3.0)
    assert c["distinct_output_vectors_exact"] == 1 and c["between_phase_min_distance"] == 0.0
    assert c["phase_means_separable_set"] == 1 and c["phase_means_pairs_beyond_margin"] == 0.0
    # scaling the periodic pattern far below the margin keeps 64 exact outputs but separates nothing
    s = constant_output_stats(y * 1e-3, margin=6.0, bandwidth=3.0)
    assert s["distinct_output_vectors_exact"] == 64 and s["phase_means_separable_set"] == 1


# ------------------------------------------------------------------------------------------- border band
def test_border_distance() -> None:
    d = border_distance((5, 6))
    assert d[0].tolist() == [0] * 6 and d[:, 0].tolist() == [0] * 5
    assert d[2].tolist() == [0, 1, 2, 2, 1, 0]


def test_border_profile_and_band_width_on_a_hand_made_array() -> None:
    y = np.full((2, 21, 21), 7.0)
    y[0, 0, 10] += 1.0  # distance 0 from the border
    y[1, 10, 3] -= 0.5  # distance 3
    y[0, 17, 10] += 0.25  # distance 3 (from the bottom border)
    prof = border_profile(y)
    assert prof.shape == (11,)
    assert prof.tolist() == pytest.approx([1.0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0])
    assert band_width(prof, 0.0) == 4
    assert band_width(prof, 0.6) == 1
    assert band_width(prof, 2.0) == 0
    # an explicit interior value: everything deviates by 1 more along channel 1
    shifted = border_profile(y, interior=np.array([7.0, 6.0]))
    assert shifted[5] == pytest.approx(1.0) and band_width(shifted, 0.0) == 11


# ------------------------------------------------------------------------------------------- seams
def _ramp(size: int = 20) -> np.ndarray:
    """``(2, size, size)`` embeddings rising by 0.1 per pixel along x in channel 0."""
    emb = np.zeros((2, size, size), dtype=np.float64)
    emb[0] = 0.1 * np.arange(size)[None, :]
    return emb


NO_LINES = np.array([], dtype=int)


def test_seam_excess_is_zero_when_the_prediction_equals_the_reference() -> None:
    labels = np.ones((20, 20), dtype=np.int32)
    r = seam_excess(_ramp(), _ramp(), labels, (np.array([8]), np.array([8, 16])), (0, 20))
    assert r["mean_excess_per_margin"] == 0.0 and r["max_excess_jump"] == 0.0
    assert r["pairs"] == 20 + 2 * 20  # one line across y, two across x, 20 pixels long each


def test_seam_excess_measures_a_step_in_margins() -> None:
    labels = np.ones((20, 20), dtype=np.int32)
    stepped = _ramp()
    stepped[1, :, 8:] += 3.0  # a jump of 3 between columns 7 and 8, where the reference jumps by 0.1
    r = seam_excess(stepped, _ramp(), labels, (NO_LINES, np.array([8])), (0, 20), margin=6.0)
    assert r["mean_excess_jump"] == pytest.approx(3.0)
    assert r["mean_excess_per_margin"] == pytest.approx(0.5) and r["max_excess_per_margin"] == pytest.approx(0.5)
    assert r["reference_jump"] == pytest.approx(0.1)
    # a line elsewhere does not see the step
    assert seam_excess(stepped, _ramp(), labels, (NO_LINES, np.array([12])), (0, 20))["mean_excess_per_margin"] == 0.0


def test_seam_excess_only_counts_pairs_inside_one_object_and_the_region() -> None:
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[:, :10] = 1
    labels[:, 10:] = 2  # column 10 starts another object: the pair (9, 10) is not inside one object
    stepped = _ramp()
    stepped[1, :, 10:] += 5.0
    stepped[1, :, 4:] += 1.0
    r = seam_excess(stepped, _ramp(), labels, (NO_LINES, np.array([4, 10])), (0, 20))
    assert r["pairs"] == 20 and r["mean_excess_jump"] == pytest.approx(1.0)
    labels[:5] = 0  # background rows do not count
    assert seam_excess(stepped, _ramp(), labels, (NO_LINES, np.array([4])), (0, 20))["pairs"] == 15
    # the region [6, 20) excludes column 4 and the pairs beside it
    with pytest.raises(ValueError, match="no within-object pixel pair"):
        seam_excess(stepped, _ramp(), labels, (NO_LINES, np.array([4])), (6, 20))


def test_excess_map_marks_the_step() -> None:
    stepped = _ramp()
    stepped[1, :, 8:] += 1.0
    m = excess_map(stepped, _ramp())
    assert m.shape == (20, 20)
    assert np.allclose(m[:, 7], 1.0) and np.allclose(np.delete(m, 7, axis=1), 0.0)


def test_unknown_experiment() -> None:
    with pytest.raises(KeyError, match="available: shift"):
        get_experiment("nope")
