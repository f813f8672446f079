"""``drift_report``: compare a current window with a reference, column by column.

The reference is prepared once (or given prepared, see ``_reference``); the
current data is read one column at a time (see ``_source``), each column
compared and dropped before the next is read, so memory holds the reference
plus about one current column; above ``TALLY_ROWS`` rows not even that: the
column is read in Arrow batches and tallied against the reference (see
``_tally``). A column that cannot be tested gets a status (see
:data:`shipyard.monitoring.STATUSES`) instead of an exception; only bad
arguments raise :class:`~shipyard.errors.InvalidInput`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.monitoring import _registry
from shipyard.monitoring._column import Column, parallel_map
from shipyard.monitoring._reference import Reference, streamed_reference
from shipyard.monitoring._report import ColumnDrift, DriftReport, Histogram
from shipyard.monitoring._source import open_table
from shipyard.monitoring._tally import (
    BATCH_ROWS,
    TALLY_ROWS,
    Tally,
    tally_categories,
    tally_numbers,
)

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = ["drift_report"]

#: Bars per numeric histogram in the HTML report; categories shown before "(other)".
HISTOGRAM_BINS = 20
HISTOGRAM_CATEGORIES = 20


def drift_report(
    reference: Any,
    current: Any,
    columns: Iterable[str] | None = None,
    tests: str | Mapping[str, str] | None = None,
    *,
    client: Client | None = None,
) -> DriftReport:
    """Test each column of ``current`` for drift from ``reference``.

    ``reference``: a prepared :class:`Reference`, or anything ``current`` may be.
    ``current``: a pandas DataFrame, a pyarrow Table or RecordBatchReader, a
    path to a CSV or Parquet file (or folder), or a dataset version
    ``"dataset:NAME@V"`` / ``"NAME@V"``. ``columns``: the columns to test
    (default: every column of the reference). ``tests``: ``"auto"`` (default),
    one test name for every column it can read (the others stay automatic), or
    a mapping column -> test name. ``client``: the store that dataset
    references are read from (default: the active run's, else the settings').
    """
    return compare(reference, current, columns, tests, client=client)


def compare(
    reference: Any,
    current: Any,
    columns: Iterable[str] | None = None,
    tests: str | Mapping[str, str] | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    client: Client | None = None,
) -> DriftReport:
    """:func:`drift_report`, plus ``thresholds``: column -> threshold overriding the test's."""
    names = _column_names(columns)
    chosen = _test_choice(tests)
    with (
        streamed_reference(reference, names, client=client) as prepared,
        open_table(current, role="current", client=client) as source,
    ):
        if names is None:
            names = prepared.names
        plan = _plan(prepared, names, chosen)
        for column in thresholds or {}:
            if column not in names:
                raise InvalidInput(f"A threshold names column {column!r}, which is not tested.")
        found = parallel_map(
            lambda name: _one_column(
                prepared, source, name, plan[name], (thresholds or {}).get(name)
            ),
            names,
        )
        results = dict(zip(names, found, strict=True))
        rows = source.rows
    return DriftReport(columns=results, reference_rows=prepared.rows, current_rows=rows)


def _column_names(columns: Iterable[str] | None) -> list[str] | None:
    if columns is None:
        return None
    names = [columns] if isinstance(columns, str) else list(columns)
    bad = [c for c in names if not isinstance(c, str)]
    if bad or not names:
        raise InvalidInput(
            f"columns must be a non-empty list of column names, got {columns!r}.",
            hint="Leave columns out to test every column of the reference.",
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"columns names {repeated} more than once.")
    return names


def _test_choice(tests: str | Mapping[str, str] | None) -> str | dict[str, str]:
    if tests is None:
        return _registry.AUTO
    if isinstance(tests, str):
        if tests != _registry.AUTO:
            _registry.get_test(tests)
        return tests
    if isinstance(tests, Mapping):
        for column, name in tests.items():
            if name != _registry.AUTO:
                try:
                    _registry.get_test(name)
                except InvalidInput as exc:
                    raise InvalidInput(
                        f"Unknown drift test {name!r} for column {column!r}.", hint=exc.hint
                    ) from exc
        return dict(tests)
    raise InvalidInput(
        f"tests must be a test name or a mapping column -> test name, got {type(tests).__name__}.",
        hint=f"Choose from {_registry.available_tests()} or 'auto'.",
    )


def _plan(reference: Reference, names: list[str], chosen: str | dict[str, str]) -> dict[str, str]:
    """Column -> test name or "auto", checked against the reference's column kinds."""
    if isinstance(chosen, dict):
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise InvalidInput(
                f"tests names column(s) {unknown} that are not tested; tested: {names}.",
                hint="Name columns of the reference (and of columns=, when given).",
            )
        plan = {name: chosen.get(name, _registry.AUTO) for name in names}
        for name, test_name in plan.items():
            if test_name != _registry.AUTO:
                _check_kind(reference, name, test_name)
        return plan
    if chosen == _registry.AUTO:
        return dict.fromkeys(names, _registry.AUTO)
    test = _registry.get_test(chosen)
    readable = [n for n in names if reference.kind(n) in test.kinds]
    if not readable:
        _check_kind(reference, names[0], chosen)
    return {n: chosen if n in readable else _registry.AUTO for n in names}


def _check_kind(reference: Reference, name: str, test_name: str) -> None:
    test = _registry.get_test(test_name)
    kind = reference.kind(name)
    if kind not in test.kinds:
        what = kind or f"of type {reference.skipped.get(name)}, which no test reads"
        suited = [
            n for n in _registry.available_tests() if kind in _registry.get_test(n).kinds
        ] or ["none"]
        raise InvalidInput(
            f"Drift test {test_name!r} reads {' or '.join(sorted(test.kinds))} columns; "
            f"column {name!r} is {what}.",
            hint=f"For this column choose one of {suited}, or 'auto'.",
        )


def _one_column(
    reference: Reference, source: Any, name: str, planned: str, threshold: float | None
) -> ColumnDrift:
    ref = reference.columns.get(name)
    if ref is None:
        return ColumnDrift(name, None, None, None, None, False, "unsupported_type")

    def untested(status: str, test_name: str) -> ColumnDrift:
        test = _registry.get_test(test_name)
        limit = test.threshold if threshold is None else threshold
        return ColumnDrift(name, test_name, None, None, limit, False, status, ref.kind)

    provisional = planned if planned != _registry.AUTO else _registry.auto_test(ref.kind, ref.count)
    if name not in source.names:
        return untested("missing_column", provisional)
    if source.rows == 0:
        return untested("empty", provisional)
    if source.kind(name) != ref.kind:
        return untested("type_mismatch", provisional)
    if ref.count == 0:
        return untested("reference_all_null", provisional)
    cur = _read_current(source, name, ref, provisional)
    test_name = (
        planned
        if planned != _registry.AUTO
        else _registry.auto_test(ref.kind, min(ref.count, cur.count))
    )
    test = _registry.get_test(test_name)
    limit = test.threshold if threshold is None else threshold
    if cur.count == 0:
        return untested("all_null", test_name)
    if min(ref.count, cur.count) < test.min_values:
        return untested("too_few_rows", test_name)
    compute = test.compute_tallied if isinstance(cur, Tally) else test.compute
    assert compute is not None  # _read_current tallies only for tests that read tallies
    statistic, p_value = compute(ref, cur)
    if ref.kind == "categorical" and set(cur.categories) - set(ref.categories):
        status = "unseen_categories"
    elif ref.constant:
        status = "constant"
    else:
        status = "ok"
    return ColumnDrift(
        name,
        test_name,
        float(statistic),
        None if p_value is None else float(p_value),
        limit,
        test.drifted(statistic, p_value, limit),
        status,
        ref.kind,
        _histogram(ref, cur),
    )


def _read_current(source: Any, name: str, ref: Column, planned: str) -> Column | Tally:
    """The current column: whole, or for a window over ``TALLY_ROWS`` rows read in batches
    and tallied (numeric) or counted (categorical), so memory does not grow with its rows."""
    if source.rows <= TALLY_ROWS:
        return source.column(name, ref.kind)
    batches = source.batches(name, BATCH_ROWS)
    if ref.kind == "categorical":
        return tally_categories(batches, name=name, arrow_type=str(source.type(name)))
    # "auto" settles on a test only once the window's values are counted: any it may pick.
    candidates = (
        {planned}
        if planned != _registry.AUTO
        else {_registry.auto_test(ref.kind, n) for n in (1, _registry.AUTO_THRESHOLD + 1)}
    )
    if any(_registry.get_test(t).compute_tallied is None for t in candidates):
        return source.column(name, ref.kind)  # a test that needs every value
    return tally_numbers(ref, batches)


def _histogram(ref: Column, cur: Column | Tally) -> Histogram:
    if isinstance(cur, Tally):
        return _tallied_histogram(ref, cur)
    if ref.kind == "numeric":
        low = min(ref.values[0], cur.values[0])
        high = max(ref.values[-1], cur.values[-1])
        edges = _bar_edges(low, high)
        return Histogram(_bar_labels(edges), _shares(ref.values, edges), _shares(cur.values, edges))
    categories = tuple(sorted(set(ref.categories) | set(cur.categories)))
    r = ref.category_counts(categories) / ref.count
    c = cur.category_counts(categories) / cur.count
    order = np.argsort(-(r + c), kind="stable")
    top, rest = order[:HISTOGRAM_CATEGORIES], order[HISTOGRAM_CATEGORIES:]
    labels = [categories[i] for i in top]
    ref_shares, cur_shares = r[top].tolist(), c[top].tolist()
    if len(rest):
        labels.append(f"(other {len(rest)})")
        ref_shares.append(float(r[rest].sum()))
        cur_shares.append(float(c[rest].sum()))
    return Histogram(labels, ref_shares, cur_shares)


def _tallied_histogram(ref: Column, cur: Tally) -> Histogram:
    """The reference's range in equal bars, plus a bar each for current values below and above it.

    A tally knows where current values sit only to the nearest reference values
    (each bucket's values are placed at their mean), so its bars span the
    reference's range, where that resolution is finest."""
    low, high = float(ref.values[0]), float(ref.values[-1])
    edges = _bar_edges(low, high)
    inner = cur.between[1:-1]
    # Bucket j's values sit in (grid[j-1], grid[j]): their mean (grid[j] when empty) is
    # sorted like the grid, so each bar's count is a difference of running sums.
    means = cur.grid[1:] - np.divide(
        cur.gap_sum[1:-1], inner, out=np.zeros(len(inner)), where=inner > 0
    )
    inside = edges[1:-1]
    counts = np.diff(
        np.concatenate(
            (
                [0],
                _running(cur.at, np.searchsorted(cur.grid, inside, side="left"))
                + _running(inner, np.searchsorted(means, inside, side="left")),
                [cur.at.sum() + inner.sum()],
            )
        )
    )
    labels = _bar_labels(edges)
    ref_shares = _shares(ref.values, edges)
    cur_shares = (counts / cur.count).tolist()
    below, above = int(cur.between[0]), int(cur.between[-1])
    if below:
        labels.insert(0, f"< {low:.4g}")
        ref_shares.insert(0, 0.0)
        cur_shares.insert(0, below / cur.count)
    if above:
        labels.append(f"> {high:.4g}")
        ref_shares.append(0.0)
        cur_shares.append(above / cur.count)
    return Histogram(labels, ref_shares, cur_shares)


def _running(counts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``counts[:end].sum()`` for each of ``ends``."""
    return np.concatenate(([0], np.cumsum(counts)))[ends]


def _bar_edges(low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, HISTOGRAM_BINS + 1) if high > low else np.array([low, low])


def _bar_labels(edges: np.ndarray) -> list[str]:
    return [f"{a:.4g} - {b:.4g}" for a, b in itertools.pairwise(edges)]


def _shares(ordered: np.ndarray, edges: np.ndarray) -> list[float]:
    """The share of the sorted ``ordered`` in each bar ``[edges[i], edges[i+1])``, the last
    bar closed."""
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")
    return (np.diff(np.concatenate(([0], cuts, [len(ordered)]))) / len(ordered)).tolist()
