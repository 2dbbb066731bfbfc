"""``unetkit reproduce scale``: the smoke run's outputs; the claims on hand-built summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.data.rescale import DEFAULT_SCALE_FACTORS
from unetkit.reproduce import EXPERIMENTS
from unetkit.reproduce.scale import (
    MODELS,
    OUTPUTS,
    Budget,
    claims,
    model_config,
    table_row,
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scale")
    assert main(["reproduce", "scale", "--out", str(out), "--budget", "smoke"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_outputs_and_keys(smoke: tuple[Path, dict]) -> None:
    out, r = smoke
    assert "scale" in EXPERIMENTS
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert (out / "scale_curves.png").stat().st_size > 1000
    assert "scale_curves.png" in (out / "report.md").read_text()
    assert tuple(r["models"]) == MODELS and tuple(r["scales"]) == MODELS and tuple(r["summary"]) == MODELS
    for m in MODELS:
        assert r["scales"][m]["factors"] == pytest.approx(list(DEFAULT_SCALE_FACTORS))
        assert len(r["scales"][m]["rows"]) == 17
        assert set(r["summary"][m]) == {"iou_away", "consistency_away", "iou_at_1", "iou_all"}
    assert r["seconds"] > 0


def test_values_in_range(smoke: tuple[Path, dict]) -> None:
    _, r = smoke
    for m in MODELS:
        for row in r["scales"][m]["rows"]:
            assert 0.0 <= row["iou"] <= 1.0 and 0.0 <= row["consistency"] <= 1.0
        assert r["scales"][m]["rows"][8]["factor"] == pytest.approx(1.0)
        assert r["scales"][m]["rows"][8]["consistency"] == pytest.approx(1.0)


def test_report_tables_match_results(smoke: tuple[Path, dict]) -> None:
    out, r = smoke
    report = (out / "report.md").read_text()
    iou_part, cons_part = report.split("## Consistency per factor")
    for i, f in enumerate(r["scales"][MODELS[0]]["factors"]):
        assert table_row(f, [r["scales"][m]["rows"][i]["iou"] for m in MODELS]) in iou_part
        assert table_row(f, [r["scales"][m]["rows"][i]["consistency"] for m in MODELS]) in cons_part
    rows = re.findall(r"^\| (\d\.\d{3}) \|", iou_part, flags=re.MULTILINE)
    assert len(rows) == 17
    for line in claims(r["summary"]):
        assert line in report


def _summary(**iou_away: float) -> dict[str, dict[str, float]]:
    base = {"iou_away": 0.5, "consistency_away": 0.9, "iou_at_1": 0.8, "iou_all": 0.6}
    return {m: {**base, "iou_away": iou_away.get(m.replace(".", "_"), 0.5)} for m in MODELS}


def test_claims_follow_the_numbers() -> None:
    text = "\n".join(claims(_summary(seunet_p0=0.7, unet=0.4, unet_jitter=0.7, seunet_p0_25=0.8)))
    assert "SEU-Net p=0 0.700 beats U-Net 0.400" in text
    assert "it closes the gap" in text and "so dropout helps here" in text
    assert "does not lose at factor 1" in text
    text = "\n".join(claims(_summary(seunet_p0=0.3, unet=0.6, unet_jitter=0.6, seunet_p0_25=0.3)))
    assert "loses to U-Net" in text and "no gap to close" in text and "does not help" in text


def test_model_configs() -> None:
    b = Budget.named("full")
    assert model_config("unet", b)["padding"] == "same"
    assert model_config("seunet_p0.25", b)["scale_dropout"] == 0.25
    assert model_config("sresnet", b)["name"] == "sresnet"
    with pytest.raises(ValueError):
        Budget.named("huge")
    assert np.isfinite(b.radius)
