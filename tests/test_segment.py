"""``unetkit segment`` end to end on a tiny spoco run folder, and its errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from segment_runs import write_spoco_run

from unetkit.cli import main
from unetkit.data.synthetic import write_dataset
from unetkit.errors import InputError
from unetkit.runs import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def spoco(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tiny spoco run folder (:func:`segment_runs.write_spoco_run`) and a 64 x 64 image."""
    root = tmp_path_factory.mktemp("segment")
    images, labels = write_dataset(root / "data", 1, (64, 64), seed=0)
    run = write_spoco_run(root)
    image = tifffile.imread(images / "img_000.tif")
    return SimpleNamespace(root=root, run=run, image_path=images / "img_000.tif", image=image,
                           label_path=labels / "img_000.tif")


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_error(rc: int, err: str, *phrases: str) -> None:
    assert rc == 2, err
    assert err.startswith("unetkit: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase.lower() in err.lower(), f"{phrase!r} not in {err!r}"


@pytest.mark.parametrize("method", ["mws", "mean-shift", "hdbscan", "consistency"])
def test_segment_writes_labels(spoco: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               method: str) -> None:
    out = tmp_path / "labels.tif"
    rc, stdout, err = cli(capsys, "segment", "-m", spoco.run, "-i", spoco.image_path, "-o", out, "--method", method)
    assert rc == 0, err
    labels = tifffile.imread(out)
    assert labels.shape == spoco.image.shape and labels.dtype == np.uint16
    assert "whole image" in stdout and method in stdout
    assert not list(tmp_path.glob(".unetkit-segment-*"))  # no scratch left behind


def test_segment_blockwise_matches_whole_and_uses_the_mask(spoco: SimpleNamespace, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from unetkit.metrics import adapted_rand_error

    mask = tmp_path / "fg.tif"
    fg = np.zeros(spoco.image.shape, np.uint8)
    fg[8:56, 4:60] = 3
    tifffile.imwrite(mask, fg)
    whole, block = tmp_path / "whole.tif", tmp_path / "block.tif"
    rc, _, err = cli(capsys, "segment", "-m", spoco.run, "-i", spoco.image_path, "-o", whole, "--mask", mask)
    assert rc == 0, err
    # 64x64x4 float32 embeddings = 64 KiB > 0.03 MiB: blockwise, several blocks
    rc, stdout, err = cli(capsys, "segment", "-m", spoco.run, "-i", spoco.image_path, "-o", block, "--mask", mask,
                          "--cluster-budget", "0.03", "--overlap", "12")
    assert rc == 0, err
    assert "blockwise, blocks 12x12" in stdout  # 36 blocks
    a, b = tifffile.imread(whole), tifffile.imread(block)
    assert (a[fg == 0] == 0).all() and (b[fg == 0] == 0).all()
    # the foreground crosses many block borders; its objects keep one id each
    assert a.max() >= 1 and b.max() == a.max()
    assert adapted_rand_error(b, a) < 0.01


def test_segment_min_size(monkeypatch: pytest.MonkeyPatch, spoco: SimpleNamespace, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """Known embeddings (the network's prediction replaced): a large background, objects of 64,
    100 and 400 px, and 12 single-pixel specks of their own embedding. --min-size 0 keeps all 15
    objects; the default (the run's task.min_size, 50) drops the specks; 80 and 200 drop the
    objects under them too, whole-image and blockwise (the 400-px object crosses block borders)."""
    import unetkit.inference.segment as seg

    lab = np.zeros((64, 64), np.int64)
    lab[2:10, 2:10] = 1  # 64 px
    lab[40:50, 4:14] = 2  # 100 px
    lab[20:40, 30:50] = 3  # 400 px
    speck = [(1, 30 + 2 * k) for k in range(12)]
    for k, (y, x) in enumerate(speck):
        lab[y, x] = 4 + k
    centres = np.random.default_rng(0).normal(0, 30, size=(int(lab.max()) + 1, 4))
    emb = np.moveaxis(centres[lab], -1, 0).astype(np.float32)

    def known(net: object, array: object, *, out: object, **kw: object) -> None:
        out[...] = emb  # type: ignore[index]

    monkeypatch.setattr(seg, "predict", known)
    found = {}
    for name, extra in (("all", ["--min-size", "0"]), ("default", []), ("80", ["--min-size", "80"]),
                        ("200", ["--min-size", "200"]),
                        ("200_blocks", ["--min-size", "200", "--cluster-budget", "0.03", "--overlap", "12"])):
        out = tmp_path / f"{name}.tif"
        rc, stdout, err = cli(capsys, "segment", "-m", spoco.run, "-i", spoco.image_path, "-o", out, *extra)
        assert rc == 0, err
        found[name] = tifffile.imread(out)
        assert ("blockwise" in stdout) == name.endswith("blocks")
    assert found["all"].max() == 15
    for name, kept in (("default", (1, 2, 3)), ("80", (2, 3)), ("200", (3,)), ("200_blocks", (3,))):
        labels = found[name]
        assert labels.max() == len(kept), name
        for obj in range(1, int(lab.max()) + 1):
            ids = np.unique(labels[lab == obj])
            assert (len(ids) == 1 and ids[0] > 0) == (obj in kept), (name, obj, ids)
    rc, _, err = cli(capsys, "segment", "-m", spoco.run, "-i", spoco.image_path, "-o", tmp_path / "x.tif",
                     "--min-size", "-1")
    assert_clean_error(rc, err, "min_size=-1", ">= 0")
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("case", ["method", "mask", "mask_shape", "exists", "consistency_no_g"])
def test_segment_errors(spoco: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        case: str) -> None:
    out = tmp_path / "labels.tif"
    base = ["segment", "-m", spoco.run, "-i", spoco.image_path, "-o", out]
    if case == "method":
        with pytest.raises(SystemExit) as exc:  # argparse: usage line, exit 2
            main([str(a) for a in base] + ["--method", "kmeans"])
        assert exc.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
        return
    if case == "mask":
        rc, _, err = cli(capsys, *base, "--mask", tmp_path / "none.tif")
        assert_clean_error(rc, err, "mask", "does not exist")
    elif case == "mask_shape":
        tifffile.imwrite(tmp_path / "fg.tif", np.ones((30, 64), np.uint8))
        rc, _, err = cli(capsys, *base, "--mask", tmp_path / "fg.tif")
        assert_clean_error(rc, err, "mask", "(30, 64)", "(64, 64)")
    elif case == "exists":
        out.write_bytes(b"precious")
        rc, _, err = cli(capsys, *base)
        assert_clean_error(rc, err, "already exists", "--overwrite")
        assert out.read_bytes() == b"precious"
        rc, _, err = cli(capsys, *base, "--overwrite")
        assert rc == 0, err
        assert tifffile.imread(out).shape == (64, 64)
        return
    elif case == "consistency_no_g":
        run = tmp_path / "run"
        (run / "checkpoints").mkdir(parents=True)
        for name in ("config.yaml", "model.json"):
            (run / name).write_bytes((spoco.run / name).read_bytes())
        state = load_checkpoint(spoco.run / "checkpoints" / "last.pt")
        save_checkpoint(run / "checkpoints" / "last.pt", {"model": state["model"], "step": 1})
        rc, _, err = cli(capsys, "segment", "-m", run, "-i", spoco.image_path, "-o", out, "--method", "consistency")
        assert_clean_error(rc, err, "consistency", "momentum network g")
    assert not out.exists()


def test_consistency_refuses_a_task_without_momentum_network() -> None:
    from unetkit.inference.segment import momentum_network
    from unetkit.models import UNet
    from unetkit.tasks.embedding import EmbeddingTask

    with pytest.raises(InputError, match="only spoco runs"):
        momentum_network(EmbeddingTask(3), UNet(1, 3, depth=2, base_features=4), "unused.pt")


@pytest.mark.parametrize(("first", "dtype"), [(1, np.uint16), (70_000, np.uint32)])
def test_segment_label_dtype_fits_the_ids(monkeypatch: pytest.MonkeyPatch, spoco: SimpleNamespace, tmp_path: Path,
                                          first: int, dtype: type) -> None:
    import unetkit.inference.segment as seg
    from unetkit.runs import load_run

    cfg, model, task = load_run(spoco.run)

    def many(method: str, task: object, cfg: object, e: int, min_size: int = 0) -> object:
        return lambda emb, m, bg, filter_=True: np.arange(emb[0].size).reshape(emb.shape[1:]) + first

    monkeypatch.setattr(seg, "cluster_function", many)
    path, info = seg.segment_file(model, task, cfg, spoco.image_path, tmp_path / "ids.tif")
    assert info["objects"] == first + 64 * 64 - 1
    labels = tifffile.imread(path)
    assert labels.dtype == dtype and int(labels.max()) == info["objects"]


def test_segment_refuses_a_pixelwise_task(spoco: SimpleNamespace, tmp_path: Path) -> None:
    from unetkit.inference.segment import segment_file
    from unetkit.runs import load_run
    from unetkit.tasks.semantic import SemanticTask

    cfg, model, _ = load_run(spoco.run)
    with pytest.raises(InputError, match="unetkit predict"):
        segment_file(model, SemanticTask(4), cfg, spoco.image_path, tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
