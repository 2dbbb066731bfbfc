"""``unetkit sample``: samples, mean, standard deviation, entropy and a figure from a probabilistic run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import yaml
from test_cli import _files, assert_clean_error, cli

from unetkit.cli import main
from unetkit.data.synthetic import write_dataset

CONFIG = {
    "seed": 0,
    "task": {"name": "probabilistic", "labels": "semantic"},
    "model": {"name": "hpunet", "in_channels": 1, "out_channels": 2, "levels": 3, "base_channels": 4,
              "max_channels": 8, "blocks_per_level": 1, "latent_scales": 2},
    "data": {"train": {"images": "data/images", "labels": "data/labels"}, "val_fraction": 0.25,
             "patch_shape": [32, 32], "batch_size": 2},
    "optimizer": {"name": "adam", "lr": 0.002},
    "training": {"iterations": 3, "val_every": 3, "checkpoint_every": 3, "device": "cpu"},
}


@pytest.fixture(scope="module")
def prob_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("sample")
    images, _ = write_dataset(root / "data", 4, (48, 48), seed=0, semantic=True)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    run = root / "run"
    assert main(["train", "-c", str(cfg), f"out={run}"]) == 0
    return SimpleNamespace(root=root, run=run, image=images / "img_000.tif", cfg=cfg)


def test_sample_writes_samples_summaries_and_figure(prob_run: SimpleNamespace, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    rc, stdout, err = cli(capsys, "sample", "-m", prob_run.run, "-i", prob_run.image, "-n", 5, "-o", out)
    assert rc == 0, err
    assert "5 samples" in stdout and "one tile" in stdout
    samples = tifffile.imread(out / "samples.tif")
    mean = tifffile.imread(out / "mean.tif")
    std = tifffile.imread(out / "std.tif")
    entropy = tifffile.imread(out / "entropy.tif")
    assert samples.shape == (5, 48, 48) and samples.max() <= 1
    assert mean.shape == (2, 48, 48) and std.shape == (2, 48, 48) and entropy.shape == (48, 48)
    np.testing.assert_allclose(mean.sum(0), 1.0, atol=1e-5)
    assert (std >= 0).all() and (entropy >= -1e-6).all() and entropy.max() <= np.log(2) + 1e-5
    assert (out / "samples.png").stat().st_size > 0


def test_all_scales_at_the_mean_give_identical_samples(prob_run: SimpleNamespace, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    rc, _, err = cli(capsys, "sample", "-m", prob_run.run, "-i", prob_run.image, "-n", 3, "-o", out,
                     "--mean-scales", "all", "--no-figure")
    assert rc == 0, err
    samples = tifffile.imread(out / "samples.tif")
    assert (samples == samples[0]).all()
    np.testing.assert_allclose(tifffile.imread(out / "std.tif"), 0.0, atol=1e-6)
    assert not (out / "samples.png").exists()


def test_existing_outputs_are_kept_without_overwrite(prob_run: SimpleNamespace, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert cli(capsys, "sample", "-m", prob_run.run, "-i", prob_run.image, "-n", 2, "-o", out)[0] == 0
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    rc, _, err = cli(capsys, "sample", "-m", prob_run.run, "-i", prob_run.image, "-n", 4, "-o", out)
    assert_clean_error(rc, err, "already holds", "samples.tif", "--overwrite")
    assert _files(out) == before
    rc, _, err = cli(capsys, "sample", "-m", prob_run.run, "-i", prob_run.image, "-n", 4, "-o", out,
                     "--overwrite", "--seed", "1")
    assert rc == 0, err
    assert tifffile.imread(out / "samples.tif").shape[0] == 4
    assert (out / "notes.txt").read_text() == "mine"


def test_bad_requests_are_clean_errors(prob_run: SimpleNamespace, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base = ["sample", "-m", prob_run.run, "-i", prob_run.image, "-o", tmp_path / "x"]
    assert_clean_error(*cli(capsys, *base, "-n", 0)[::2], "-n must be >= 1", "got 0")
    assert_clean_error(*cli(capsys, *base, "--mean-scales", "5")[::2], "[5]", "0 (most global) to 1")
    assert_clean_error(*cli(capsys, *base, "--mean-scales", "global")[::2], "'global'", "'all'")
    assert_clean_error(*cli(capsys, "sample", "-m", prob_run.run, "-i", tmp_path / "nope.tif", "-o",
                            tmp_path / "x")[::2], "does not exist")
    assert not (tmp_path / "x").exists()


def test_a_semantic_run_draws_no_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = write_dataset(tmp_path / "data", 2, (48, 48), seed=0, semantic=True)
    cfg = {**CONFIG, "task": {"name": "semantic"},
           "model": {"name": "unet", "depth": 1, "base_features": 2, "padding": "same"},
           "training": {**CONFIG["training"], "iterations": 1}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["train", "-c", str(tmp_path / "cfg.yaml"), f"out={tmp_path / 'run'}"]) == 0
    rc, _, err = cli(capsys, "sample", "-m", tmp_path / "run", "-i", images / "img_000.tif", "-o", tmp_path / "x")
    assert_clean_error(rc, err, "UNet draws no samples", "hpunet or probunet")
