"""``unetkit demo``: a seconds-long run of the whole pipeline (the real one trains ~2 minutes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unetkit.cli import main
from unetkit.demo import DEMO_FRACTION, METRICS, demo_config, run_demo


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    summary = run_demo(out, iterations=2, n_train=2, n_val=1, n_test=2, verbose=False)
    return out, summary


def test_demo_writes_instances_metrics_and_figure(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    assert json.loads((out / "metrics.json").read_text()) == summary
    for key in METRICS:
        assert np.isfinite(summary[key])
    assert 0 <= summary["sbd"] <= 1 and 0 <= summary["mean_seg_acc"] <= 1 and summary["abs_dic"] >= 0
    assert len(summary["per_image"]) == 2
    files = sorted((out / "instances").iterdir())
    assert [p.name for p in files] == sorted(p.name for p in (out / "data" / "test" / "images").iterdir())
    labels = tifffile.imread(files[0])
    assert labels.shape == (200, 232) and labels.dtype.kind == "u"
    assert (out / "figure.png").stat().st_size > 10_000
    assert (Path(summary["run_dir"]) / "checkpoints" / "best.pt").is_file()


def test_demo_trains_spoco_at_p_from_a_fraction_of_the_cells(tiny: tuple[Path, dict]) -> None:
    _, summary = tiny
    assert summary["fraction"] == DEMO_FRACTION
    # round(p * n) cells of each image, at least one: well below all cells, well above none
    assert 0.3 * summary["cells"] <= summary["labelled_cells"] <= 0.5 * summary["cells"]
    cfg = demo_config(Path("o"), Path("d"), 10, 0)
    assert cfg["task"]["name"] == "spoco" and cfg["task"]["fraction"] == DEMO_FRACTION
    assert cfg["task"]["clustering"] == "mws" and cfg["model"]["padding"] == "valid"


def test_a_second_demo_leaves_the_first_untouched(tiny: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    out, _ = tiny
    before = digest(out)
    assert main(["demo", "--out", str(out), "--iterations", "1"]) == 0
    assert digest(out) == before
    second = out.with_name(out.name + "-2")
    assert (second / "metrics.json").is_file()
    stdout = capsys.readouterr().out
    assert "symmetric best Dice" in stdout and "mean segmentation accuracy" in stdout
