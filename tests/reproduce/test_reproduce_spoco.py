"""``unetkit reproduce spoco``: the smoke run's outputs and properties; the helpers on hand-built cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.data.sparse import objects_to_keep
from unetkit.reproduce.spoco import CLUSTERINGS, FRACTIONS, METRICS, OUTPUTS, budget_labels, cells, pca_rgb

SETTINGS_2D = ("embedding", *(f"spoco@{p}" for p in FRACTIONS), "spoco@0.1_no_ucon", "spoco@0.1_no_upush",
               "budget_dense_1_image", "budget_sparse_N_images")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("spoco")
    assert main(["reproduce", "spoco", "--out", str(out), "--budget", "smoke"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_outputs_and_keys(smoke: tuple[Path, dict]) -> None:
    out, r = smoke
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    report = (out / "report.md").read_text()
    for fig in ("embeddings_pca.png", "segmentations.png"):
        assert (out / fig).stat().st_size > 1000 and fig in report
    assert tuple(r["settings_2d"]) == SETTINGS_2D
    assert set(r["settings_3d"]) == {"embedding", "spoco@0.4"}
    assert tuple(r["clustering"]) == CLUSTERINGS
    for v in (*r["settings_2d"].values(), *r["settings_3d"].values()):
        assert set(v["metrics"]) == set(METRICS)
    for v in r["clustering"].values():
        assert set(v) == {*METRICS, "seconds_per_image"} and v["seconds_per_image"] >= 0
    # the report's numbers are the run's numbers
    m = r["settings_2d"]["spoco@0.1"]["metrics"]
    assert f"| spoco@0.1 | {m['sbd']:.3f} | {m['abs_dic']:.2f} | {m['msa']:.3f} |" in report


def test_metrics_in_range(smoke: tuple[Path, dict]) -> None:
    _, r = smoke
    rows = [v["metrics"] for v in (*r["settings_2d"].values(), *r["settings_3d"].values())]
    rows += list(r["clustering"].values())
    for m in rows:
        assert 0.0 <= m["sbd"] <= 1.0 and 0.0 <= m["msa"] <= 1.0 and m["abs_dic"] >= 0.0


def test_labelled_objects_follow_the_fraction(smoke: tuple[Path, dict]) -> None:
    _, r = smoke
    s = r["settings_2d"]
    for name in SETTINGS_2D[:6]:
        v = s[name]
        p = v["fraction"] if v["fraction"] is not None else 1.0
        assert v["labelled_objects"] == [objects_to_keep(n, p) for n in v["objects"]]
        assert all(n > 0 for n in v["objects"])
    assert s["spoco@0.1"]["labelled_objects"] < s["spoco@1.0"]["labelled_objects"]
    n = r["budget_sizes"]["budget_objects"]
    # the annotation budget: the same N objects, on one image or one on each of N images
    assert s["budget_dense_1_image"]["labelled_objects"] == [n]
    assert s["budget_sparse_N_images"]["labelled_objects"] == [1] * n
    v3 = r["settings_3d"]["spoco@0.4"]
    assert v3["labelled_objects"] == [objects_to_keep(k, 0.4) for k in v3["objects"]]


def test_budget_labels_keep_n_objects() -> None:
    pairs = cells(4, (48, 48), seed=3)
    dense, spread = budget_labels(pairs, 3, seed=0)
    (img, lab), = dense
    assert np.unique(lab[lab > 0]).size == 3
    assert img.shape == lab.shape == pairs[0][1].shape
    # removed objects are painted over: the image is fully labelled with its 3 objects
    removed = (pairs[0][1] > 0) & (lab == 0)
    assert removed.any() and np.ptp(img[removed]) == 0.0
    assert len(spread) == 3
    for (im, lb), (im0, lb0) in zip(spread, pairs[1:]):
        assert np.unique(lb[lb > 0]).size == 1 and np.array_equal(im, im0)
        assert set(np.unique(lb0[lb > 0])) <= set(np.unique(lb0))


def test_pca_rgb_covers_every_pixel() -> None:
    emb = np.zeros((4, 10, 12))
    emb[0, :, 6:] = 5.0  # two groups along channel 0, background included
    rgb = pca_rgb(emb)
    assert rgb.shape == (10, 12, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert not np.allclose(rgb[:, :6], rgb[:, 6:])
