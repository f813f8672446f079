"""DriftReport: the to_dict shape, drift share, and a self-contained, escaped HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import DriftReport, drift_report


@pytest.fixture
def report() -> DriftReport:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "income": rng.normal(50, 10, 500),
            "age": rng.normal(40, 5, 500),
            "<script>alert(1)</script>": rng.choice(["a&b", "<i>x</i>"], 500),
            "when": pd.date_range("2026-01-01", periods=500, freq="h"),
        }
    )
    cur = ref.assign(income=ref.income + 100).drop(columns=["age"])
    return drift_report(ref, cur)


def test_to_dict_has_exactly_the_documented_shape(report: DriftReport) -> None:
    found = report.to_dict()
    assert set(found) == {"drift_share", "columns"}
    assert list(found["columns"]) == ["income", "age", "<script>alert(1)</script>", "when"]
    for entry in found["columns"].values():
        assert set(entry) == {"test", "statistic", "p_value", "threshold", "drift", "status"}
    assert found["columns"]["income"] == {
        "test": "ks",
        "statistic": pytest.approx(1.0),
        "p_value": pytest.approx(0.0, abs=1e-12),
        "threshold": 0.05,
        "drift": True,
        "status": "ok",
    }
    assert found["columns"]["age"]["status"] == "missing_column"
    assert found["columns"]["when"] == {
        "test": None,
        "statistic": None,
        "p_value": None,
        "threshold": None,
        "drift": False,
        "status": "unsupported_type",
    }
    json.dumps(found, allow_nan=False)


def test_drift_share_counts_only_tested_columns(report: DriftReport) -> None:
    # income drifted; the text column did not; age (missing) and when (a date) were not tested.
    assert report.drift_share == 0.5
    assert report.drifted == ["income"]


def test_to_html_writes_one_escaped_self_contained_page(
    report: DriftReport, tmp_path: Path
) -> None:
    path = report.to_html(tmp_path / "out" / "drift.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;x&lt;/i&gt;" in page
    assert "a&amp;b" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    # One histogram pair (an SVG with reference and current bars) per tested column.
    assert page.count("<svg") == 2
    assert "class='ref'" in page
    assert "class='cur'" in page
