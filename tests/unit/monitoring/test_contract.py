"""The contract every registered drift test keeps, whatever it measures.

One suite, parametrized over ``available_tests()``: a new test registered by
name is checked here without a line of its own.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import (
    STATUSES,
    DriftTest,
    available_tests,
    drift_report,
    get_test,
    prepare_reference,
)

TESTS = available_tests()


def frame_for(test: DriftTest, rows: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """One column "x" of a kind ``test`` reads; ``shift`` moves it (numbers) or its mix (categories)."""
    rng = np.random.default_rng(seed)
    if "numeric" in test.kinds:
        return pd.DataFrame({"x": rng.normal(10.0 + shift, 2.0, rows)})
    weights = np.array([0.5, 0.3, 0.2]) if not shift else np.array([0.1, 0.2, 0.7])
    return pd.DataFrame({"x": rng.choice(["a", "b", "c"], rows, p=weights)})


def result(test_name: str, reference: pd.DataFrame, current: pd.DataFrame):  # type: ignore[no-untyped-def]
    return drift_report(reference, current, tests=test_name)["x"]


@pytest.fixture(params=TESTS)
def test_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_builtin_test_is_registered() -> None:
    assert {"ks", "psi", "wasserstein", "jensen_shannon", "chi_square"} <= set(TESTS)


def test_identical_samples_do_not_drift(test_name: str) -> None:
    test = get_test(test_name)
    data = frame_for(test, 800)
    found = result(test_name, data, data)
    assert (found.status, found.drift) == ("ok", False)
    assert found.statistic == pytest.approx(0.0, abs=1e-12)
    if test.measures == "p_value":
        assert found.p_value == pytest.approx(1.0)


def test_samples_of_one_distribution_do_not_drift(test_name: str) -> None:
    test = get_test(test_name)
    found = result(test_name, frame_for(test, 3000, seed=1), frame_for(test, 3000, seed=2))
    assert found.drift is False


def test_a_large_shift_drifts(test_name: str) -> None:
    test = get_test(test_name)
    found = result(test_name, frame_for(test, 800, seed=1), frame_for(test, 500, shift=3.0, seed=2))
    assert found.drift is True
    assert found.status == "ok"


def test_the_statistic_is_finite_non_negative_and_in_the_report_shape(test_name: str) -> None:
    test = get_test(test_name)
    found = result(test_name, frame_for(test, 500, seed=1), frame_for(test, 400, shift=1.0, seed=2))
    assert math.isfinite(found.statistic)
    assert found.statistic >= 0
    assert found.test == test_name
    assert found.threshold == test.threshold
    assert (found.p_value is not None) == (test.measures == "p_value")
    if found.p_value is not None:
        assert 0.0 <= found.p_value <= 1.0


def test_swapping_the_samples_keeps_a_symmetric_test_equal(test_name: str) -> None:
    test = get_test(test_name)
    a, b = frame_for(test, 600, seed=1), frame_for(test, 400, shift=0.5, seed=2)
    forward, backward = result(test_name, a, b), result(test_name, b, a)
    if test.symmetric:
        assert forward.statistic == pytest.approx(backward.statistic, rel=1e-12)
        assert forward.p_value == pytest.approx(backward.p_value, rel=1e-9)
    if "categorical" in test.kinds:  # every category is a bin: symmetric
        a = pd.DataFrame({"x": ["a", "b", "c"] * 100})
        b = pd.DataFrame({"x": ["a", "b", "b", "d"] * 60})
        forward, backward = result(test_name, a, b), result(test_name, b, a)
        assert forward.statistic == pytest.approx(backward.statistic, rel=1e-12)


def test_results_are_deterministic_and_a_prepared_reference_gives_the_same(test_name: str) -> None:
    test = get_test(test_name)
    ref, cur = frame_for(test, 700, seed=1), frame_for(test, 300, shift=0.4, seed=2)
    first = result(test_name, ref, cur)
    again = result(test_name, ref, cur)
    stored = drift_report(
        type(prepare_reference(ref)).from_bytes(prepare_reference(ref).to_bytes()),
        cur,
        tests=test_name,
    )["x"]
    assert first == again == stored


def edge_cases(test: DriftTest) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    numeric = "numeric" in test.kinds
    ref = frame_for(test, 400)
    value = 3.0 if numeric else "a"
    null = np.nan if numeric else None
    return {
        "empty": (ref, ref.iloc[:0]),
        "all_null": (ref, pd.DataFrame({"x": pd.Series([null] * 50, dtype=ref.x.dtype)})),
        "reference_all_null": (
            pd.DataFrame({"x": pd.Series([null] * 50, dtype=ref.x.dtype)}),
            ref,
        ),
        "missing_column": (ref, pd.DataFrame({"y": [1.0, 2.0]})),
        "single_row": (ref, ref.iloc[:1]),
        "constant_reference": (pd.DataFrame({"x": [value] * 300}), ref),
        "both_constant": (pd.DataFrame({"x": [value] * 300}), pd.DataFrame({"x": [value] * 200})),
        "type_mismatch": (
            ref,
            pd.DataFrame({"x": ["a"] * 50}) if numeric else pd.DataFrame({"x": [1.0] * 50}),
        ),
    }


EDGE_STATUS = {
    "empty": {"empty"},
    "all_null": {"all_null"},
    "reference_all_null": {"reference_all_null"},
    "missing_column": {"missing_column"},
    "single_row": {"ok", "too_few_rows"},
    "constant_reference": {"constant", "unseen_categories"},
    "both_constant": {"constant"},
    "type_mismatch": {"type_mismatch"},
}


@pytest.mark.parametrize("case", sorted(EDGE_STATUS))
def test_an_edge_case_gives_a_status_not_an_exception(test_name: str, case: str) -> None:
    test = get_test(test_name)
    ref, cur = edge_cases(test)[case]
    found = result(test_name, ref, cur)
    assert found.status in EDGE_STATUS[case]
    assert found.status in STATUSES
    assert found.test == test_name
    if found.statistic is None:
        assert found.drift is False
        assert found.p_value is None
    else:
        assert math.isfinite(found.statistic)
        assert found.statistic >= 0


def test_a_constant_reference_flags_a_window_that_leaves_the_constant(test_name: str) -> None:
    test = get_test(test_name)
    ref, cur = edge_cases(test)["constant_reference"]
    assert result(test_name, ref, cur).drift is True
    same = edge_cases(test)["both_constant"]
    assert result(test_name, *same).drift is False


def test_unseen_categories_are_drift_not_an_error(test_name: str) -> None:
    test = get_test(test_name)
    if "categorical" not in test.kinds:
        pytest.skip(f"{test_name} reads no categories")
    ref = pd.DataFrame({"x": ["a", "b"] * 200})
    cur = pd.DataFrame({"x": ["a", "b", "zebra", "yak"] * 100})
    found = result(test_name, ref, cur)
    assert found.status == "unseen_categories"
    assert found.drift is True
    assert math.isfinite(found.statistic)


@pytest.mark.parametrize("shift", [0.0, 0.3, 3.0])
def test_a_tallied_window_agrees_with_the_whole_window(
    test_name: str, shift: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows above TALLY_ROWS rows are read in batches; tests that read tallies say the same."""
    from shipyard.monitoring import _api

    test = get_test(test_name)
    reference = frame_for(test, 2000, seed=1)
    current = frame_for(test, 6000, shift=shift, seed=2)
    whole = result(test_name, reference, current)
    monkeypatch.setattr(_api, "TALLY_ROWS", 1000)
    monkeypatch.setattr(_api, "BATCH_ROWS", 700)
    tallied = result(test_name, reference, current)
    assert (tallied.status, tallied.drift, tallied.p_value) == (
        whole.status,
        whole.drift,
        whole.p_value,
    )
    if test_name == "wasserstein":  # exact but where the two CDFs cross inside a bucket
        assert tallied.statistic == pytest.approx(whole.statistic, rel=1e-2, abs=1e-4)
    else:
        assert tallied.statistic == whole.statistic
