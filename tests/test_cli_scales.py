"""``unetkit evaluate --scales``: a tiny semantic run on two tiny images, factors 0.5, 1, 2."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from unetkit.cli import main
from unetkit.data.synthetic import write_dataset

CONFIG = {
    "seed": 0,
    "task": {"name": "semantic", "labels": "semantic"},
    "model": {"ndim": 2, "in_channels": 1, "out_channels": 2, "depth": 2, "base_features": 4,
              "padding": "valid", "norm": "batch"},
    "data": {
        "train": {"images": "data/images", "labels": "data/labels"},
        "val_fraction": 0.5,
        "patch_shape": [44, 44],
        "batch_size": 1,
        "augment": {"flip": True, "scale_jitter": 1.5},
    },
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"iterations": 2, "val_every": 2, "checkpoint_every": 2, "device": "cpu"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("scales")
    images, labels = write_dataset(root / "data", 2, (48, 48), seed=0, semantic=True)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    assert main(["train", "-c", str(cfg), f"out={root / 'run'}"]) == 0  # trains with scale jitter too
    return SimpleNamespace(root=root, images=images, labels=labels, run=root / "run")


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_evaluate_scales(run: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, fig = run.root / "scales.json", run.root / "curves.png"
    rc, out, err = cli(capsys, "evaluate", "--scales", "0.5,1,2", "-m", run.run, "-i", run.images, "-g",
                       run.labels, "-o", out_json, "--figure", fig)
    assert rc == 0, err
    lines = out.splitlines()
    assert "factor" in lines[1] and "iou" in lines[1] and "consistency" in lines[1]
    assert [ln.split()[0] for ln in lines[2:5]] == ["0.5", "1", "2"]
    result = json.loads(out_json.read_text())
    assert result["factors"] == [0.5, 1.0, 2.0] and result["images"] == 2
    one = next(r for r in result["rows"] if r["factor"] == 1.0)
    assert one["consistency"] == 1.0
    assert all(0.0 <= r["iou"] <= 1.0 and 0.0 <= r["consistency"] <= 1.0 for r in result["rows"])
    assert fig.read_bytes()[:4] == b"\x89PNG"
    # outputs are refused when they exist, replaced with --overwrite
    before = out_json.read_bytes()
    rc, _, err = cli(capsys, "evaluate", "--scales", "1", "-m", run.run, "-i", run.images, "-g", run.labels,
                     "-o", out_json)
    assert rc == 2 and "already exists" in err and out_json.read_bytes() == before
    rc, _, err = cli(capsys, "evaluate", "--scales", "1", "-m", run.run, "-i", run.images, "-g", run.labels,
                     "--figure", fig)
    assert rc == 2 and "--figure" in err and "already exists" in err
    rc, _, err = cli(capsys, "evaluate", "--scales", "1", "-m", run.run, "-i", run.images, "-g", run.labels,
                     "-o", out_json, "--overwrite")
    assert rc == 0, err
    assert json.loads(out_json.read_text())["factors"] == [1.0]


@pytest.mark.parametrize(("args", "message"), [
    (["--scales", "0.5,x", "-m", "RUN", "-i", "IMAGES"], "must be 'default' or comma-separated"),
    (["--scales", "0,1", "-m", "RUN", "-i", "IMAGES"], "scale factor"),
    (["--scales", "1,1", "-m", "RUN", "-i", "IMAGES"], "duplicates"),
    (["--scales", "1", "-p", "PRED"], "-p is not used with --scales"),
    (["--scales", "1", "-m", "RUN"], "--scales needs -i IMAGES"),
    (["--scales", "1", "-i", "IMAGES"], "--scales needs -m RUN"),
    (["-i", "IMAGES"], "only apply with --scales"),
    ([], "evaluate needs -p PRED"),
])
def test_errors(run: SimpleNamespace, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    given = [{"RUN": run.run, "IMAGES": run.images}.get(a, a) for a in args]
    rc, _, err = cli(capsys, "evaluate", *given, "-g", run.labels)
    assert rc == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
