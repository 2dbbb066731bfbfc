"""The ``unetkit`` command end to end on tiny data, and its error contract.

Contract (from the CLI issue): bad input gets a clear error and a non-zero exit without a
traceback -- missing file, wrong axes, image/label shape mismatch, NaN in an image, no labels,
wrong dtype, invalid size for a valid-padding net, unknown config key -- and nothing already
written (checkpoints, outputs) is lost or corrupted by a failure.

One tiny run is trained once per session (2-level U-Net with 4 base features, 6 iterations on
four 64x64 images, a few seconds on a CPU). Most cases call :func:`unetkit.cli.main` in-process;
a few run the real command in a subprocess to prove the entry point, the exit status and that
no traceback reaches stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import tifffile
import torch
import yaml

from unetkit.cli import main
from unetkit.data.io import read_image, read_labels
from unetkit.data.synthetic import write_dataset
from unetkit.errors import ShapeError
from unetkit.models import UNet

SHAPE = (64, 64)

CONFIG = {
    "seed": 0,
    "task": {"name": "semantic", "labels": "semantic"},
    "model": {"ndim": 2, "in_channels": 1, "out_channels": 2, "depth": 2, "base_features": 4,
              "padding": "valid", "norm": "batch"},
    "data": {
        "train": {"images": "data/images", "labels": "data/labels"},  # relative to the config file
        "val_fraction": 0.25,
        "patch_shape": [60, 60],
        "batch_size": 2,
    },
    "optimizer": {"name": "adam", "lr": 0.002},
    "training": {"iterations": 2, "val_every": 3, "checkpoint_every": 3, "device": "cpu"},
}
"""Written to cfg.yaml; the session run overrides training.iterations and optimizer.lr."""


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to prove nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("cli")
    images, labels = write_dataset(root / "data", 4, SHAPE, seed=0, semantic=True)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    run = root / "run"
    rc = main(["train", "-c", str(cfg), f"out={run}", "training.iterations=6", "optimizer.lr=0.01"])
    assert rc == 0
    image = tifffile.imread(images / "img_000.tif")
    label = tifffile.imread(labels / "img_000.tif")
    return SimpleNamespace(root=root, images=images, labels=labels, cfg=cfg, run=run, image=image, label=label)


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``main`` in-process; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def subprocess_env() -> dict[str, str]:
    """The environment for a fresh process that imports this same unetkit (also from a source tree on a
    relative PYTHONPATH, which a subprocess with another working folder would not find)."""
    import os

    import unetkit

    source = str(Path(unetkit.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def subprocess_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real command in a fresh process (``python -m unetkit.cli``)."""
    return subprocess.run([sys.executable, "-m", "unetkit.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=subprocess_env())


def assert_clean_error(rc: int, err: str, *phrases: str, status: int = 2) -> None:
    assert rc == status, err
    assert err.startswith("unetkit: error:"), err
    assert "Traceback" not in err, err
    for phrase in phrases:
        assert phrase.lower() in err.lower(), f"{phrase!r} not in {err!r}"


def make_folder(root: Path, images: list[np.ndarray], labels: list[np.ndarray | None]) -> tuple[Path, Path]:
    """A training folder pair (images/, labels/) from arrays; a None label is not written."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i, (img, lab) in enumerate(zip(images, labels)):
        tifffile.imwrite(root / "images" / f"img_{i}.tif", img)
        if lab is not None:
            tifffile.imwrite(root / "labels" / f"img_{i}.tif", lab)
    return root / "images", root / "labels"


def train_on(capsys: pytest.CaptureFixture[str], tiny: SimpleNamespace, folders: tuple[Path, Path],
             out: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "train", "-c", tiny.cfg, f"data.train.images={folders[0]}",
               f"data.train.labels={folders[1]}", f"out={out}", *extra)


# ============================================================================ end to end


def test_train_writes_a_complete_run_folder(tiny: SimpleNamespace) -> None:
    run = tiny.run
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["training"]["iterations"] == 6  # key=value overrides win over the file
    assert resolved["optimizer"]["lr"] == 0.01
    assert resolved["model"]["depth"] == 2 and resolved["data"]["batch_size"] == 2  # file values kept
    assert Path(resolved["data"]["train"]["images"]) == tiny.images.resolve()  # resolved against cfg folder
    assert resolved["out"] == str(run)
    spec = json.loads((run / "model.json").read_text())
    assert spec["name"] == "unet" and spec["kwargs"]["depth"] == 2 and spec["kwargs"]["base_features"] == 4

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    for r in records:
        assert np.isfinite(r["train/loss"])
        assert 0.0 <= r["val/iou"] <= 1.0

    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert int(last["step"]) == 6
    model = UNet(1, 2, depth=2, base_features=4, norm="batch")
    model.load_state_dict(best["model"])
    model.load_state_dict(last["model"])
    assert (run / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_single_file_any_size(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 50x70 is not a valid input size of the valid U-Net: the whole image is still segmented
    images, _ = write_dataset(tmp_path / "odd", 1, (50, 70), seed=3)
    for src, shape in ((tiny.images / "img_000.tif", SHAPE), (images / "img_000.tif", (50, 70))):
        out = tmp_path / f"pred_{shape[0]}.tif"
        rc, stdout, err = cli(capsys, "predict", "-m", tiny.run, "-i", src, "-o", out, "--device", "cpu")
        assert rc == 0, err
        assert str(out) in stdout
        labels, axes = read_labels(out)
        assert labels.shape == shape and axes == "YX"
        assert np.issubdtype(labels.dtype, np.integer)
        assert set(np.unique(labels)) <= {0, 1}


def test_predict_folder_probabilities(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "probs"
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images, "-o", out,
                     "--output-type", "probabilities", "--checkpoint", "last", "--device", "cpu")
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in tiny.images.iterdir())
    for f in out.iterdir():
        probs, axes = read_image(f)
        assert axes == "CYX" and probs.shape == (2, *SHAPE)
        assert probs.min() >= 0 and probs.max() <= 1
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)


def test_predict_folder_then_evaluate(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preds = tmp_path / "preds"
    rc, stdout, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images, "-o", preds, "--device", "cpu")
    assert rc == 0, err
    assert "wrote 4 predictions" in stdout
    for f in sorted(preds.iterdir()):
        labels, _ = read_labels(f)
        assert labels.shape == SHAPE and set(np.unique(labels)) <= {0, 1}

    report = tmp_path / "eval.json"
    rc, stdout, err = cli(capsys, "evaluate", "-p", preds, "-g", tiny.labels, "-o", report)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].split() == ["image", "iou", "dice"]
    assert [ln.split()[0] for ln in lines[1:5]] == [f"img_{i:03d}.tif" for i in range(4)]
    assert lines[5].split()[0] == "mean"
    result = json.loads(report.read_text())
    assert len(result["images"]) == 4
    for row in [*result["images"], result["mean"]]:
        for m in ("iou", "dice"):
            assert 0.0 <= row[m] <= 1.0

    rc, stdout, err = cli(capsys, "evaluate", "-p", preds, "-g", preds, "--metrics", "iou,dice")
    assert rc == 0, err
    rc, _, err = cli(capsys, "evaluate", "-p", preds, "-g", preds, "-o", tmp_path / "self.json")
    assert rc == 0, err
    self_result = json.loads((tmp_path / "self.json").read_text())
    assert all(r["iou"] == 1.0 and r["dice"] == 1.0 for r in self_result["images"])
    assert self_result["mean"]["iou"] == 1.0


def test_train_rounds_an_invalid_patch_size_and_says_so(tiny: SimpleNamespace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout, err = cli(capsys, "train", "-c", tiny.cfg, f"out={tmp_path / 'run'}", "data.patch_shape=[50,50]",
                          "training.iterations=1")
    assert rc == 0, err
    assert "note: data.patch_shape [50, 50] is not a valid input size" in stdout
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


# ============================================================================ bad input


def test_predict_missing_input_file(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tmp_path / "nope.tif", "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "no such file", "nope.tif")
    assert not (tmp_path / "p.tif").exists()


def test_predict_missing_run_folder(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "predict", "-m", tmp_path / "norun", "-i", tiny.images / "img_000.tif",
                     "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "not a unetkit run folder")


def test_train_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "train", "-c", tmp_path / "missing.yaml")
    assert_clean_error(rc, err, "config file not found", "missing.yaml")


def test_predict_wrong_axes(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif",
                     "-o", tmp_path / "p.tif", "--axes", "ZYX")
    assert_clean_error(rc, err, "axes 'ZYX'", "2 dimensions")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif",
                     "-o", tmp_path / "p.tif", "--axes", "QX")
    assert_clean_error(rc, err, "unknown axis 'Q'")
    assert not (tmp_path / "p.tif").exists()


def test_predict_3d_image_with_2d_model(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vol = tmp_path / "vol.tif"
    tifffile.imwrite(vol, np.stack([tiny.image] * 5))
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", vol, "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "3-D image", "model is 2-D")


def test_predict_wrong_channel_count(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb = tmp_path / "two.h5"
    with h5py.File(rgb, "w") as f:
        f["data"] = np.stack([tiny.image] * 2)
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", rgb, "-o", tmp_path / "p.tif", "--axes", "CYX")
    assert_clean_error(rc, err, "2 channel(s)", "in_channels is 1")


def test_train_3d_images_with_2d_model(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = make_folder(tmp_path / "d", [np.stack([tiny.image] * 5)], [np.stack([tiny.label] * 5)])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "img_0.tif", "model is 2-D")
    assert not (tmp_path / "run").exists()


def test_train_image_label_shape_mismatch(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = make_folder(tmp_path / "d", [tiny.image, tiny.image], [tiny.label, tiny.label[:50]])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "img_1.tif", "(64, 64)", "(50, 64)")


def test_train_nan_in_image(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tiny.image.copy()
    bad[3, 4] = np.nan
    folders = make_folder(tmp_path / "d", [tiny.image, bad], [tiny.label, tiny.label])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "img_1.tif", "1 NaN", "(3, 4)")


def test_predict_nan_and_inf_in_image(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value, phrase in ((np.nan, "NaN"), (np.inf, "infinite")):
        bad = tiny.image.copy()
        bad[10, 20] = value
        src = tmp_path / f"bad_{phrase}.tif"
        tifffile.imwrite(src, bad)
        rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", src, "-o", tmp_path / "p.tif")
        assert_clean_error(rc, err, src.name, phrase)
        assert not (tmp_path / "p.tif").exists()


def test_train_no_labels(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = make_folder(tmp_path / "empty", [tiny.image], [None])
    rc, _, err = train_on(capsys, tiny, empty, tmp_path / "run")
    assert_clean_error(rc, err, "contains no images", str(empty[1]))

    zeros = make_folder(tmp_path / "zeros", [tiny.image, tiny.image], [np.zeros_like(tiny.label)] * 2)
    rc, _, err = train_on(capsys, tiny, zeros, tmp_path / "run")
    assert_clean_error(rc, err, "empty", "nothing to learn")

    partial = make_folder(tmp_path / "partial", [tiny.image, tiny.image], [tiny.label, None])
    rc, _, err = train_on(capsys, tiny, partial, tmp_path / "run")
    assert_clean_error(rc, err, "have no label", "img_1.tif")

    rc, _, err = train_on(capsys, tiny, (tmp_path / "nowhere", tmp_path / "nowhere"), tmp_path / "run")
    assert_clean_error(rc, err, "no such folder")
    assert not (tmp_path / "run").exists()


def test_train_float_labels(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    halves = np.where(tiny.label > 0, 0.5, 0.0).astype(np.float32)
    folders = make_folder(tmp_path / "d", [tiny.image], [halves])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "labels must be integers", "0.5")


def test_train_label_ids_beyond_the_classes(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = make_folder(tmp_path / "d", [tiny.image], [(tiny.label * 7).astype(np.uint8)])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "class id 7", "model.out_channels")


def test_predict_wrong_image_dtype(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cplx = tmp_path / "complex.tif"
    tifffile.imwrite(cplx, tiny.image.astype(np.complex64))
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", cplx, "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "complex64", "not a real number type")

    strings = tmp_path / "strings.h5"
    with h5py.File(strings, "w") as f:
        f["data"] = np.full(SHAPE, b"ab")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", strings, "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "strings.h5", "not a real number type")
    assert not (tmp_path / "p.tif").exists()


def test_evaluate_bad_inputs(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tiny.labels / "img_000.tif"
    rc, _, err = cli(capsys, "evaluate", "-p", tiny.images / "img_000.tif", "-g", gt)
    assert_clean_error(rc, err, "labels must be integers")
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, tiny.label[:50])
    rc, _, err = cli(capsys, "evaluate", "-p", small, "-g", gt)
    assert_clean_error(rc, err, "(50, 64)", "(64, 64)")
    rc, _, err = cli(capsys, "evaluate", "-p", gt, "-g", gt, "--metrics", "iou,accuracy")
    assert_clean_error(rc, err, "unknown metric", "accuracy")
    rc, _, err = cli(capsys, "evaluate", "-p", gt, "-g", gt, "--num-classes", "0")
    assert_clean_error(rc, err, "num_classes must be >= 1")
    rc, _, err = cli(capsys, "evaluate", "-p", tmp_path / "none.tif", "-g", gt)
    assert_clean_error(rc, err, "no such file", "none.tif")
    # a file-system error (a file where a folder is needed) is reported without a traceback too
    rc, _, err = cli(capsys, "evaluate", "-p", gt, "-g", gt, "-o", small / "eval.json")
    assert_clean_error(rc, err, str(small), status=1)


@pytest.mark.parametrize(
    ("overrides", "phrases"),
    [
        (["model.depht=3"], ["unknown config key 'model.depht'"]),
        (["data.batch_size=0"], ["data.batch_size", "greater than or equal to 1", "got 0"]),
        (["training.iterations=abc"], ["training.iterations", "'abc'"]),
        (["data.patch_shape=[1,1,1]"], ["data.patch_shape [1, 1, 1]", "model.ndim is 2"]),
        (["data.patch_shape=[0,60]"], ["patch sizes must be positive"]),
        (["model.padding=valid-ish"], ["model.padding", "'valid-ish'"]),
        (["training.device=tpu"], ["training.device", "'tpu'"]),
        (["model.depth.levels=3"], ["'depth' is a value, not a section"]),
        (["iterations"], ["must look like key.path=value"]),
        (["data.patch_shape=[1,"], ["cannot parse the value"]),
    ],
)
def test_train_bad_config_values(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 overrides: list[str], phrases: list[str]) -> None:
    rc, _, err = cli(capsys, "train", "-c", tiny.cfg, f"out={tmp_path / 'run'}", *overrides)
    assert_clean_error(rc, err, *phrases)
    assert not (tmp_path / "run").exists()


def test_train_bad_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({**CONFIG, "data": {**CONFIG["data"], "batchsize": 2}, "epochs": 3}))
    rc, _, err = cli(capsys, "train", "-c", unknown)
    assert_clean_error(rc, err, "unknown config key 'data.batchsize'", "unknown config key 'epochs'")

    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [depth: 2\n")
    rc, _, err = cli(capsys, "train", "-c", broken)
    assert_clean_error(rc, err, "broken.yaml is not valid YAML")

    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    rc, _, err = cli(capsys, "train", "-c", listing)
    assert_clean_error(rc, err, "must be a mapping")


def test_train_needs_a_config_or_resume(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "train")
    assert_clean_error(rc, err, "train needs -c CONFIG")
    rc, _, err = cli(capsys, "train", "-c", tiny.cfg, "--resume", tiny.run)
    assert_clean_error(rc, err, "not both")


def test_train_out_is_a_file(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    rc, _, err = cli(capsys, "train", "-c", tiny.cfg, f"out={afile}")
    assert_clean_error(rc, err, "existing file")
    assert afile.read_text() == "keep me"


def test_unet_forward_refuses_an_invalid_size() -> None:
    model = UNet(1, 2, depth=2, base_features=4)
    with pytest.raises(ShapeError, match=r"Nearest valid input shapes: \(60, 60\)"):
        model(torch.zeros(1, 1, 61, 61))


# ============================================================================ nothing written is lost


def test_train_into_an_existing_run_is_refused(tiny: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(tiny.run)
    rc, _, err = cli(capsys, "train", "-c", tiny.cfg, f"out={tiny.run}", "training.iterations=9")
    assert_clean_error(rc, err, "already holds a run", "--resume")
    assert _files(tiny.run) == before


def test_resume_without_checkpoints(tiny: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "train", "--resume", tmp_path / "empty")
    assert_clean_error(rc, err, "cannot resume", "no config.yaml")

    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_bytes((tiny.run / "config.yaml").read_bytes())
    before = _files(half)
    rc, _, err = cli(capsys, "train", "--resume", half)
    assert_clean_error(rc, err, "cannot resume", "last.pt", "does not exist")
    assert _files(half) == before


def test_predict_does_not_overwrite_without_flag(tiny: SimpleNamespace, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.tif"
    out.write_bytes(b"precious bytes")
    src = tiny.images / "img_000.tif"
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", src, "-o", out)
    assert_clean_error(rc, err, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious bytes"

    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", src, "-o", out, "--overwrite", "--device", "cpu")
    assert rc == 0, err
    assert read_labels(out)[0].shape == SHAPE


def test_predict_folder_refuses_before_writing_anything(tiny: SimpleNamespace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "preds"
    out.mkdir()
    (out / "img_002.tif").write_bytes(b"an earlier result")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images, "-o", out)
    assert_clean_error(rc, err, "img_002.tif", "--overwrite")
    assert _files(out) == {"img_002.tif": b"an earlier result"}  # no other output written either

    afile = tmp_path / "afile.tif"
    afile.write_bytes(b"x")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images, "-o", afile)
    assert_clean_error(rc, err, "must be a folder")
    assert afile.read_bytes() == b"x"


# ============================================================================ the real command


def test_version_and_help() -> None:
    script = Path(sys.executable).parent / "unetkit"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "unetkit.cli"]
    res = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("unetkit ")
    res = subprocess.run([*cmd, "predict", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--output-type" in res.stdout and "--overwrite" in res.stdout
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # no command: argparse usage error
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("case", ["missing-input", "nan-image", "unknown-key", "existing-run"])
def test_subprocess_errors_have_no_traceback(tiny: SimpleNamespace, tmp_path: Path, case: str) -> None:
    before = _files(tiny.run)
    if case == "missing-input":
        res = subprocess_cli("predict", "-m", tiny.run, "-i", "missing.tif", "-o", "p.tif", cwd=tmp_path)
        phrase = "no such file"
    elif case == "nan-image":
        bad = tiny.image.copy()
        bad[0, 0] = np.nan
        tifffile.imwrite(tmp_path / "nan.tif", bad)
        res = subprocess_cli("predict", "-m", tiny.run, "-i", "nan.tif", "-o", "p.tif", cwd=tmp_path)
        phrase = "NaN"
    elif case == "unknown-key":
        res = subprocess_cli("train", "-c", tiny.cfg, "model.depht=3", "out=run", cwd=tmp_path)
        phrase = "unknown config key 'model.depht'"
    else:
        res = subprocess_cli("train", "-c", tiny.cfg, f"out={tiny.run}", cwd=tmp_path)
        phrase = "already holds a run"
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("unetkit: error:"), res.stderr
    assert "Traceback" not in res.stderr
    assert phrase in res.stderr
    assert "training unet" not in res.stdout  # refused before any work
    assert not (tmp_path / "p.tif").exists() and not (tmp_path / "run").exists()
    assert _files(tiny.run) == before


# ============================================================================ probe findings (new-user cases)


def _sha(path: Path) -> str:
    """Hash of a file, or of every file under a folder (relative names included)."""
    import hashlib

    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(path)).encode() if p != path else b"")
        h.update(p.read_bytes())
    return h.hexdigest()


def assert_one_line(err: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err


# ---------------------------------------------------------------------------- data lost


def test_evaluate_output_needs_overwrite_and_never_replaces_an_input(tiny: SimpleNamespace, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.tif"
    gt.write_bytes((tiny.labels / "img_000.tif").read_bytes())
    before = _sha(gt)
    for extra in ([], ["--overwrite"]):  # the ground truth as -o: refused even with --overwrite
        rc, _, err = cli(capsys, "evaluate", "-p", tiny.labels / "img_000.tif", "-g", gt, "-o", gt, *extra)
        assert_clean_error(rc, err, "one of the files being evaluated")
        assert _sha(gt) == before
    scores = tmp_path / "scores.json"
    scores.write_text("my earlier scores")
    rc, _, err = cli(capsys, "evaluate", "-p", gt, "-g", gt, "-o", scores)
    assert_clean_error(rc, err, str(scores), "already exists", "--overwrite")
    assert scores.read_text() == "my earlier scores"
    rc, _, err = cli(capsys, "evaluate", "-p", gt, "-g", gt, "-o", scores, "--overwrite")
    assert rc == 0, err
    assert json.loads(scores.read_text())["mean"]["iou"] == 1.0


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_predict_overwrite_replaces_only_its_dataset(tiny: SimpleNamespace, tmp_path: Path, suffix: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from unetkit.data.io import write_image

    store = tmp_path / f"img{suffix}"
    for key in ("raw", "other", "seg"):
        write_image(f"{store}:{key}", tiny.image, axes="YX")
    kept = {k: read_image(f"{store}:{k}")[0] for k in ("raw", "other")}
    if suffix == ".zarr":
        hashes = {k: _sha(store / k) for k in ("raw", "other")}
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", f"{store}:raw", "-o", f"{store}:seg")
    assert_clean_error(rc, err, "already exists", "--overwrite")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", f"{store}:raw", "-o", f"{store}:seg", "--overwrite",
                     "--device", "cpu")
    assert rc == 0, err
    seg, _ = read_labels(f"{store}:seg")
    assert seg.shape == SHAPE and set(np.unique(seg)) <= {0, 1}
    for k, array in kept.items():  # the input and every other dataset are untouched
        np.testing.assert_array_equal(read_image(f"{store}:{k}")[0], array)
    if suffix == ".zarr":
        assert {k: _sha(store / k) for k in ("raw", "other")} == hashes
        assert not [p.name for p in store.iterdir() if p.name.endswith(".tmp")]
    else:
        with h5py.File(store, "r") as f:
            assert sorted(f) == ["other", "raw", "seg"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_predict_folder_with_colliding_names_is_refused(tiny: SimpleNamespace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.tif", "a.tiff", "b.tif"):
        (src / name).write_bytes((tiny.images / "img_000.tif").read_bytes())
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", src, "-o", out)
    assert_clean_error(rc, err, "a.tif, a.tiff -> a.tif", "share a name")
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("existing", ["checkpoints/best.pt", "metrics.jsonl"])
def test_train_refuses_a_folder_with_files_it_would_replace(tiny: SimpleNamespace, tmp_path: Path, existing: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    (out / existing).parent.mkdir(parents=True, exist_ok=True)
    (out / existing).write_bytes(b"the user's own file")
    before = _files(out)
    rc, stdout, err = cli(capsys, "train", "-c", tiny.cfg, f"out={out}", "training.iterations=1")
    assert_clean_error(rc, err, existing, "would replace")
    assert "training unet" not in stdout
    assert _files(out) == before


def test_reproduce_refuses_an_existing_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report.md").write_text("my report")
    (tmp_path / "notes.txt").write_text("mine")
    before = _files(tmp_path)
    rc, _, err = cli(capsys, "reproduce", "shift", "--out", tmp_path, "--budget", "smoke")
    assert_clean_error(rc, err, "already holds a report", "report.md", "--overwrite")
    assert _files(tmp_path) == before


def test_reproduce_overwrite_replaces_only_once_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import unetkit.reproduce as reproduce

    fake = types.ModuleType("unetkit_fake_experiment")
    fake.OUTPUTS = ("report.md", "runs")  # type: ignore[attr-defined]

    def run(out: Path, *, fail: bool = False) -> dict:
        (out / "runs" / "a").mkdir(parents=True)
        (out / "runs" / "a" / "w.pt").write_text("new weights")
        (out / "report.md").write_text("new report")
        if fail:
            raise RuntimeError("killed halfway")
        return {"ok": True}

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "unetkit_fake_experiment", fake)
    monkeypatch.setitem(reproduce.EXPERIMENTS, "fake", "unetkit_fake_experiment")
    out = tmp_path / "rep"
    (out / "runs" / "a").mkdir(parents=True)
    (out / "runs" / "a" / "w.pt").write_text("old weights")
    (out / "report.md").write_text("old report")
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    with pytest.raises(RuntimeError):
        reproduce.run_into("fake", out, overwrite=True, fail=True)
    assert _files(out) == before  # a failed run replaces nothing
    assert reproduce.run_into("fake", out, overwrite=True) == {"ok": True}
    assert _files(out) == {"notes.txt": b"mine", "report.md": b"new report", "runs/a/w.pt": b"new weights"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporaries left


def test_resume_with_a_changed_model_is_refused(tiny: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(tiny.run)
    rc, _, err = cli(capsys, "train", "--resume", tiny.run, "model.depth=3")
    assert_clean_error(rc, err, "cannot resume", "model.depth (run: 2, given: 3)")
    assert _files(tiny.run) == before


# ---------------------------------------------------------------------------- runaway resources


@pytest.mark.parametrize(
    ("model_json", "phrases"),
    [
        ({"depth": 1000}, ["model.depth", "less than or equal to 8", "1000"]),
        ("not json {", ["model.json is not valid JSON"]),
        ([1, 2], ["must hold a JSON object", "list"]),
        ({"name": "unet"}, ["kwargs is missing"]),
        ({"out_channels": 3}, ["does not match the model", "head.weight"]),
        ({"base_features": 8}, ["does not match the model", "wrong shape"]),
    ],
    ids=["depth-1000", "not-json", "a-list", "no-kwargs", "out-channels", "base-features"],
)
def test_predict_with_a_broken_model_json(tiny: SimpleNamespace, tmp_path: Path, model_json: object,
                                          phrases: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    import time

    run = tmp_path / "run"
    shutil.copytree(tiny.run, run)
    spec = json.loads((run / "model.json").read_text())
    if isinstance(model_json, dict) and "name" not in model_json:
        spec["kwargs"].update(model_json)
        text = json.dumps(spec)
    elif isinstance(model_json, dict):
        text = json.dumps(model_json)
    else:
        text = model_json if isinstance(model_json, str) else json.dumps(model_json)
    (run / "model.json").write_text(text)
    t0 = time.perf_counter()
    rc, _, err = cli(capsys, "predict", "-m", run, "-i", tiny.images / "img_000.tif", "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, *phrases)
    assert_one_line(err)
    assert time.perf_counter() - t0 < 10  # refused before anything big is built
    assert not (tmp_path / "p.tif").exists()


def test_predict_refuses_a_tile_too_large_for_memory(tiny: SimpleNamespace, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = ("predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif", "-o", tmp_path / "p.tif",
            "--tile-shape", "100004,100004")
    rc, _, err = cli(capsys, *args)
    assert_clean_error(rc, err, "tile shape (100004, 100004)", "MiB of activations", "memory budget (1,024 MiB)")
    rc, _, err = cli(capsys, *args, "--memory-budget", "1e12")  # a huge budget: the machine's memory still counts
    assert_clean_error(rc, err, "tile shape (100004, 100004)", "memory available on this machine")
    assert not (tmp_path / "p.tif").exists()


# ---------------------------------------------------------------------------- one line instead of a traceback


def test_truncated_tiff_in_train_and_predict(tiny: SimpleNamespace, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folders = make_folder(tmp_path / "d", [tiny.image, tiny.image], [tiny.label, tiny.label])
    full = (folders[0] / "img_1.tif").read_bytes()
    (folders[0] / "img_1.tif").write_bytes(full[: len(full) * 2 // 3])  # the header is intact, pixels are cut
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "img_1.tif", "truncated")
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", folders[0] / "img_1.tif", "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, "img_1.tif", "truncated")
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.tif").exists()


@pytest.mark.parametrize("size", [0, 100, 20000])
def test_broken_checkpoint_is_one_line(tiny: SimpleNamespace, tmp_path: Path, size: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny.run, run)
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:size])
    rc, _, err = cli(capsys, "predict", "-m", run, "-i", tiny.images / "img_000.tif", "-o", tmp_path / "p.tif")
    assert_clean_error(rc, err, str(best), "empty" if size == 0 else "truncated")
    assert_one_line(err)


@pytest.mark.parametrize("budget", ["nan", "inf", "-1"])
def test_memory_budget_must_be_finite(tiny: SimpleNamespace, tmp_path: Path, budget: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif", "-o", tmp_path / "p.tif",
                     "--memory-budget", budget)
    assert_clean_error(rc, err, "--memory-budget", budget)


def test_evaluate_huge_label_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = np.zeros(SHAPE, np.int64)
    big[5:9, 5:9] = 2**40
    tifffile.imwrite(tmp_path / "big.tif", big)
    rc, _, err = cli(capsys, "evaluate", "-p", tmp_path / "big.tif", "-g", tmp_path / "big.tif")
    assert_clean_error(rc, err, "big.tif", "class id 1099511627776", "--foreground")


def test_train_with_a_binary_or_empty_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"PK\x03\x04\x00\xff\xfe\x80 not text")
    rc, _, err = cli(capsys, "train", "-c", binary)
    assert_clean_error(rc, err, "model.pt is not a YAML text file")
    for text in ("", "# only a comment\n", "{}\n"):
        empty = tmp_path / "empty.yaml"
        empty.write_text(text)
        rc, stdout, err = cli(capsys, "train", "-c", empty, f"data.train.images={tmp_path}",
                              f"data.train.labels={tmp_path}", f"out={tmp_path / 'run'}")
        assert_clean_error(rc, err, "empty.yaml is empty", "configs/")
        assert "training" not in stdout and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- unclear or silent


def test_unsupported_files_are_named_in_a_warning(tiny: SimpleNamespace, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # the folder listing and pairing that train uses; evaluate pairs its folders the same way, without training
    images, labels = make_folder(tmp_path / "d", [tiny.label] * 2, [tiny.label] * 2)
    (images / "img_2.jpg").write_bytes(b"\xff\xd8 a JPEG")
    tifffile.imwrite(labels / "img_2.tif", tiny.label)  # its label: unused, and said so
    rc, _, err = cli(capsys, "evaluate", "-p", images, "-g", labels)
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("unetkit: warning:")]
    assert any("unsupported type" in ln and "'img_2.jpg'" in ln for ln in lines), err
    assert any("not used" in ln and "'img_2.tif'" in ln for ln in lines), err


def test_float_label_error_names_the_file(tiny: SimpleNamespace, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    halves = np.where(tiny.label > 0, 0.5, 0.0).astype(np.float32)
    folders = make_folder(tmp_path / "d", [tiny.image, tiny.image], [tiny.label, halves])
    rc, _, err = train_on(capsys, tiny, folders, tmp_path / "run")
    assert_clean_error(rc, err, "labels must be integers", str(folders[1] / "img_1.tif"), "0.5")


def test_yaml_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  depth: [2\n")
    rc, _, err = cli(capsys, "train", "-c", broken)
    assert_clean_error(rc, err, "broken.yaml is not valid YAML", "line 3, column 1", "flow sequence started at line 2")
    assert_one_line(err)
    rc, _, err = cli(capsys, "train", "-c", broken.with_name("x.yaml"), "data.patch_shape=[1,")
    assert_one_line(err)


def test_empty_key_segments_are_refused(tiny: SimpleNamespace, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for override in ("model..depth=3", ".model.depth=3", "model.depth.=3"):
        rc, _, err = cli(capsys, "train", "-c", tiny.cfg, f"out={tmp_path / 'run'}", override)
        assert_clean_error(rc, err, repr(override), "empty part", "model.depth=3")
    assert not (tmp_path / "run").exists()


def test_out_under_a_file_is_refused_before_loading_data(tiny: SimpleNamespace, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    # the data folders do not exist: the run folder is checked first
    rc, _, err = cli(capsys, "train", "-c", tiny.cfg, f"out={afile / 'run'}", f"data.train.images={tmp_path / 'no'}")
    assert_clean_error(rc, err, f"out={afile / 'run'}", "inside", "which is a file")
    assert afile.read_text() == "keep me"


def test_unwritable_output_names_the_users_path(tiny: SimpleNamespace, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import unetkit.data.io as io

    def denied(tmp: Path, *args: object) -> None:  # what a read-only folder does (also for root, who bypasses chmod)
        raise PermissionError(13, "Permission denied", str(tmp))

    monkeypatch.setattr(io, "write_tiff", denied)
    out = tmp_path / "ro" / "p.tif"
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif", "-o", out)
    assert_clean_error(rc, err, "Permission denied", f"'{out}'", status=1)
    assert ".tmp" not in err
    assert list((tmp_path / "ro").iterdir()) == []


def test_demo_refuses_zero_iterations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "demo", "--iterations", "0", "--out", tmp_path / "demo")
    assert_clean_error(rc, err, "--iterations must be >= 1", "got 0")
    assert not (tmp_path / "demo").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_predict_device_cuda_without_cuda_names_the_flag(tiny: SimpleNamespace, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif", "-o", tmp_path / "p.tif",
                     "--device", "cuda")
    assert_clean_error(rc, err, "--device=cuda", "no CUDA device")
    assert "training.device" not in err


def test_interrupted_overwrite_leftovers_are_cleaned(tiny: SimpleNamespace, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A killed ``--overwrite`` leaves hidden temporaries; the next write of the same target removes them."""
    from unetkit.data.io import write_image

    target = tmp_path / "seg.zarr"
    write_image(target, np.zeros(SHAPE, np.uint8), axes="YX")
    stale = tmp_path / ".seg.zarr.0123456789ab.tmp"  # what SIGKILL in the middle of predict leaves
    stale.mkdir()
    (stale / ".zarray").write_text("{}")
    other = tmp_path / ".other.zarr.0123456789ab.tmp"  # another target's: not ours to remove
    other.mkdir()
    rc, _, err = cli(capsys, "predict", "-m", tiny.run, "-i", tiny.images / "img_000.tif", "-o", target,
                     "--overwrite", "--device", "cpu")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "seg.zarr"]
    assert read_labels(target)[0].shape == SHAPE


# ---------------------------------------------------------------------------- the package


def test_lazy_subpackages_and_python_dash_m() -> None:
    import unetkit

    for name in ("clustering", "reproduce", "tasks", "config", "runs"):
        assert getattr(unetkit, name).__name__ == f"unetkit.{name}"
    assert callable(unetkit.clustering.mean_shift)
    res = subprocess.run([sys.executable, "-m", "unetkit", "--version"], capture_output=True, text=True, timeout=120,
                         env=subprocess_env())
    assert res.returncode == 0 and res.stdout.startswith("unetkit "), res.stderr


def test_sigterm_stops_like_ctrl_c(tiny: SimpleNamespace, tmp_path: Path) -> None:
    import signal

    env = {**subprocess_env(), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "unetkit", "train", "-c", str(tiny.cfg), "out=run",
                             "training.iterations=100000"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "training unet" in proc.stdout.readline()  # training has started
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.startswith("unetkit: terminated (SIGTERM); no checkpoint had been written yet"), err
    assert "Traceback" not in err
    run = tmp_path / "run"
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def test_train_and_predict_a_seunet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another registered model (its own config keys, same padding, inexact tiling) through the CLI."""
    write_dataset(tmp_path / "data", 3, (32, 32), seed=1, semantic=True)
    cfg = {**CONFIG, "model": {"name": "seunet", "depth": 1, "base_features": 3, "scales": 2, "scale_dropout": 0.25},
           "data": {**CONFIG["data"], "patch_shape": [15, 16], "val_fraction": 0.34},
           "training": {**CONFIG["training"], "iterations": 2, "val_every": 2, "checkpoint_every": 2}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rc, out, err = cli(capsys, "train", "-c", tmp_path / "cfg.yaml", f"out={tmp_path / 'run'}")
    assert rc == 0, err
    assert "training seunet (2-D, padding=same)" in out
    assert "nearest valid size [14, 16]" in out  # multiples of 2^depth; a tie takes the smaller
    assert json.loads((tmp_path / "run" / "model.json").read_text())["kwargs"]["scales"] == 2
    odd, _ = write_dataset(tmp_path / "odd", 1, (30, 37), seed=3)
    rc, out, err = cli(capsys, "predict", "-m", tmp_path / "run", "-i", odd / "img_000.tif", "-o",
                       tmp_path / "pred.tif", "--device", "cpu")
    assert rc == 0, err
    assert read_labels(tmp_path / "pred.tif")[0].shape == (30, 37)
