"""The streaming profiler: statistics against numpy/pandas, batch-split invariance,
edge cases, every Arrow type, high cardinality, and the JSON round trip."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shipyard.data._profile import (
    QUANTILES,
    ColumnProfile,
    DatasetProfile,
    Profiler,
    _string_keys,
)
from shipyard.errors import InvalidInput

NAN, INF = float("nan"), float("inf")


def profile(table: pa.Table, batch_rows: int = 1000, **options: int) -> DatasetProfile:
    profiler = Profiler(table.schema, **options)
    for batch in table.to_batches(max_chunksize=batch_rows):
        profiler.update(batch)
    return profiler.finish()


def column(values: object, arrow_type: pa.DataType | None = None, **options: int) -> ColumnProfile:
    array = values if isinstance(values, pa.Array) else pa.array(values, type=arrow_type)
    return profile(pa.table({"c": array}), **options).columns["c"]


def as_json(result: DatasetProfile) -> str:
    return json.dumps(result.to_dict(), allow_nan=False)


def rank_error(column_profile: ColumnProfile, values: np.ndarray) -> float:
    """The largest distance between a reported quantile's rank range in ``values`` and its q."""
    ordered = np.sort(values)
    worst = 0.0
    for q, value in column_profile.quantiles.items():
        below = np.searchsorted(ordered, value, "left") / len(ordered)
        at_or_below = np.searchsorted(ordered, value, "right") / len(ordered)
        worst = max(worst, below - float(q), float(q) - at_or_below)
    return worst


# --------------------------------------------------------------------------- numbers

floats_with_specials = st.one_of(
    st.floats(min_value=-1e100, max_value=1e100),
    st.sampled_from([NAN, INF, -INF, 0.0, -0.0]),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(floats_with_specials, max_size=300), st.integers(1, 64))
def test_float_statistics_match_numpy(values: list[float | None], batch_rows: int) -> None:
    result = profile(pa.table({"c": pa.array(values, pa.float64())}), batch_rows).columns["c"]
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    finite = present[np.isfinite(present)]

    assert result.kind == "numeric"
    assert result.count == len(present)
    assert result.nulls == len(values) - len(present)
    assert result.nan_count == int(np.isnan(present).sum())
    assert result.inf_count == int(np.isinf(present).sum())
    assert result.distinct == pd.Series(present, dtype="float64").nunique()
    assert result.distinct_is_exact
    if len(finite) == 0:
        assert (result.min, result.max, result.mean, result.std) == (None, None, None, None)
        assert result.quantiles is None
        assert result.histogram is None
        assert result.sketch is None
        return
    assert result.min == finite.min()
    assert result.max == finite.max()
    scale = float(np.abs(finite).max())
    assert math.isclose(result.mean, finite.mean(), rel_tol=1e-9, abs_tol=1e-12 * scale)
    if len(finite) > 1:
        assert math.isclose(result.std, finite.std(ddof=1), rel_tol=1e-9, abs_tol=1e-12 * scale)
    else:
        assert result.std is None
    assert sum(result.histogram["counts"]) == len(finite)
    as_json(profile(pa.table({"c": pa.array(values, pa.float64())})))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()), max_size=300),
    st.integers(1, 64),
)
def test_integer_statistics_match_numpy(values: list[int | None], batch_rows: int) -> None:
    result = profile(pa.table({"c": pa.array(values, pa.int64())}), batch_rows).columns["c"]
    present = [v for v in values if v is not None]
    assert (result.count, result.nulls) == (len(present), len(values) - len(present))
    assert result.distinct == len(set(present))
    if not present:
        assert result.min is None
        assert result.mean is None
        return
    # Exact, as Python ints: no float rounding of min and max.
    assert (result.min, result.max) == (min(present), max(present))
    assert isinstance(result.min, int)
    floats = np.array(present, dtype=np.float64)
    assert math.isclose(result.mean, floats.mean(), rel_tol=1e-9, abs_tol=1e-3)


def test_random_numbers_match_numpy_and_pandas() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(50.0, 12.0, 200_000)
    result = column(values)
    series = pd.Series(values)
    assert result.count == 200_000
    assert result.nulls == 0
    assert (result.min, result.max) == (values.min(), values.max())
    assert math.isclose(result.mean, series.mean(), rel_tol=1e-9)
    assert math.isclose(result.std, series.std(), rel_tol=1e-9)
    assert result.distinct_is_exact is False  # 200,000 distinct is past the cap
    assert abs(result.distinct - 200_000) <= 0.05 * 200_000


def test_quantiles_are_within_the_kll_rank_error() -> None:
    values = np.random.default_rng(1).lognormal(0.0, 1.0, 150_000)
    result = column(values, batch_rows=8192)
    assert list(result.quantiles) == [str(q) for q in QUANTILES]
    assert rank_error(result, values) <= result.kll.normalized_rank_error(False)
    assert result.kll.n == len(values)


def test_sampled_quantiles_stay_within_the_kll_error_plus_sampling_error() -> None:
    # A low full-rate threshold exercises four sampling levels on 400k values.
    values = np.random.default_rng(2).exponential(3.0, 400_000)
    result = column(values, batch_rows=10_000, full_rate_values=1 << 15)
    # Sampling 1.5 * 2**15 values adds under 1% rank error with 99.99% confidence.
    assert rank_error(result, values) <= result.kll.normalized_rank_error(False) + 0.01
    assert abs(result.kll.n - len(values)) <= 0.01 * len(values)
    assert sum(result.histogram["counts"]) == len(values)


def test_histogram_is_exact_while_the_sketch_is() -> None:
    values = np.arange(150) % 20 + 0.5  # midpoints of 20 unit bins over [0.5, 19.5]
    result = column(np.concatenate([[0.0, 20.0], values]))
    counts, edges = np.histogram(np.concatenate([[0.0, 20.0], values]), bins=20, range=(0, 20))
    assert result.histogram["counts"] == counts.tolist()
    assert np.allclose(result.histogram["edges"], edges)


def test_cdf_and_quantile_helpers_read_the_sketch() -> None:
    values = np.arange(1, 101, dtype=np.float64)
    result = column(values)
    assert result.quantile(0.5) == 50.0
    assert result.cdf(50.0) == 0.5
    assert result.cdf([100.0, 0.0, 50.0]).tolist() == [1.0, 0.0, 0.5]
    assert result.cdf(np.array([[10.0, 20.0]])).shape == (1, 2)
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        result.quantile(1.5)
    with pytest.raises(InvalidInput, match="no quantile sketch"):
        column(["a"]).cdf(1.0)


def test_nan_and_infinity_are_counted_apart_and_left_out_of_statistics() -> None:
    result = column([1.0, NAN, INF, -INF, 3.0, None])
    assert (result.count, result.nulls, result.nan_count, result.inf_count) == (5, 1, 1, 2)
    assert (result.min, result.max, result.mean) == (1.0, 3.0, 2.0)
    assert result.distinct == 4  # 1, 3, inf, -inf: NaN is not a value
    assert result.histogram["counts"] == [1] + [0] * 18 + [1]


def test_negative_zero_is_zero() -> None:
    assert column([0.0, -0.0, 0.0]).distinct == 1


def test_huge_values_give_none_where_float64_overflows() -> None:
    result = column([1e308, -1e308, 1e308])
    assert result.mean is not None  # the sum cancels within range per batch
    assert json.dumps(result.to_dict(), allow_nan=False)
    huge = column([1.7e308, 1.7e308])
    assert huge.mean is None
    assert huge.std is None
    assert huge.max == 1.7e308


# --------------------------------------------------------------------------- batch splits


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(16, 3000), st.integers(16, 3000))
@example(1, 3000)
def test_batch_boundaries_do_not_change_the_profile(first: int, second: int) -> None:
    rng = np.random.default_rng(3)
    rows = 3000
    table = pa.table(
        {
            "f": pa.array(np.where(rng.random(rows) < 0.05, np.nan, rng.normal(size=rows))),
            "i": pa.array(rng.integers(-50, 50, rows)),
            "s": pa.array([f"v{n}" for n in rng.integers(0, 300, rows)]),
            "b": pa.array(rng.random(rows) < 0.4),
            "t": pa.array(rng.integers(0, 10**6, rows), pa.timestamp("s")),
        }
    )
    a, b = profile(table, first), profile(table, second)
    for name in table.column_names:
        x, y = a.columns[name], b.columns[name]
        for field in ("count", "nulls", "distinct", "min", "max", "nan_count", "true_count"):
            assert getattr(x, field) == getattr(y, field), (name, field)
        assert (x.top_values, x.category_counts) == (y.top_values, y.category_counts)
        assert (x.min_length, x.max_length) == (y.min_length, y.max_length)
        for field in ("mean", "std", "mean_length"):
            u, v = getattr(x, field), getattr(y, field)
            assert (u is None and v is None) or math.isclose(u, v, rel_tol=1e-12), (name, field)


# --------------------------------------------------------------------------- edge cases


def every_kind_table(rows: list[dict[str, object]]) -> pa.Table:
    schema = pa.schema(
        [
            ("f", pa.float64()),
            ("i", pa.int32()),
            ("s", pa.string()),
            ("b", pa.bool_()),
            ("t", pa.timestamp("us")),
            ("l", pa.list_(pa.int64())),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def test_empty_dataset_gives_a_valid_profile() -> None:
    result = profile(every_kind_table([]))
    assert result.rows == 0
    assert all(c.count == 0 and c.nulls == 0 for c in result.columns.values())
    assert result.columns["s"].top_values == []
    assert result.columns["s"].distinct == 0
    assert result.columns["f"].mean is None
    assert result.columns["f"].distinct == 0
    assert DatasetProfile.from_dict(json.loads(as_json(result))) == result


def test_all_null_columns_give_valid_profiles() -> None:
    result = profile(every_kind_table([{}] * 5))
    for c in result.columns.values():
        assert (c.count, c.nulls) == (0, 5)
    assert result.columns["b"].mean is None
    assert result.columns["b"].min is None
    as_json(result)


def test_a_single_row() -> None:
    row = {"f": 2.5, "i": 7, "s": "x", "b": True, "t": dt.datetime(2024, 1, 2), "l": [1]}
    result = profile(every_kind_table([row]))
    f = result.columns["f"]
    assert (f.min, f.max, f.mean, f.std, f.quantiles["0.5"]) == (2.5, 2.5, 2.5, None, 2.5)
    assert f.histogram == {"edges": [2.5, 2.5], "counts": [1]}
    assert result.columns["s"].top_values == [["x", 1]]
    assert result.columns["t"].min == "2024-01-02T00:00:00.000000"
    assert DatasetProfile.from_dict(json.loads(as_json(result))) == result


def test_a_constant_column() -> None:
    result = column([4] * 1000)
    assert (result.min, result.max, result.mean, result.std, result.distinct) == (4, 4, 4.0, 0.0, 1)
    assert result.histogram == {"edges": [4, 4], "counts": [1000]}


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("arrow_type", "values", "kind", "low", "high"),
    [
        (pa.int8(), [-3, 5, None], "numeric", -3, 5),
        (pa.uint64(), [2**64 - 1, 0], "numeric", 0, 2**64 - 1),
        (pa.float16(), [1.5, -2.0], "numeric", -2.0, 1.5),
        (pa.float32(), [0.25, 8.0], "numeric", 0.25, 8.0),
        (
            pa.decimal128(5, 2),
            [decimal.Decimal("1.25"), decimal.Decimal("-3.50")],
            "numeric",
            -3.5,
            1.25,
        ),
        (pa.decimal256(40, 0), [decimal.Decimal(10**30)], "numeric", 1e30, 1e30),
        (pa.duration("ms"), [dt.timedelta(seconds=1), dt.timedelta(0)], "numeric", 0, 1000),
        (pa.bool_(), [True, False, True, None], "boolean", False, True),
        (
            pa.date32(),
            [dt.date(2020, 1, 31), dt.date(1999, 12, 1)],
            "temporal",
            "1999-12-01",
            "2020-01-31",
        ),
        (pa.date64(), [dt.date(2021, 6, 1)], "temporal", "2021-06-01", "2021-06-01"),
        (
            pa.timestamp("ns", tz="Europe/Paris"),
            [pd.Timestamp("2024-03-01 12:00:00.123456789", tz="UTC")],
            "temporal",
            "2024-03-01T12:00:00.123456789Z",
            "2024-03-01T12:00:00.123456789Z",
        ),
        (
            pa.timestamp("s"),
            [dt.datetime(2000, 1, 1, 8, 30)],
            "temporal",
            "2000-01-01T08:30:00",
            "2000-01-01T08:30:00",
        ),
        (pa.time32("ms"), [dt.time(13, 5, 9, 250000)], "temporal", "13:05:09.250", "13:05:09.250"),
        (
            pa.time64("ns"),
            [dt.time(0, 0, 1)],
            "temporal",
            "00:00:01.000000000",
            "00:00:01.000000000",
        ),
        (pa.time32("s"), [dt.time(23, 59, 59)], "temporal", "23:59:59", "23:59:59"),
    ],
)
def test_types_kinds_and_ranges(
    arrow_type: pa.DataType, values: list[object], kind: str, low: object, high: object
) -> None:
    result = column(values, arrow_type)
    assert (result.kind, result.type, result.min, result.max) == (kind, str(arrow_type), low, high)
    assert result.count == sum(v is not None for v in values)
    as_json(profile(pa.table({"c": pa.array(values, arrow_type)})))


@pytest.mark.parametrize(
    "array",
    [
        pa.array(["b", "a", "b", None, ""], pa.string()),
        pa.array(["b", "a", "b", None, ""], pa.large_string()),
        pa.array(["b", "a", "b", None, ""], pa.string_view()),
        pa.array(["b", "a", "b", None, ""]).dictionary_encode(),
    ],
    ids=["string", "large_string", "string_view", "dictionary"],
)
def test_text_columns_are_categorical(array: pa.Array) -> None:
    result = column(array, batch_rows=2)
    assert (result.kind, result.count, result.nulls, result.distinct) == ("categorical", 4, 1, 3)
    assert result.top_values == [["b", 2], ["", 1], ["a", 1]]
    assert result.category_counts == {"b": 2, "": 1, "a": 1}
    assert (result.other_count, result.top_values_error, result.high_cardinality) == (0, 0, False)
    assert (result.min_length, result.max_length, result.mean_length) == (0, 1, 0.75)


def test_text_lengths_count_characters_not_bytes() -> None:
    result = column(["héllo", "日本"])
    assert (result.min_length, result.max_length) == (2, 5)


def test_a_dictionary_of_numbers_is_profiled_as_numbers() -> None:
    result = column(pa.array([3, 1, 3, None]).dictionary_encode())
    assert (result.kind, result.min, result.max) == ("numeric", 1, 3)
    assert (result.distinct, result.nulls) == (2, 1)


def test_booleans_count_true_and_false() -> None:
    result = column([True, False, True, None])
    assert (result.true_count, result.false_count, result.distinct) == (2, 1, 2)
    assert result.mean == pytest.approx(2 / 3)
    assert result.category_counts == {"false": 1, "true": 2}


@pytest.mark.parametrize(
    "array",
    [
        pa.array([b"\x00", None], pa.binary()),
        pa.array([[1, 2], None, []]),
        pa.array([{"a": 1}, None]),
        pa.array([None, None], pa.null()),
    ],
    ids=["binary", "list", "struct", "null"],
)
def test_other_types_get_counts_only(array: pa.Array) -> None:
    result = column(array)
    assert result.kind == "other"
    assert (result.count, result.nulls) == (len(array) - array.null_count, array.null_count)
    assert result.distinct is None
    assert result.min is None
    assert result.top_values is None


# --------------------------------------------------------------------------- cardinality


def test_distinct_is_exact_up_to_the_cap_and_estimated_past_it() -> None:
    at_cap = column(np.arange(1000) % 500, distinct_cap=500)
    assert (at_cap.distinct, at_cap.distinct_is_exact) == (500, True)
    values = np.random.default_rng(4).integers(0, 10**12, 300_000)
    past = column(values, batch_rows=65_536)
    assert past.distinct_is_exact is False
    assert abs(past.distinct - len(np.unique(values))) <= 0.05 * len(np.unique(values))


def test_high_cardinality_text_flips_to_approximate_distinct() -> None:
    rng = np.random.default_rng(5)
    ids = pa.array([f"user-{n}" for n in rng.integers(0, 10**9, 250_000)])
    result = column(ids, batch_rows=65_536)
    truth = len(set(ids.to_pylist()))
    assert result.high_cardinality
    assert result.category_counts is None
    assert result.distinct_is_exact is False
    assert abs(result.distinct - truth) <= 0.05 * truth


def test_text_between_the_category_cap_and_the_distinct_cap_is_counted_exactly() -> None:
    values = pa.array([f"v{n % 3000}" for n in range(9000)])
    result = column(values, batch_rows=500, category_cap=100)
    assert result.high_cardinality
    assert result.category_counts is None
    assert (result.distinct, result.distinct_is_exact) == (3000, True)


def test_top_values_past_the_category_cap_are_bounded_from_below() -> None:
    rng = np.random.default_rng(6)
    heavy = [f"heavy{k}" for k in range(5)]
    tail = [f"tail{n}" for n in rng.integers(0, 50_000, 40_000)]
    values = heavy * 3000 + tail
    rng.shuffle(values)
    result = column(pa.array(values), batch_rows=4096, category_cap=200)
    truth = pd.Series(values).value_counts()
    assert result.high_cardinality
    assert result.top_values_error > 0
    assert sorted(v for v, _ in result.top_values[:5]) == heavy
    for value, count in result.top_values:
        assert count <= truth[value] <= count + result.top_values_error
    assert result.other_count == len(values) - sum(c for _, c in result.top_values)


def test_category_counts_hold_every_category_up_to_the_cap() -> None:
    values = [f"c{n % 150}" for n in range(3000)]
    result = column(values, batch_rows=128, category_cap=150)
    assert not result.high_cardinality
    # Most frequent first, ties by value.
    assert list(result.category_counts) == sorted(f"c{n}" for n in range(150))
    assert set(result.category_counts.values()) == {20}
    assert len(result.top_values) == 20
    assert result.other_count == 3000 - 20 * 20


def test_string_hashes_do_not_depend_on_layout() -> None:
    words = ["", "a", "exactly8", "longer than eight bytes", "日本語", "x" * 100] * 3
    keys = _string_keys(pa.array(words))
    assert (_string_keys(pa.array(words, pa.large_string())) == keys).all()
    assert (_string_keys(pa.array(words[5:])) == keys[5:]).all()
    assert (_string_keys(pa.array(words).slice(5)) == keys[5:]).all()
    assert len(set(keys.tolist())) == 6


# --------------------------------------------------------------------------- serialisation


def test_to_dict_round_trips_through_json() -> None:
    rng = np.random.default_rng(8)
    table = pa.table(
        {
            "x": rng.normal(size=5000),
            "n": rng.integers(0, 9, 5000),
            "s": pa.array([f"k{n}" for n in rng.integers(0, 40, 5000)]),
            "b": rng.random(5000) < 0.5,
            "d": pa.array(rng.integers(0, 20000, 5000), pa.int32()).cast(pa.date32()),
        }
    )
    result = profile(table)
    restored = DatasetProfile.from_dict(json.loads(as_json(result)))
    assert restored == result
    assert restored.columns["x"].quantile(0.5) == result.columns["x"].quantile(0.5)
    slim = result.to_dict(include_sketches=False)
    assert "sketch" not in slim["columns"]["x"]
    assert DatasetProfile.from_dict(slim).columns["x"].sketch is None


def test_from_dict_refuses_an_unknown_format() -> None:
    with pytest.raises(InvalidInput, match="format"):
        DatasetProfile.from_dict({"format": 99, "rows": 0, "columns": {}})


# --------------------------------------------------------------------------- misuse


def test_a_batch_of_another_schema_is_refused() -> None:
    profiler = Profiler(pa.schema([("a", pa.int64())]))
    with pytest.raises(InvalidInput, match="schema"):
        profiler.update(pa.record_batch({"a": pa.array(["x"])}))


def test_a_schema_naming_a_column_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="twice"):
        Profiler(pa.schema([("a", pa.int64()), ("a", pa.string())]))


@pytest.mark.parametrize("option", ["kll_k", "distinct_cap", "category_cap", "full_rate_values"])
def test_limits_must_be_positive(option: str) -> None:
    with pytest.raises(InvalidInput, match=option):
        Profiler(pa.schema([("a", pa.int64())]), **{option: 0})
