"""Windows too large to hold: read in Arrow batches and tallied against the reference."""

from __future__ import annotations

import contextlib
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.monitoring import DriftTest, _api, _tally, drift_report, register_test
from shipyard.monitoring._column import from_arrow
from shipyard.monitoring._ks import compute as ks_compute
from shipyard.monitoring._ks import compute_tallied, statistic, tallied_statistic
from shipyard.monitoring._registry import _registered
from shipyard.monitoring._tally import tally_numbers


@pytest.fixture
def small_tally(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tally any window over 1,000 rows, in batches of 700."""
    monkeypatch.setattr(_api, "TALLY_ROWS", 1000)
    monkeypatch.setattr(_api, "BATCH_ROWS", 700)


def _tallied(reference: np.ndarray, current: np.ndarray, batch: int):  # type: ignore[no-untyped-def]
    """The reference's column and the current values tallied in batches of ``batch``."""
    column = from_arrow("x", pa.array(reference, pa.float64()), "numeric")
    batches = [pa.array(current[i : i + batch]) for i in range(0, len(current), batch)]
    return column, tally_numbers(column, batches)


@contextlib.contextmanager
def grid_slices(size: int) -> Iterator[None]:
    """Tests read a tally's grid ``size`` reference values at a time (not one slice)."""
    with mock.patch.object(_tally, "SLICE", size):
        yield


values = st.lists(st.integers(-20, 20).map(lambda v: v / 4), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(reference=values, current=values, batch=st.integers(1, 50))
def test_the_tallied_ks_statistic_is_scipys_to_the_bit(
    reference: list[float], current: list[float], batch: int
) -> None:
    ref, cur = np.array(reference), np.array(current)
    column, tally = _tallied(ref, cur, batch)
    whole = from_arrow("x", pa.array(cur), "numeric")
    with grid_slices(7):
        assert tallied_statistic(column, tally) == statistic(column, whole)
    with warnings.catch_warnings():  # scipy warns when its exact p-value falls back
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = scipy.stats.ks_2samp(ref, cur).statistic
    assert compute_tallied(column, tally)[0] == expected


def test_the_tallied_ks_p_value_is_the_whole_windows() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=3000), rng.normal(0.05, 1, size=20000)
    column, tally = _tallied(ref, cur, 4096)
    whole = ks_compute(column, from_arrow("x", pa.array(cur), "numeric"))
    expected = scipy.stats.ks_2samp(ref, cur)
    assert whole == (expected.statistic, pytest.approx(expected.pvalue, abs=1e-6))
    assert compute_tallied(column, tally) == whole


@pytest.mark.parametrize(
    ("shift", "scale"), [(0.0, 1.0), (0.5, 1.0), (0.0, 1.5), (10.0, 1.0), (-10.0, 0.1)]
)
def test_the_tallied_wasserstein_distance_is_scipys_closely(shift: float, scale: float) -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=5000), rng.normal(shift, scale, size=60000)
    from shipyard.monitoring._wasserstein import tallied_distance

    _, tally = _tallied(ref, cur, 8192)
    expected = scipy.stats.wasserstein_distance(ref, cur)
    # Disjoint samples never cross inside a bucket: exact; otherwise within 0.2%.
    rel = 1e-12 if abs(shift) >= 10 else 2e-3
    with grid_slices(333):
        assert tallied_distance(tally) == pytest.approx(expected, rel=rel)
    assert tallied_distance(tally) == pytest.approx(expected, rel=rel)


def test_every_source_kind_gives_the_same_tallied_report(small_tally: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    reference = pa.table({"n": rng.normal(size=1500), "c": rng.choice(["a", "b"], 1500)})
    current = pa.table(
        {
            "n": pa.array(np.where(rng.random(5000) < 0.1, np.nan, rng.normal(0.4, 1, 5000))),
            "c": pa.array(rng.choice(["a", "b", "z", None], 5000)).dictionary_encode(),
        }
    )
    path = tmp_path / "current.parquet"
    pq.write_table(current, path, row_group_size=1200)
    reader = pa.RecordBatchReader.from_batches(
        current.schema, current.to_batches(max_chunksize=900)
    )
    reports = [
        drift_report(reference, source).to_dict()
        for source in (current, path, str(path), reader, current.to_pandas())
    ]
    assert all(report == reports[0] for report in reports[1:])
    assert reports[0]["columns"]["c"]["status"] == "unseen_categories"
    assert reports[0]["columns"]["n"]["drift"] is True


def test_tallied_edge_cases_get_statuses_not_errors(small_tally: None) -> None:
    rows = 3000
    reference = pa.table(
        {"constant": np.ones(500), "empty": np.full(500, np.nan), "x": np.arange(500.0)}
    )
    current = pa.table(
        {
            "constant": np.ones(rows),
            "empty": np.arange(rows, dtype=float),
            "x": pa.nulls(rows, pa.float64()),
        }
    )
    found = drift_report(reference, current).to_dict()["columns"]
    assert found["constant"]["status"] == "constant"
    assert found["constant"]["drift"] is False
    assert found["empty"]["status"] == "reference_all_null"
    assert found["x"]["status"] == "all_null"


def test_a_tallied_report_draws_the_current_values_outside_the_reference(
    small_tally: None, tmp_path: Path
) -> None:
    reference = pa.table({"x": np.linspace(0, 1, 1000)})
    current = pa.table(
        {"x": np.concatenate((np.full(1000, -5.0), np.linspace(0, 1, 2000), np.full(500, 9.0)))}
    )
    report = drift_report(reference, current)
    bars = report["x"].histogram
    assert bars.labels[0] == "< 0"
    assert bars.labels[-1] == "> 1"
    assert bars.current[0] == pytest.approx(1000 / 3500)
    assert bars.current[-1] == pytest.approx(500 / 3500)
    assert sum(bars.current) == pytest.approx(1.0)
    assert sum(bars.reference) == pytest.approx(1.0)
    report.to_html(tmp_path / "drift.html")
    assert "&gt; 1" in (tmp_path / "drift.html").read_text()


def test_a_registered_test_that_reads_no_tally_gets_the_whole_column(
    small_tally: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def largest_gap(reference, current):  # type: ignore[no-untyped-def]
        seen.append(len(current.values))
        return float(abs(reference.values.mean() - current.values.mean())), None

    monkeypatch.setitem(_registered, "mean_gap", "placeholder")
    register_test(
        "mean_gap",
        DriftTest(
            name="mean_gap",
            kinds=frozenset({"numeric"}),
            measures="distance",
            threshold=0.5,
            compute=largest_gap,
            summary="difference of means",
        ),
    )
    found = drift_report(
        pa.table({"x": np.zeros(100)}), pa.table({"x": np.ones(5000)}), tests="mean_gap"
    )
    assert seen == [5000]
    assert found["x"].statistic == 1.0


def test_a_tallied_window_is_read_in_bounded_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The window's column (3.2 MB of float64) is never held whole: only batches of 4,096 rows."""
    rows = 400_000
    rng = np.random.default_rng(7)
    path = tmp_path / "current.parquet"
    pq.write_table(pa.table({"x": rng.normal(size=rows)}), path, row_group_size=4096)
    reference = pa.table({"x": rng.normal(size=1000)})

    def peak_bytes() -> int:
        tracemalloc.start()
        try:
            drift_report(reference, path, tests="ks")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole = peak_bytes()
    monkeypatch.setattr(_api, "TALLY_ROWS", 10_000)
    monkeypatch.setattr(_api, "BATCH_ROWS", 4096)
    tallied = peak_bytes()
    assert whole > 8 * rows  # the whole column, at least: the measure sees numpy's arrays
    assert tallied < whole / 4


def test_a_tallied_histogram_matches_the_whole_windows_within_the_reference_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(8)
    reference = pa.table({"x": rng.uniform(0, 10, 5000)})
    current = pa.table({"x": rng.triangular(0, 2, 10, 50_000)})
    whole = drift_report(reference, current)["x"].histogram
    monkeypatch.setattr(_api, "TALLY_ROWS", 1000)
    tallied = drift_report(reference, current)["x"].histogram
    assert tallied.labels == whole.labels
    assert tallied.reference == whole.reference
    assert tallied.current == pytest.approx(whole.current, abs=2e-3)
