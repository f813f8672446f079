"""Per-column statistics of a dataset, gathered in one streaming pass.

A :class:`Profiler` sees each Arrow record batch once, in order, and keeps
state whose size does not grow with the number of rows; :meth:`Profiler.finish`
turns it into a :class:`DatasetProfile` of frozen :class:`ColumnProfile`\\ s.
Every batch step is vectorised (Arrow compute or numpy): no Python loop visits
single values; the one loop steps through the 8-byte words of a batch's
longest string when text is hashed.

Kinds of column
---------------
numeric      integers, floats, decimals (through a float64 cast), durations
categorical  string, large_string, string_view, and dictionaries of those
boolean      bool
temporal     date, timestamp, time (min and max as ISO 8601 text)
other        binary, nested, null: ``count`` and ``nulls`` only

A dictionary column of any other value type is profiled as its value type.

What is exact and what is estimated
-----------------------------------
- count (non-null values, NaN included), nulls, nan_count, inf_count, min,
  max, true/false counts, string lengths: exact.
- mean, std (sample, ddof=1): over the finite values, exact up to float64
  rounding; per-batch moments are merged with Chan's formula, so the split into
  batches changes them only in the last bits. NaN and +-inf are counted apart
  and left out of min, max, mean, std, quantiles and histogram.
- distinct: exact up to ``distinct_cap`` values (100,000), then a HyperLogLog
  estimate (2**12 registers, standard error 1.6%) and ``distinct_is_exact`` is
  false. Past ``category_cap`` categories, text is counted by a 64-bit hash
  (needed for HyperLogLog anyway, and cheaper to sort than Arrow's
  ``value_counts`` is on text), so an exact count there can miss by a
  collision, with odds below 1e-9 at the cap. HyperLogLog is done here in numpy because datasketches' ``hll_sketch``
  only takes one value a call (60 ns each, 4 ms a 64k-row batch).
- quantiles, histogram: from a KLL sketch (datasketches ``kll_doubles_sketch``,
  k=200: rank error at most 1.33% with 99% confidence). The first
  ``full_rate_values`` finite values of a column (2**20) all go into the
  sketch; past them each batch is sampled at rate 2**-level, the level rising
  by one each time the values seen double, and each level's sketch is counted
  2**level times at the end. This keeps the sketch update, the costliest step
  (30 ns a value), to about ``full_rate_values / 2`` values per doubling; the
  sampling adds a rank error of about 0.15% (99%) to the sketch's own.
  Histogram counts are ranks times the exact finite count, so they are exact
  while the sketch is (fewer than about k values) and estimates beyond.
- top values: exact while a column has at most ``category_cap`` categories
  (10,000; ``category_counts`` then holds them all). Beyond, the column is
  ``high_cardinality`` and the profiler keeps the 1,000 most frequent
  candidates, truncating each batch's counts and the merged table to them; the
  largest count dropped each time is added to ``top_values_error``, an upper
  bound on how far any reported count (or an unreported value's count) lies
  below the true one.

Reference for drift
-------------------
A numeric column carries its KLL sketch (``sketch``: the serialized bytes;
base64 in :meth:`ColumnProfile.to_dict`, 2-10 KB a column), from which
:meth:`ColumnProfile.quantile`, :meth:`ColumnProfile.cdf` and
:attr:`ColumnProfile.kll` answer KS, Wasserstein and binned tests. A
categorical column at or under the category cap carries ``category_counts``,
every category with its count; a boolean column carries
``{"false": n, "true": m}``. The sketch's ``n`` estimates the finite count (it
is exact below ``full_rate_values``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from shipyard.errors import InvalidInput

__all__ = [
    "CATEGORY_CAP",
    "DISTINCT_CAP",
    "FULL_RATE_VALUES",
    "KLL_K",
    "QUANTILES",
    "ColumnProfile",
    "DatasetProfile",
    "Profiler",
]

Kind = Literal["numeric", "categorical", "boolean", "temporal", "other"]

#: The quantiles every numeric profile reports, keyed by ``str(q)``.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
TOP_VALUES = 20
KLL_K = 200
DISTINCT_CAP = 100_000
CATEGORY_CAP = 10_000
FULL_RATE_VALUES = 1 << 20
#: Candidates kept for the top values of a high-cardinality column.
TOP_CANDIDATES = 1_000
#: Version of the layout :meth:`DatasetProfile.to_dict` writes.
PROFILE_FORMAT = 1

_HLL_LG_K = 12
_U64 = np.uint64


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column; fields that do not apply to its kind are None."""

    name: str
    type: str  # the Arrow type, as str(pa.DataType)
    kind: Kind
    count: int  # non-null values, NaN included
    nulls: int
    distinct: int | None = None  # None for kind "other"
    distinct_is_exact: bool = True
    min: Any = None  # number, bool, or ISO text for temporal columns
    max: Any = None
    mean: float | None = None  # numeric: finite values; boolean: share of true
    std: float | None = None  # sample standard deviation (ddof=1), None under 2 values
    quantiles: dict[str, float] | None = None
    histogram: dict[str, list[Any]] | None = None  # {"edges": [..], "counts": [..]}
    nan_count: int | None = None  # numeric only
    inf_count: int | None = None
    top_values: list[list[Any]] | None = None  # [[value, count], ...], most frequent first
    other_count: int | None = None  # non-null values outside top_values
    top_values_error: int | None = None  # counts may be this much too low; 0 when exact
    high_cardinality: bool = False  # more categories than the category cap
    category_counts: dict[str, int] | None = None  # every category, when not high-cardinality
    min_length: int | None = None  # text, in characters
    max_length: int | None = None
    mean_length: float | None = None
    true_count: int | None = None
    false_count: int | None = None
    sketch: bytes | None = field(default=None, repr=False)  # serialized kll_doubles_sketch

    @cached_property
    def kll(self) -> kll_doubles_sketch:
        """The column's KLL sketch, deserialized once."""
        if self.sketch is None:
            raise InvalidInput(
                f"Column {self.name!r} ({self.kind}, {self.type}) has no quantile sketch.",
                hint="Only numeric columns with at least one finite value have one.",
            )
        return kll_doubles_sketch.deserialize(self.sketch)

    def quantile(self, q: float) -> float:
        """The smallest value whose estimated :meth:`cdf` reaches ``q`` (0 <= q <= 1)."""
        if not 0.0 <= q <= 1.0:
            raise InvalidInput(f"A quantile rank must lie in [0, 1], got {q!r}.")
        return float(self.kll.get_quantile(q, inclusive=True))

    def cdf(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """The estimated share of finite values <= ``x``; an array for an array."""
        if np.ndim(x) == 0:
            return float(self.kll.get_rank(float(x), inclusive=True))
        points = np.asarray(x, dtype=np.float64)
        # get_cdf wants unique increasing split points: ask once per distinct point.
        unique, inverse = np.unique(points, return_inverse=True)
        ranks = np.asarray(self.kll.get_cdf(unique.tolist(), inclusive=True)[:-1])
        return ranks[inverse].reshape(points.shape)

    def to_dict(self, *, include_sketch: bool = True) -> dict[str, Any]:
        """A JSON-ready dict: no NaN or infinity; the sketch as base64 text."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        sketch = out.pop("sketch")
        if include_sketch and sketch is not None:
            out["sketch"] = base64.b64encode(sketch).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """The profile :meth:`to_dict` wrote."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("sketch") is not None:
            values["sketch"] = base64.b64decode(values["sketch"])
        return cls(**values)


@dataclass(frozen=True)
class DatasetProfile:
    """Row count and per-column statistics of a dataset, columns in schema order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self, *, include_sketches: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps(..., allow_nan=False)`` accepts it)."""
        return {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "columns": {
                name: column.to_dict(include_sketch=include_sketches)
                for name, column in self.columns.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        """The profile :meth:`to_dict` wrote."""
        if data.get("format") != PROFILE_FORMAT:
            raise InvalidInput(
                f"Expected a dataset profile of format {PROFILE_FORMAT}, got format "
                f"{data.get('format')!r}.",
                hint="Read it with the Shipyard version that wrote it, or profile the data again.",
            )
        columns = {name: ColumnProfile.from_dict(col) for name, col in data["columns"].items()}
        return cls(rows=data["rows"], columns=columns)


# --------------------------------------------------------------------------- profiler


@dataclass(frozen=True)
class _Limits:
    kll_k: int
    distinct_cap: int
    category_cap: int
    full_rate_values: int

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(
                    f"The profiler's {name} must be a positive integer, got {value!r}."
                )


class Profiler:
    """Profile a stream of record batches of one schema; see the module docstring.

    ``update`` is called once per batch, in order; ``finish`` once at the end.
    Memory per column is bounded by the caps, not by the row count.
    """

    def __init__(
        self,
        schema: pa.Schema,
        *,
        kll_k: int = KLL_K,
        distinct_cap: int = DISTINCT_CAP,
        category_cap: int = CATEGORY_CAP,
        full_rate_values: int = FULL_RATE_VALUES,
        seed: int = 0,
    ) -> None:
        names = schema.names
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InvalidInput(
                f"Cannot profile a schema that names a column twice: {repeated}.",
                hint="Rename the columns so each name appears once.",
            )
        limits = _Limits(kll_k, distinct_cap, category_cap, full_rate_values)
        self._schema = schema
        self._rows = 0
        self._columns = [
            _column_profiler(f, limits, np.random.default_rng((seed, i)))
            for i, f in enumerate(schema)
        ]

    def update(self, batch: pa.RecordBatch) -> None:
        """Add one batch; its schema must equal the profiler's (metadata aside)."""
        if not batch.schema.equals(self._schema):
            raise InvalidInput(
                f"Expected a batch with schema {_schema_text(self._schema)}, got "
                f"{_schema_text(batch.schema)}.",
                hint="Cast each batch to the schema the profiler was made with.",
            )
        self._rows += batch.num_rows
        for column, values in zip(self._columns, batch.columns, strict=True):
            column.update(values)

    def finish(self) -> DatasetProfile:
        """The profile of every row seen so far."""
        columns = [column.finish() for column in self._columns]
        return DatasetProfile(rows=self._rows, columns={c.name: c for c in columns})


def _schema_text(schema: pa.Schema) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


def _kind(arrow_type: pa.DataType) -> Kind:
    t = pa.types
    if t.is_dictionary(arrow_type):
        return _kind(arrow_type.value_type)
    if t.is_boolean(arrow_type):
        return "boolean"
    if (
        t.is_integer(arrow_type)
        or t.is_floating(arrow_type)
        or t.is_decimal(arrow_type)
        or t.is_duration(arrow_type)
    ):
        return "numeric"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return "categorical"
    if t.is_date(arrow_type) or t.is_timestamp(arrow_type) or t.is_time(arrow_type):
        return "temporal"
    return "other"


def _column_profiler(f: pa.Field, limits: _Limits, rng: np.random.Generator) -> _Column:
    kind = _kind(f.type)
    if kind == "numeric":
        return _NumericColumn(f, limits, rng)
    if kind == "categorical":
        return _CategoricalColumn(f, limits)
    if kind == "temporal":
        return _TemporalColumn(f, limits)
    if kind == "boolean":
        return _BooleanColumn(f)
    return _Column(f)


# --------------------------------------------------------------------------- columns


class _Column:
    """Counts of values and nulls; the kinds below add their statistics."""

    kind: Kind = "other"

    def __init__(self, f: pa.Field) -> None:
        self.name = f.name
        self.type = f.type
        self.value_type = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        self.count = 0
        self.nulls = 0

    def update(self, values: pa.Array) -> None:
        non_null = len(values) - values.null_count
        self.nulls += values.null_count
        self.count += non_null
        if self.kind == "other" or non_null == 0:
            return
        if pa.types.is_string_view(values.type):
            # Few Arrow kernels (not even drop_null) take views yet.
            values = values.cast(pa.large_string())
        if values.null_count:
            values = values.drop_null()
        # Categorical columns count a dictionary by its indices; others need plain values.
        if pa.types.is_dictionary(values.type) and self.kind != "categorical":
            values = values.dictionary_decode()
        self._update(values)

    def _update(self, values: pa.Array) -> None:
        """Add non-null values (at least one)."""

    def finish(self) -> ColumnProfile:
        return ColumnProfile(
            name=self.name,
            type=str(self.type),
            kind=self.kind,
            count=self.count,
            nulls=self.nulls,
            **self._stats(),
        )

    def _stats(self) -> dict[str, Any]:
        return {}


class _NumericColumn(_Column):
    kind: Kind = "numeric"

    def __init__(self, f: pa.Field, limits: _Limits, rng: np.random.Generator) -> None:
        super().__init__(f)
        self.nan_count = 0
        self.inf_count = 0
        self.low: Any = None
        self.high: Any = None
        self.moments = _Moments()
        self.quantiles = _Quantiles(limits.kll_k, limits.full_rate_values, rng)
        self.distinct = _Distinct(limits.distinct_cap)

    def _update(self, values: pa.Array) -> None:
        numbers = _numbers(values)
        if numbers.dtype.kind == "f":
            numbers, nans = _without(numbers, np.isnan(numbers))
            # Adding 0.0 turns -0.0 into 0.0, so the two count as one value.
            self.distinct.add((numbers + 0.0).view(_U64))
            finite, infinities = _without(numbers, np.isinf(numbers))
            self.nan_count += nans
            self.inf_count += infinities
        else:
            self.distinct.add(numbers.view(_U64))
            finite = numbers
        if len(finite) == 0:
            return
        low, high = finite.min().item(), finite.max().item()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        floats = finite.astype(np.float64, copy=False)
        self.moments.add(floats)
        self.quantiles.add(floats)

    def _stats(self) -> dict[str, Any]:
        distinct, exact = self.distinct.result()
        stats: dict[str, Any] = {
            "distinct": distinct,
            "distinct_is_exact": exact,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "min": self.low,
            "max": self.high,
            "mean": _finite_or_none(self.moments.mean) if self.moments.n else None,
            "std": _finite_or_none(self.moments.std()),
        }
        sketch = self.quantiles.sketch()
        if sketch is not None:
            values = sketch.get_quantiles(QUANTILES, inclusive=True)
            stats["quantiles"] = {str(q): float(v) for q, v in zip(QUANTILES, values, strict=True)}
            stats["histogram"] = _histogram(sketch, self.low, self.high, self.moments.n)
            stats["sketch"] = sketch.serialize()
        return stats


def _numbers(values: pa.Array) -> np.ndarray:
    """Non-null values as numpy: int64 or uint64 for integers, float64 otherwise."""
    arrow_type = values.type
    if pa.types.is_decimal(arrow_type):
        return pc.cast(values, pa.float64()).to_numpy()
    if pa.types.is_duration(arrow_type):
        return values.view(pa.int64()).to_numpy()
    numbers = values.to_numpy()
    if numbers.dtype.kind == "f":
        return numbers.astype(np.float64, copy=False)
    return numbers if numbers.dtype in (np.int64, np.uint64) else numbers.astype(np.int64)


def _without(numbers: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The numbers outside ``mask``, and how many were in it (no copy when none)."""
    dropped = int(np.count_nonzero(mask))
    return (numbers[~mask] if dropped else numbers), dropped


def _histogram(sketch: kll_doubles_sketch, low: float, high: float, total: int) -> dict[str, list]:
    """About HISTOGRAM_BINS equal-width bins over [low, high]; counts from the sketch's ranks.

    Bins are [left, right), the last one closed. Counts are the sketch's ranks at
    the edges times ``total``, rounded, so they always sum to ``total``.
    """
    if low == high:
        return {"edges": [low, high], "counts": [total]}
    steps = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)[1:-1]
    # low*(1-t) + high*t cannot overflow where low + (high-low)*t can.
    inner = np.unique(low * (1.0 - steps) + high * steps)
    inner = inner[(inner > low) & (inner < high)]
    ranks = np.asarray(sketch.get_cdf(inner.tolist())[:-1])
    cumulative = np.rint(ranks * total).astype(np.int64)
    counts = np.diff(np.concatenate(([0], cumulative, [total])))
    return {"edges": [low, *inner.tolist(), high], "counts": counts.tolist()}


class _CategoricalColumn(_Column):
    kind: Kind = "categorical"

    def __init__(self, f: pa.Field, limits: _Limits) -> None:
        super().__init__(f)
        self.categories = _CategoryCounts(limits.category_cap, on_overflow=self._count_distinct)
        # Fed only past the category cap; below it the categories are the distinct values.
        self.distinct = _Distinct(limits.distinct_cap)
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.total_length = 0

    def _update(self, values: pa.Array) -> None:
        if self.categories.overflowed:
            self._update_by_hash(values)
        else:
            self._update_exact(values)

    def _update_exact(self, values: pa.Array) -> None:
        counted = pc.value_counts(values)  # a dictionary array is counted by its indices
        uniques, counts = _plain_strings(counted.field(0)), counted.field(1).to_numpy()
        self._add_lengths(pc.utf8_length(uniques).to_numpy(), counts)
        self.categories.add(uniques, counts)

    def _update_by_hash(self, values: pa.Array) -> None:
        """Past the category cap, count by 64-bit hash: the hash is needed for the
        distinct count anyway, and sorting hashes is cheaper than Arrow's value_counts."""
        strings = _plain_strings(values)
        keys = _string_keys(strings)
        self.distinct.add(keys)
        self._add_lengths(pc.utf8_length(strings).to_numpy())
        rows, counts = _runs(keys)
        top, dropped = _top_indices(counts, TOP_CANDIDATES)
        self.categories.add(strings.take(rows[top]), counts[top], dropped=dropped)

    def _count_distinct(self, every_value: pa.Array) -> None:
        """At the category cap, start counting distinct values by hash, from all seen so far."""
        self.distinct.add(_string_keys(every_value))

    def _add_lengths(self, lengths: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Lengths of each value, or of each distinct value seen ``counts`` times."""
        low, high = int(lengths.min()), int(lengths.max())
        self.min_length = low if self.min_length is None else min(self.min_length, low)
        self.max_length = high if self.max_length is None else max(self.max_length, high)
        lengths = lengths.astype(np.int64)
        self.total_length += int(lengths.sum() if counts is None else np.dot(lengths, counts))

    def _stats(self) -> dict[str, Any]:
        top, error = self.categories.top(TOP_VALUES)
        if self.categories.overflowed:
            distinct, exact = self.distinct.result()
        else:
            distinct, exact = self.categories.size(), True
        return {
            "distinct": distinct,
            "distinct_is_exact": exact,
            "top_values": top,
            "other_count": self.count - sum(count for _, count in top),
            "top_values_error": error,
            "high_cardinality": self.categories.overflowed,
            "category_counts": self.categories.every_count(),
            "min_length": self.min_length,
            "max_length": self.max_length,
            "mean_length": self.total_length / self.count if self.count else None,
        }


class _BooleanColumn(_Column):
    kind: Kind = "boolean"

    def __init__(self, f: pa.Field) -> None:
        super().__init__(f)
        self.true_count = 0

    def _update(self, values: pa.Array) -> None:
        self.true_count += pc.sum(values).as_py()

    def _stats(self) -> dict[str, Any]:
        true, false = self.true_count, self.count - self.true_count
        seen = [value for value, n in ((False, false), (True, true)) if n]
        return {
            "distinct": len(seen),
            "true_count": true,
            "false_count": false,
            "min": seen[0] if seen else None,
            "max": seen[-1] if seen else None,
            "mean": true / self.count if self.count else None,
            "category_counts": {"false": false, "true": true},
        }


class _TemporalColumn(_Column):
    """Dates, timestamps and times, handled as the integers Arrow stores them as."""

    kind: Kind = "temporal"

    def __init__(self, f: pa.Field, limits: _Limits) -> None:
        super().__init__(f)
        self.distinct = _Distinct(limits.distinct_cap)
        self.low: int | None = None
        self.high: int | None = None

    def _update(self, values: pa.Array) -> None:
        storage = pa.int32() if values.type.bit_width == 32 else pa.int64()
        ticks = values.view(storage).to_numpy().astype(np.int64, copy=False)
        self.distinct.add(ticks.view(_U64))
        low, high = int(ticks.min()), int(ticks.max())
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _stats(self) -> dict[str, Any]:
        distinct, exact = self.distinct.result()
        return {
            "distinct": distinct,
            "distinct_is_exact": exact,
            "min": None if self.low is None else _iso(self.value_type, self.low),
            "max": None if self.high is None else _iso(self.value_type, self.high),
        }


def _iso(arrow_type: pa.DataType, ticks: int) -> str:
    """ISO 8601 text for a date, timestamp (UTC with Z when zoned) or time value."""
    if pa.types.is_timestamp(arrow_type):
        zone = "UTC" if arrow_type.tz else "naive"
        return str(np.datetime_as_string(np.datetime64(ticks, arrow_type.unit), timezone=zone))
    if pa.types.is_date32(arrow_type):
        return str(np.datetime64(ticks, "D"))
    if pa.types.is_date64(arrow_type):
        return str(np.datetime64(ticks, "ms").astype("datetime64[D]"))
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[arrow_type.unit]
    seconds, fraction = divmod(ticks, per_second)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    digits = len(str(per_second)) - 1
    return f"{text}.{fraction:0{digits}d}" if digits else text


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --------------------------------------------------------------------------- accumulators


class _Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, x: np.ndarray) -> None:
        # Values near the float64 limit overflow the sums; finish reports None then.
        with np.errstate(over="ignore", invalid="ignore"):
            n_b = len(x)
            mean_b = float(x.mean())
            deviations = x - mean_b
            m2_b = float(np.einsum("i,i->", deviations, deviations))
            n = self.n + n_b
            delta = mean_b - self.mean
            self.mean += delta * (n_b / n)
            self.m2 += m2_b + delta * delta * (self.n * n_b / n)
        self.n = n

    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


class _Quantiles:
    """A KLL sketch fed every value up to ``full_rate`` values, then sampled by level.

    Level L (values seen in [full_rate * 2**(L-1), full_rate * 2**L)) keeps each
    batch's values at rate 2**-L, drawn with replacement, the sample size rounded
    at random so it is ``len / 2**L`` on average. Each level has its own sketch;
    :meth:`sketch` doubles level L's sketch L times (merging a sketch with its
    copy doubles every item's weight) before merging it into the result.
    """

    def __init__(self, k: int, full_rate: int, rng: np.random.Generator) -> None:
        self.k = k
        self.full_rate = full_rate
        self.rng = rng
        self.seen = 0
        self.by_level: dict[int, kll_doubles_sketch] = {}

    def add(self, x: np.ndarray) -> None:
        level = (self.seen // self.full_rate).bit_length()
        self.seen += len(x)
        if level:
            x = self._sample(x, level)
        if len(x):
            # The sketch refuses read-only arrays, as zero-copy views of Arrow data are.
            x = np.require(x, requirements="W")
            if level not in self.by_level:
                self.by_level[level] = kll_doubles_sketch(self.k)
            self.by_level[level].update(x)

    def _sample(self, x: np.ndarray, level: int) -> np.ndarray:
        size, remainder = divmod(len(x), 1 << level)
        size += int(self.rng.random() < remainder / (1 << level))
        return x[self.rng.integers(0, len(x), size)]

    def sketch(self) -> kll_doubles_sketch | None:
        if not self.by_level:
            return None
        result = kll_doubles_sketch(self.k)
        for level, sketch in sorted(self.by_level.items()):
            for _ in range(level):
                sketch = _doubled(sketch)
            result.merge(sketch)
        return result


def _doubled(sketch: kll_doubles_sketch) -> kll_doubles_sketch:
    copy = kll_doubles_sketch.deserialize(sketch.serialize())
    copy.merge(sketch)
    return copy


class _Distinct:
    """Distinct 64-bit keys: an exact set up to ``cap``, then HyperLogLog.

    Keys are the values' bits for numbers (a one-to-one map) and a hash for text.
    Each batch's keys are de-duplicated by sorting (numpy's SIMD sort beats a
    hash table here) and merged into the set once the pending ones pass ``cap``.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.known = np.empty(0, dtype=_U64)
        self.pending: list[np.ndarray] = []
        self.pending_size = 0
        self.hll: _Hll | None = None

    def add(self, keys: np.ndarray) -> None:
        if self.hll is not None:
            self.hll.add(_mix64(keys))
            return
        new = _sorted_unique(keys)
        self.pending.append(new)
        self.pending_size += len(new)
        if self.pending_size > self.cap:
            self._merge_pending()

    def _merge_pending(self) -> None:
        self.known = _sorted_unique(np.concatenate([self.known, *self.pending]))
        self.pending, self.pending_size = [], 0
        if len(self.known) > self.cap:
            self.hll = _Hll()
            self.hll.add(_mix64(self.known))
            self.known = np.empty(0, dtype=_U64)

    def result(self) -> tuple[int, bool]:
        """The distinct count and whether it is exact."""
        if self.hll is None:
            self._merge_pending()
        if self.hll is not None:
            return round(self.hll.estimate()), False
        return len(self.known), True


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    ordered = np.sort(keys)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


class _Hll:
    """HyperLogLog over well-mixed 64-bit hashes, 2**12 one-byte registers.

    The estimate is Ertl's improved raw estimator ("New cardinality estimation
    algorithms for HyperLogLog sketches", 2017), unbiased from 0 to far beyond
    2**50 without bias tables or a small-range switch.
    """

    p = _HLL_LG_K
    q = 64 - _HLL_LG_K

    def __init__(self) -> None:
        self.registers = np.zeros(1 << self.p, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        index = (hashes >> _U64(self.q)).view(np.int64)
        rest = hashes & _U64((1 << self.q) - 1)
        # rank = leading zeros of the q-bit rest, plus one; frexp's exponent is
        # floor(log2(rest)) + 1 (and 0 for rest == 0), exact since rest < 2**53.
        _, exponent = np.frexp(rest.astype(np.float64))
        np.maximum.at(self.registers, index, (self.q + 1 - exponent).astype(np.uint8))

    def estimate(self) -> float:
        m = float(1 << self.p)
        histogram = np.bincount(self.registers, minlength=self.q + 2)
        z = m * _hll_tau(1.0 - histogram[self.q + 1] / m)
        for k in range(self.q, 0, -1):
            z = 0.5 * (z + histogram[k])
        z += m * _hll_sigma(histogram[0] / m)
        return float(m * m / (2.0 * math.log(2.0) * z))


def _hll_sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous, z = z, z + x * y
        y += y
        if z == previous:
            return z


def _hll_tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        previous, z = z, z - (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


def _mix64(keys: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: one-to-one on 64-bit words, every output bit depends on every input bit."""
    x = keys ^ (keys >> _U64(30))
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


#: _TAIL[n] keeps the low n bytes of a little-endian word (n = 0..8).
_TAIL = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=_U64)


def _plain_strings(strings: pa.Array) -> pa.Array:
    """Dictionary-decoded text with offsets (a string_view array has none)."""
    if pa.types.is_dictionary(strings.type):
        strings = strings.dictionary_decode()
    if pa.types.is_string_view(strings.type):
        strings = strings.cast(pa.large_string())
    return strings


def _string_keys(strings: pa.Array) -> np.ndarray:
    """A 64-bit hash of each non-null string, read from the Arrow buffers 8 bytes at a time.

    The hash starts from the mixed byte length and folds in each little-endian
    8-byte word (the last one zero-padded) with ``h = mix(h ^ word)``. Strings
    are visited longest first, so those still being read form a prefix and each
    step is one gather and a few whole-array operations.
    """
    offset_type = np.int32 if pa.types.is_string(strings.type) else np.int64
    _, offset_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=offset_type)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1].astype(np.int64)
    # A slice of a larger array shares its buffers: copy only this slice's bytes.
    data = np.frombuffer(data_buffer or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets -= offsets[0]
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    # An unaligned little-endian word starting at every byte: words[i] = bytes i..i+7.
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts, lengths = offsets[:-1], np.diff(offsets)
    word_counts = (lengths + 7) >> 3
    order = None
    if len(lengths) and word_counts.min() != word_counts.max():
        longest_first = word_counts.max() - word_counts
        # A stable sort of 16-bit keys is a radix sort: far cheaper than one of int64.
        if longest_first.max() < 1 << 16:
            longest_first = longest_first.astype(np.uint16)
        order = np.argsort(longest_first, kind="stable")
        starts, lengths, word_counts = starts[order], lengths[order], word_counts[order]
    hashes = _mix64(lengths.astype(_U64))
    most = int(word_counts[0]) if len(lengths) else 0
    # reading[j]: how many strings have more than j words.
    reading = len(lengths) - np.searchsorted(word_counts[::-1], np.arange(most + 1), side="right")
    for j in range(most):
        n, last = int(reading[j]), int(reading[j + 1])
        word = words[starts[:n] + 8 * j]
        # Strings [last, n) end in this word: zero the bytes past their end.
        word[last:n] &= _TAIL[lengths[last:n] - 8 * j]
        hashes[:n] = _mix64(hashes[:n] ^ word)
    if order is None:
        return hashes
    unsorted = np.empty_like(hashes)
    unsorted[order] = hashes
    return unsorted


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct key: the index of one row holding it, and how many rows do."""
    order = np.argsort(keys)
    ordered = keys[order]
    firsts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return order[firsts], np.diff(np.append(firsts, len(keys)))


def _top_indices(counts: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Indices of the ``k`` largest counts, and the largest count left out (0 if none)."""
    if len(counts) <= k:
        return np.arange(len(counts)), 0
    # After the partition, positions past len-k-1 hold counts >= the one there,
    # and positions before it hold counts <= it: it is the largest one dropped.
    split = len(counts) - k - 1
    parted = np.argpartition(counts, split)
    return parted[split + 1 :], int(counts[parted[split]])


class _CategoryCounts:
    """Counts per category as an Arrow table, merged lazily with a group-by.

    Exact while there are at most ``cap`` categories. Past that, ``on_overflow``
    gets every category seen (before anything is dropped) and from then on each
    batch's counts and the merged table are cut to the TOP_CANDIDATES largest;
    ``error`` sums the largest count dropped at each cut (see the module docstring).
    """

    def __init__(self, cap: int, on_overflow: Callable[[pa.Array], None]) -> None:
        self.cap = cap
        self.on_overflow = on_overflow
        self.table: pa.Table | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.overflowed = False
        self.error = 0

    def add(self, values: pa.Array, counts: np.ndarray, dropped: int = 0) -> None:
        """Add distinct values with their counts; ``dropped``: the largest count the
        caller already left out of them."""
        self.error += dropped
        counted = pa.table({"value": values, "count": counts})
        if self.overflowed:
            counted = self._cut(counted)
        self.pending.append(counted)
        self.pending_rows += len(counted)
        if self.pending_rows > (TOP_CANDIDATES if self.overflowed else self.cap):
            self._merge_pending()

    def _merge_pending(self) -> None:
        tables = self.pending if self.table is None else [self.table, *self.pending]
        self.pending, self.pending_rows = [], 0
        if not tables:
            return
        merged = pa.concat_tables(tables).group_by("value").aggregate([("count", "sum")])
        merged = merged.rename_columns({"count_sum": "count"})
        if not self.overflowed and len(merged) > self.cap:
            self.overflowed = True
            self.on_overflow(merged["value"].combine_chunks())
        self.table = self._cut(merged) if self.overflowed else merged

    def _cut(self, counted: pa.Table) -> pa.Table:
        if len(counted) <= TOP_CANDIDATES:
            return counted
        top, dropped = _top_indices(counted["count"].to_numpy(), TOP_CANDIDATES)
        self.error += dropped
        return counted.take(top)

    def _ordered(self) -> pa.Table | None:
        self._merge_pending()
        if self.table is None:
            return None
        order = pc.sort_indices(self.table, [("count", "descending"), ("value", "ascending")])
        return self.table.take(order)

    def size(self) -> int:
        self._merge_pending()
        return 0 if self.table is None else len(self.table)

    def top(self, n: int) -> tuple[list[list[Any]], int]:
        """The ``n`` most frequent ``[value, count]`` pairs, and the count error bound."""
        ordered = self._ordered()
        if ordered is None:
            return [], 0
        head = ordered.slice(0, n)
        pairs = zip(head["value"].to_pylist(), head["count"].to_pylist(), strict=True)
        return [[value, count] for value, count in pairs], self.error

    def every_count(self) -> dict[str, int] | None:
        """Every category with its count, most frequent first; None past the cap."""
        if self.overflowed:
            return None
        ordered = self._ordered()
        if ordered is None:
            return {}
        return dict(zip(ordered["value"].to_pylist(), ordered["count"].to_pylist(), strict=True))
