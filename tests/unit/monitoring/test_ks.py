"""The numeric tests agree with scipy: KS to 1e-12 (statistic) and 1e-6 (p-value), and the rest."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance as scipy_distance

from shipyard.monitoring import Column, get_test
from shipyard.monitoring._column import from_arrow
from shipyard.monitoring._wasserstein import distance as wasserstein_distance


def numeric(values: list[float] | np.ndarray) -> Column:
    return from_arrow("x", pa.array(np.asarray(values, dtype=np.float64)), "numeric")


def categorical(values: list[str]) -> Column:
    return from_arrow("x", pa.array(values, pa.string()), "categorical")


# Few distinct values make ties within and across the samples likely.
tied = st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=60)
spread = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=80
)
samples = st.one_of(tied, spread)


def assert_matches_scipy(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> None:
    with warnings.catch_warnings():
        # scipy warns when its exact p-value fails and it falls back; ours falls back quietly.
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ks_2samp(a, b)
    statistic, p_value = get_test("ks").compute(numeric(a), numeric(b))
    assert statistic == pytest.approx(float(expected.statistic), abs=1e-12, rel=0)
    assert p_value == pytest.approx(float(expected.pvalue), abs=1e-6, rel=0)


@settings(max_examples=150, deadline=None)
@given(samples, samples)
def test_ks_equals_scipy_on_small_samples_with_ties(a: list[float], b: list[float]) -> None:
    assert_matches_scipy(a, b)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 3000),
    st.floats(-1.0, 1.0),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_ks_equals_scipy_on_larger_samples(
    n1: int, n2: int, shift: float, seed: int, rounded: bool
) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    if rounded:
        a, b = np.round(a, 1), np.round(b, 1)
    assert_matches_scipy(a, b)


@pytest.mark.parametrize(("n1", "n2"), [(10_001, 500), (20_000, 15_000), (12_000, 12_000)])
def test_ks_equals_scipy_where_it_switches_to_the_asymptotic_distribution(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    assert_matches_scipy(rng.normal(size=n1), rng.normal(0.02, 1.0, size=n2))


def test_ks_p_value_at_the_exact_limit_and_past_it_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    assert_matches_scipy(rng.normal(size=10_000), rng.normal(0.05, 1, size=9_999))


@settings(max_examples=80, deadline=None)
@given(samples, samples)
def test_wasserstein_distance_equals_scipy(a: list[float], b: list[float]) -> None:
    expected = stats.wasserstein_distance(a, b)
    found = wasserstein_distance(numeric(a), numeric(b))
    assert found == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("n1", "n2"), [(1000, 1000), (1000, 250), (999, 1000)])
def test_wasserstein_paired_and_merged_forms_agree_with_scipy(n1: int, n2: int) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=n1), rng.gamma(2.0, size=n2)
    found, _ = get_test("wasserstein").compute(numeric(a), numeric(b))
    assert found == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9)


def test_jensen_shannon_equals_scipy_on_categories() -> None:
    ref = categorical(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = categorical(["a"] * 10 + ["b"] * 30 + ["d"] * 60)
    found, p_value = get_test("jensen_shannon").compute(ref, cur)
    expected = scipy_distance.jensenshannon([0.5, 0.3, 0.2, 0.0], [0.1, 0.3, 0.0, 0.6], base=2)
    assert (found, p_value) == (pytest.approx(expected, rel=1e-12), None)


def test_chi_square_equals_scipy_contingency_with_an_unseen_category() -> None:
    ref = categorical(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = categorical(["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["new"] * 10)
    statistic, p_value = get_test("chi_square").compute(ref, cur)
    expected = stats.chi2_contingency([[50, 30, 20, 0], [40, 30, 20, 10]], correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_psi_uses_reference_deciles_and_an_epsilon_for_empty_bins() -> None:
    ref = numeric(np.arange(1000.0))
    same, _ = get_test("psi").compute(ref, numeric(np.arange(1000.0)))
    assert same == pytest.approx(0.0, abs=1e-12)
    # Every current value beyond the reference's max: one bin holds it all.
    beyond, _ = get_test("psi").compute(ref, numeric(np.full(100, 5000.0)))
    shares = ref.binned / ref.binned.sum()
    eps = 1e-4
    expected = sum(
        (c - max(r, eps)) * np.log(c / max(r, eps))
        for r, c in zip(shares, [eps] * (len(shares) - 1) + [1.0], strict=True)
    )
    assert beyond == pytest.approx(expected, rel=1e-9)
