"""evaluate_arrays / evaluate_paths: per-image scores, means, foreground mode, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unetkit.data.io import write_image
from unetkit.data.io.folders import SkippedFilesWarning
from unetkit.errors import InputError
from unetkit.metrics.evaluate import METRICS, evaluate_arrays, evaluate_paths

# a: binary, tp 2 fp 1 fn 2 -> IoU 2/5, Dice 4/7
A_PRED = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
A_GT = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
# b: perfect
B = np.array([[0, 1], [1, 0]])
# c: instance ids; pixels (gt, pred): (0,0) (2,1) / (1,2) (0,2)
C_PRED = np.array([[0, 1], [2, 2]])
C_GT = np.array([[0, 2], [1, 0]])


def test_hand_example_binary() -> None:
    res = evaluate_arrays([("a", A_PRED, A_GT), ("b", B, B)])
    assert res["metrics"] == ["iou", "dice"]
    assert res["foreground"] is False
    assert [r["name"] for r in res["images"]] == ["a", "b"]
    a, b = res["images"]
    assert a["iou"] == pytest.approx(2 / 5)
    assert a["dice"] == pytest.approx(4 / 7)
    assert b["iou"] == 1.0 and b["dice"] == 1.0
    # the mean is over images, not pixels
    assert res["mean"]["iou"] == pytest.approx((2 / 5 + 1) / 2)
    assert res["mean"]["dice"] == pytest.approx((4 / 7 + 1) / 2)


def test_metric_subset_and_order() -> None:
    res = evaluate_arrays([("a", A_PRED, A_GT)], metrics=["dice"])
    assert res["metrics"] == ["dice"]
    assert set(res["images"][0]) == {"name", "dice"}
    assert set(res["mean"]) == {"dice"}


def test_unknown_metric_lists_available() -> None:
    with pytest.raises(InputError) as err:
        evaluate_arrays([("a", A_PRED, A_GT)], metrics=["iou", "hausdorff"])
    msg = str(err.value)
    assert "hausdorff" in msg
    for name in METRICS:
        assert name in msg.split("available")[1]


def test_nothing_to_evaluate_and_shape_mismatch() -> None:
    with pytest.raises(InputError, match="nothing to evaluate"):
        evaluate_arrays([])
    with pytest.raises(InputError, match=r"bad.*\(2, 4\).*\(4, 2\)"):
        evaluate_arrays([("ok", B, B), ("bad", A_PRED, A_GT.T)])


def test_multiclass_vs_foreground_mode() -> None:
    # multi-class (K = 3 inferred): class 1 tp 0 fp 1 fn 1 -> 0; class 2 tp 0 fp 2 fn 1 -> 0
    multi = evaluate_arrays([("c", C_PRED, C_GT)])
    assert multi["images"][0]["iou"] == 0.0
    assert multi["images"][0]["dice"] == 0.0
    # foreground: pred > 0 = [[0,1],[1,1]], gt > 0 = [[0,1],[1,0]] -> tp 2 fp 1 fn 0
    fg = evaluate_arrays([("c", C_PRED, C_GT)], foreground=True)
    assert fg["foreground"] is True
    assert fg["images"][0]["iou"] == pytest.approx(2 / 3)
    assert fg["images"][0]["dice"] == pytest.approx(4 / 5)


def test_num_classes_is_shared_across_images() -> None:
    """K is inferred over all pairs; an image without class 2 scores it as empty (1.0)."""
    res = evaluate_arrays([("c", C_PRED, C_GT), ("a", A_PRED, A_GT)])
    assert res["images"][1]["iou"] == pytest.approx((2 / 5 + 1.0) / 2)
    explicit = evaluate_arrays([("a", A_PRED, A_GT)], num_classes=3)
    assert explicit["images"][0]["iou"] == pytest.approx((2 / 5 + 1.0) / 2)
    assert res["mean"]["iou"] == pytest.approx(np.mean([r["iou"] for r in res["images"]]))


def _write_pairs(root: Path) -> tuple[Path, Path]:
    pred_dir, gt_dir = root / "pred", root / "gt"
    write_image(pred_dir / "a.tif", A_PRED.astype(np.uint8), axes="YX")
    write_image(gt_dir / "a.png", A_GT.astype(np.uint8), axes="YX")  # paired by stem
    write_image(pred_dir / "c.tif", C_PRED.astype(np.uint16), axes="YX")
    write_image(gt_dir / "c.tif", C_GT.astype(np.uint16), axes="YX")
    write_image(gt_dir / "unused.tif", B.astype(np.uint8), axes="YX")  # labels without a prediction are not used
    return pred_dir, gt_dir


def test_evaluate_paths_folders(tmp_path: Path) -> None:
    pred_dir, gt_dir = _write_pairs(tmp_path)
    with pytest.warns(SkippedFilesWarning, match="'unused.tif'"):  # labels without a prediction: named, not used
        res = evaluate_paths(pred_dir, gt_dir, foreground=True)
    assert [r["name"] for r in res["images"]] == ["a.tif", "c.tif"]
    assert res["images"][0]["iou"] == pytest.approx(2 / 5)
    assert res["images"][1]["iou"] == pytest.approx(2 / 3)
    assert res["mean"]["dice"] == pytest.approx((4 / 7 + 4 / 5) / 2)
    same = evaluate_arrays([("a.tif", A_PRED, A_GT), ("c.tif", C_PRED, C_GT)])
    with pytest.warns(SkippedFilesWarning):
        assert evaluate_paths(pred_dir, gt_dir) == same


def test_evaluate_paths_single_files_and_formats(tmp_path: Path) -> None:
    write_image(tmp_path / "p.h5", A_PRED.astype(np.int32), axes="YX")
    write_image(tmp_path / "g.zarr", A_GT.astype(np.int64), axes="YX")
    res = evaluate_paths(tmp_path / "p.h5", tmp_path / "g.zarr", metrics=["iou"])
    assert res["images"][0]["name"] == "p.h5"
    assert res["images"][0]["iou"] == pytest.approx(2 / 5)


def test_evaluate_paths_missing_ground_truth(tmp_path: Path) -> None:
    pred_dir, gt_dir = _write_pairs(tmp_path)
    write_image(pred_dir / "zzz.tif", B.astype(np.uint8), axes="YX")
    with pytest.raises(InputError, match="zzz"):
        evaluate_paths(pred_dir, gt_dir)


def test_huge_label_ids_are_refused_not_allocated(tmp_path: Path) -> None:
    """Label id 2**40 would need a (2**40)^2 confusion matrix: refused with the file named, quickly."""
    big = np.zeros((8, 8), np.int64)
    big[2:4, 2:4] = 2**40
    with pytest.raises(InputError, match=r"big\.tif: class id 1099511627776 is too large.*--foreground"):
        evaluate_arrays([("big.tif", big, big)])
    assert evaluate_arrays([("big.tif", big, big)], foreground=True)["mean"]["iou"] == 1.0
    with pytest.raises(InputError, match="num_classes 5000 is too large"):
        evaluate_arrays([("big.tif", big, big)], num_classes=5000)
    from unetkit.metrics import iou

    with pytest.raises(InputError, match="class id 1099511627776 is too large"):
        iou(big, big)


# instance example: gt objects 1 (2 px) and 2 (2 px) merged into pred 5; gt 3 missed
I_GT = np.array([[1, 1, 2, 2, 0, 3]])
I_PRED = np.array([[5, 5, 5, 5, 0, 0]])


def test_instance_metrics_per_image_and_mean() -> None:
    names = ["sbd", "dic", "abs_dic", "seg_acc", "mean_seg_acc", "arand", "voi"]
    res = evaluate_arrays([("i", I_PRED, I_GT), ("same", I_GT, I_GT)], metrics=names)
    assert res["metrics"] == names
    assert res["keys"] == ["sbd", "dic", "abs_dic", "seg_acc", "mean_seg_acc", "arand", "voi_split", "voi_merge"]
    i, same = res["images"]
    assert set(i) == {"name", *res["keys"]}
    # pred 5 vs gt 1 and 2: IoU 0.5, Dice 2/3; gt 3 missed
    assert i["sbd"] == pytest.approx(min(2 / 3, (2 / 3 + 2 / 3 + 0) / 3))
    assert (i["dic"], i["abs_dic"]) == (-2.0, 2.0)
    assert i["seg_acc"] == pytest.approx(1 / 3)  # tp 1, fp 0, fn 2 at IoU >= 0.5
    assert i["mean_seg_acc"] == pytest.approx(1 / 3 / 10)  # 0 at 0.55 ... 0.95
    assert i["voi_split"] == pytest.approx(0.0)
    assert i["voi_merge"] == pytest.approx(4 / 6 + 2 / 6)  # pred 5: 1 bit over 4 px; pred 0: 1 bit over 2 px
    assert same == {"name": "same", "sbd": 1.0, "dic": 0.0, "abs_dic": 0.0, "seg_acc": 1.0, "mean_seg_acc": 1.0,
                    "arand": 0.0, "voi_split": 0.0, "voi_merge": 0.0}
    for k in res["keys"]:
        assert res["mean"][k] == pytest.approx((i[k] + same[k]) / 2)


def test_instance_metrics_with_semantic_and_edge_cases() -> None:
    # semantic and instance metrics together; --foreground applies to the semantic ones only
    res = evaluate_arrays([("i", I_PRED, I_GT)], metrics=["iou", "dic"], foreground=True)
    assert res["images"][0]["iou"] == pytest.approx(4 / 5) and res["images"][0]["dic"] == -2.0
    # huge ids are fine for instance metrics (no class-count inference)
    big = np.zeros((4, 4), np.int64)
    big[:2] = 2**40
    assert evaluate_arrays([("big", big, big)], metrics=["seg_acc", "sbd"])["mean"] == {"seg_acc": 1.0, "sbd": 1.0}
    # no gt object: arand is NaN and left out of the mean; all NaN -> NaN without a warning
    empty = np.zeros((2, 2), int)
    res = evaluate_arrays([("e", empty, empty), ("i", I_PRED, I_GT)], metrics=["arand", "seg_acc"])
    assert np.isnan(res["images"][0]["arand"]) and res["mean"]["arand"] == res["images"][1]["arand"]
    assert res["images"][0]["seg_acc"] == 1.0
    assert np.isnan(evaluate_arrays([("e", empty, empty)], metrics=["arand"])["mean"]["arand"])
    with pytest.raises(InputError, match="n.tif: ground truth holds negative label id -1"):
        evaluate_arrays([("n.tif", empty, empty - 1)], metrics=["sbd"])


def test_cli_instance_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from unetkit.cli import main

    write_image(tmp_path / "p.tif", I_PRED.astype(np.uint16), axes="YX")
    write_image(tmp_path / "g.tif", I_GT.astype(np.uint16), axes="YX")
    out = tmp_path / "scores.json"
    rc = main(["evaluate", "-p", str(tmp_path / "p.tif"), "-g", str(tmp_path / "g.tif"),
               "--metrics", "sbd,dic,seg_acc,mean_seg_acc,arand,voi", "-o", str(out)])
    assert rc == 0
    header, row, mean = capsys.readouterr().out.splitlines()[:3]
    assert header.split() == ["image", "sbd", "dic", "seg_acc", "mean_seg_acc", "arand", "voi_split", "voi_merge"]
    assert row.split()[0] == "p.tif" and mean.split()[0] == "mean" and float(row.split()[2]) == -2.0
    saved = json.loads(out.read_text())
    assert saved["keys"] == header.split()[1:] and saved["mean"]["seg_acc"] == pytest.approx(1 / 3)
