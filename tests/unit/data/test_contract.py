"""Data contracts: YAML round trips and refusals, each expectation over a stream, inference."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data._contract import (
    ColumnRule,
    Contract,
    ContractChecker,
    Failure,
    ValidationReport,
    infer_contract,
)
from shipyard.errors import InvalidInput

# --------------------------------------------------------------------------- helpers


def check(contract: Contract, data: pa.Table, batch_rows: int = 3) -> ValidationReport:
    """Run the checker the way registration does: one pass over batches, with row offsets."""
    checker = ContractChecker(contract, data.schema)
    offset = 0
    for batch in data.to_batches(max_chunksize=batch_rows):
        checker.update(batch, offset)
        offset += batch.num_rows
    return checker.report()


def only(report: ValidationReport, expectation: str, column: str | None) -> Failure:
    found = [f for f in report.failures if (f.expectation, f.column) == (expectation, column)]
    assert len(found) == 1, report.summary()
    return found[0]


def rows_of(failure: Failure) -> list[int]:
    return [example["row"] for example in failure.examples]


def values_of(failure: Failure) -> list[Any]:
    return [example["value"] for example in failure.examples]


@dataclasses.dataclass
class ColumnStats:
    """A stand-in for the profiler's per-column summary (the attributes infer_contract reads)."""

    type: str
    kind: str
    count: int
    nulls: int
    distinct: int
    distinct_is_exact: bool
    min: Any
    max: Any
    top_values: list[tuple[Any, int]]


@dataclasses.dataclass
class Profile:
    rows: int
    columns: dict[str, Any]


def profile_of(table: pa.Table, *, with_nans: bool = True) -> Profile:
    """Exact statistics of a small table, shaped like the profiler's."""
    columns: dict[str, Any] = {}
    for name in table.column_names:
        values = table[name].combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        present = values.drop_null()
        counts = pc.value_counts(present).to_pylist() if len(present) else []
        extremes = pc.min_max(present).as_py() if len(present) else {"min": None, "max": None}
        stats = ColumnStats(
            type=str(values.type),
            kind="other",
            count=len(present),
            nulls=values.null_count,
            distinct=len(counts),
            distinct_is_exact=True,
            min=extremes["min"],
            max=extremes["max"],
            top_values=sorted(((c["values"], c["counts"]) for c in counts), key=lambda p: -p[1]),
        )
        if with_nans and pa.types.is_floating(values.type):
            finite = present.filter(pc.is_finite(present))
            stats.nan_count = pc.sum(pc.is_nan(present)).as_py() or 0  # type: ignore[attr-defined]
            stats.inf_count = pc.sum(pc.is_inf(present)).as_py() or 0  # type: ignore[attr-defined]
            # Like the profiler's: the extremes of the finite values.
            stats.min, stats.max = (
                pc.min_max(finite).as_py().values() if len(finite) else (None, None)
            )
        columns[name] = stats
    return Profile(rows=table.num_rows, columns=columns)


# ------------------------------------------------------------------ YAML round trips

TYPES = ("int64", "double", "string", "timestamp[us]", "date32[day]", "bool")


def _bounds(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    low, high = draw(st.one_of(st.none(), values)), draw(st.one_of(st.none(), values))
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


@st.composite
def column_rules(draw: st.DrawFn, name: str) -> ColumnRule:
    kind = draw(st.sampled_from(TYPES))
    low = high = categories = None
    allow_nan = False
    if kind == "int64":
        low, high = _bounds(draw, st.integers(-(2**63), 2**63 - 1))
    elif kind == "double":
        low, high = _bounds(draw, st.floats(allow_nan=False))
        allow_nan = draw(st.booleans())
    elif kind == "string":
        low, high = _bounds(draw, st.text(max_size=10))
        categories = draw(
            st.one_of(
                st.none(),
                st.lists(st.text(max_size=10), min_size=1, max_size=5, unique=True).map(tuple),
            )
        )
    elif kind == "timestamp[us]":
        moments = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))
        low, high = (None if b is None else b.isoformat() for b in _bounds(draw, moments))
    elif kind == "date32[day]":
        days = st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1))
        low, high = (None if b is None else b.isoformat() for b in _bounds(draw, days))
    return ColumnRule(
        name=name,
        type=kind,
        nullable=draw(st.booleans()),
        min=low,
        max=high,
        categories=categories,
        unique=draw(st.booleans()),
        allow_nan=allow_nan,
    )


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    names = draw(st.lists(st.text(min_size=1, max_size=12), max_size=5, unique=True))
    rules = tuple(draw(column_rules(name)) for name in names)
    rows_min, rows_max = _bounds(draw, st.integers(0, 10**12))
    key = (
        draw(
            st.one_of(
                st.none(), st.lists(st.sampled_from(names), min_size=1, unique=True).map(tuple)
            )
        )
        if names
        else None
    )
    return Contract(
        columns=rules,
        rows_min=rows_min,
        rows_max=rows_max,
        mode=draw(st.sampled_from(["warn", "strict"])),
        allow_extra_columns=draw(st.booleans()),
        key=key,
    )


@settings(max_examples=300, deadline=None)
@given(contracts())
def test_yaml_round_trips_any_contract(contract: Contract) -> None:
    text = contract.to_yaml()
    again = Contract.from_yaml(text)
    assert again == contract
    assert again.to_yaml() == text  # stable: the same document, byte for byte


def test_yaml_is_commented_and_in_contract_order() -> None:
    contract = Contract(
        columns=(
            ColumnRule("zeta", "int64", nullable=False, min=0),
            ColumnRule("alpha", "string", categories=("b", "a")),
        ),
        rows_min=1,
        key=("zeta",),
    )
    text = contract.to_yaml()
    assert text.startswith("# Shipyard data contract")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "mode: warn",
        "rows:",
        "  min: 1",
        "  max: null",
        "key: [zeta]",
        "allow_extra_columns: false",
        "columns:",
        "  zeta:",
        "    type: int64",
        "    nullable: false",
        "    min: 0",
        "  alpha:",
        "    type: string",
        "    nullable: true",
        "    categories: [b, a]",
    ]


HAND_EDITED = """\
# our orders table; Ana tightened the ranges on 2024-03-02
mode: strict
rows: {min: 1000}          # no upper bound
key: order_id              # one column, written without a list
columns:
  order_id: {type: int64, nullable: false}
  placed:
    type: timestamp[us, tz=UTC]
    min: 2020-01-01T00:00:00Z     # unquoted: YAML reads a datetime
  day:
    type: date32[day]
    min: 2020-01-01               # unquoted: YAML reads a date
  amount:
    type: float64                 # an alias, stored as 'double'
    min: 0
    max: 1e6                      # YAML 1.1 reads this as text; refused below
  status:
    type: string
    categories: [new, paid, "yes", "1"]
"""


def test_a_hand_edited_document_is_read() -> None:
    text = HAND_EDITED.replace("max: 1e6 ", "max: 1.0e+6")
    contract = Contract.from_yaml(text, source="orders.yaml")
    assert contract.mode == "strict"
    assert (contract.rows_min, contract.rows_max) == (1000, None)
    assert contract.key == ("order_id",)
    assert not contract.allow_extra_columns
    rules = {rule.name: rule for rule in contract.columns}
    assert rules["order_id"] == ColumnRule("order_id", "int64", nullable=False)
    assert rules["placed"].type == "timestamp[us, tz=UTC]"
    assert rules["placed"].min == "2020-01-01T00:00:00+00:00"
    assert rules["day"].min == "2020-01-01"
    assert (rules["amount"].type, rules["amount"].min, rules["amount"].max) == ("double", 0, 1e6)
    assert rules["status"].categories == ("new", "paid", "yes", "1")
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_a_number_yaml_reads_as_text_is_refused_with_the_line() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"orders.yaml, line 16: columns.amount.max must be a number for a double column, got '1e6'",
    ):
        Contract.from_yaml(HAND_EDITED, source="orders.yaml")


GOOD = """\
mode: warn
rows: {min: 1, max: null}
key: [id]
columns:
  id: {type: int64, nullable: false, unique: true}
  age:
    type: int64
    min: 0
    max: 120
  city: {type: string, categories: [Berlin, Paris]}
  seen: {type: "timestamp[us]"}
"""


@pytest.mark.parametrize(
    ("old", "new", "expected", "allowed"),
    [
        (
            "  age:\n",
            "  age:\n  - x\n",
            r"line 8: not valid YAML: mapping values are not allowed here",
            "YAML syntax",
        ),
        (
            "mode: warn",
            "modee: warn",
            r"line 1: modee is not a known field",
            "Did you mean 'mode'?",
        ),
        (
            "    min: 0",
            "    minimum: 0",
            r"line 8: columns.age.minimum is not a known field",
            "Allowed fields: type, nullable, min, max",
        ),
        (
            "    min: 0",
            "    min: zero",
            r"line 8: columns.age.min must be a number for a int64 column, got 'zero'",
            "Bound numbers with numbers",
        ),
        (
            "unique: true}",
            "unique: maybe}",
            r"line 5: columns.id.unique must be true or false, got 'maybe'",
            "unique: true or unique: false",
        ),
        (
            "    min: 0",
            "    min: 200",
            r"line 8: columns.age.min \(200\) is greater than max \(120\)",
            "Make min no greater than max",
        ),
        (
            "mode: warn",
            "mode: block",
            r"line 1: mode must be 'warn' or 'strict', got 'block'",
            "strict refuses it",
        ),
        ("  city:", "  age:", r"line 10: columns names 'age' twice", "Each column appears once"),
        (
            "    type: int64\n    min",
            "    type: int64\n    type: int32\n    min",
            r"line 8: columns.age has 'type' twice",
            "Write each field once",
        ),
        (
            "    type: int64\n    min",
            "    type: integer\n    min",
            r"line 7: columns.age.type 'integer' is not an Arrow type",
            "int64, double, string",
        ),
        (
            "{min: 1, max: null}",
            "{min: 10, max: 5}",
            r"line 2: rows.min \(10\) is greater than the maximum \(5\)",
            "no greater than the maximum",
        ),
        (
            "{min: 1, max: null}",
            "{min: -1}",
            r"line 2: rows.min must be a whole number of rows >= 0",
            "min: 1000",
        ),
        (
            "key: [id]",
            "key: [ident]",
            r"line 3: key names 'ident', which is not a column of the contract",
            "Name columns of this contract",
        ),
        ("key: [id]", "key: [id, id]", r"line 3: key names 'id' twice", "each once"),
        (
            "{type: string, categories",
            "{type: int64, categories",
            r"line 10: columns.city.categories apply to text columns only, not int64",
            "bound numbers with min and max",
        ),
        (
            "[Berlin, Paris]",
            "[Berlin, 1]",
            r"line 10: columns.city.categories must hold text only, got 1",
            "Quote values",
        ),
        (
            "[Berlin, Paris]",
            "[Berlin, Berlin]",
            r"line 10: columns.city.categories list 'Berlin' twice",
            "List each category once",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            'seen: {type: "timestamp[us]", min: 5}',
            r"line 11: columns.seen.min must be text for a timestamp\[us\] column, got 5",
            "ISO text",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: {type: 'timestamp[us]', min: 'soon'}",
            r"line 11: columns.seen.min 'soon' is not a timestamp\[us\] value",
            "ISO text",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: {type: double, allow_nan: 1}",
            r"line 11: columns.seen.allow_nan must be true or false",
            "allow_nan: true",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: {type: int64, allow_nan: true}",
            r"line 11: columns.seen.allow_nan applies to float columns only",
            "Remove allow_nan",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: {nullable: false}",
            r"line 11: columns.seen has no type",
            "int64, double",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: [timestamp]",
            r"line 11: columns.seen must be a mapping of rule fields",
            "Indent type, nullable",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "2024: {type: int64}",
            r"line 11: columns.2024 is not text",
            "Quote the column name",
        ),
        (
            'seen: {type: "timestamp[us]"}',
            "seen: {type: bool, min: 0}",
            r"line 11: columns.seen.min cannot bound a bool column",
            "min and max apply to numbers",
        ),
        (
            "rows: {min: 1, max: null}",
            "rows: 7",
            r"line 2: rows must be a mapping of row bounds, got 7",
            "Indent min, max under rows",
        ),
        (
            "rows: {min: 1, max: null}",
            "rows: {min: 1, maximum: 2}",
            r"line 2: rows.maximum is not a known field",
            "Did you mean 'max'?",
        ),
        (
            "mode: warn",
            "mode: null",
            r"line 1: mode must be 'warn' or 'strict', got None",
            "warn stores",
        ),
        (
            "mode: warn",
            "allow_extra_columns: sometimes",
            r"line 1: allow_extra_columns must be true or false",
            "allow_extra_columns: true",
        ),
    ],
)
def test_a_bad_document_names_the_source_line_and_field(
    old: str, new: str, expected: str, allowed: str
) -> None:
    assert old in GOOD
    with pytest.raises(InvalidInput, match=f"^orders.yaml, {expected}") as caught:
        Contract.from_yaml(GOOD.replace(old, new, 1), source="orders.yaml")
    assert allowed in str(caught.value.hint)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a contract is a YAML mapping, got None"),
        ("- a\n- b\n", "a contract is a YAML mapping, got ['a', 'b']"),
        ("mode: warn\n", "the contract has no columns field"),
        ("columns: [a, b]\n", "line 1: columns must be a mapping of column name to rule"),
        ("columns: {}\nmode: warn\nmode: strict\n", "line 3: the contract has 'mode' twice"),
        ("columns: {}\n? [a, b]\n: 1\n", "line 2: not valid YAML: a key must be plain text"),
    ],
)
def test_a_malformed_document_is_refused(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^c\.yaml[:,] {re.escape(expected)}"):
        Contract.from_yaml(text, source="c.yaml")


def test_the_good_document_itself_is_accepted() -> None:
    contract = Contract.from_yaml(GOOD)
    assert [rule.name for rule in contract.columns] == ["id", "age", "city", "seen"]
    assert Contract.from_yaml("columns: {}\n") == Contract(columns=())


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: ColumnRule("x", "int64", min=5, max=1),
            r"Column rule 'x': min \(5\) is greater than max \(1\)",
        ),
        (
            lambda: ColumnRule("x", "int64", min=2**64),
            "min 18446744073709551616 does not fit in 64 bits",
        ),
        (
            lambda: ColumnRule("x", "double", min=math.nan),
            "min must be a number for a double column, got nan",
        ),
        (lambda: ColumnRule("", "int64"), "name must be a non-empty text"),
        (
            lambda: ColumnRule("x", "list<item: int64>", unique=True),
            "unique cannot be checked on a list<item: int64> column",
        ),
        (
            lambda: Contract(columns=(ColumnRule("a", "int64"), ColumnRule("a", "string"))),
            "Contract: columns name 'a' twice",
        ),
        (
            lambda: Contract(columns=(ColumnRule("a", "int64"),), key=("b",)),
            "Contract: key names 'b'",
        ),
        (
            lambda: Contract(columns=(ColumnRule("a", "list<item: int64>"),), key="a"),
            "whose type list<item: int64> cannot be compared",
        ),
        (lambda: Contract(columns=("a",)), "columns must hold ColumnRule objects only"),  # type: ignore[arg-type]
        (lambda: Contract(columns=(), rows_min=True), "rows_min must be a whole number"),
        (lambda: Contract(columns=(), mode="block"), "mode must be 'warn' or 'strict'"),  # type: ignore[arg-type]
    ],
)
def test_building_a_bad_rule_or_contract_in_python_is_refused(build: Any, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        build()


def test_python_values_are_normalised() -> None:
    rule = ColumnRule("t", "float64", min=0, categories=None)
    assert rule.type == "double"
    day = ColumnRule("d", "date32[day]", min=dt.date(2024, 1, 31))  # type: ignore[arg-type]
    assert day.min == "2024-01-31"
    text = ColumnRule("s", "string", categories=["a", "b"])  # type: ignore[arg-type]
    assert text.categories == ("a", "b")
    assert Contract(columns=[rule], key="t").key == ("t",)  # type: ignore[arg-type]
    assert dataclasses.replace(Contract(columns=(rule,)), mode="strict").mode == "strict"


# ------------------------------------------------------------- each expectation


EXPECTATIONS = [
    # (rule, values, expectation, failing rows, their values)
    (
        ColumnRule("v", "int64", nullable=False),
        [1, None, 3, None],
        "not_null",
        [1, 3],
        [None, None],
    ),
    (ColumnRule("v", "int64", min=0), [5, -1, 3, -7, None], "min", [1, 3], [-1, -7]),
    (ColumnRule("v", "int64", max=10), [5, 11, None, 10, 99], "max", [1, 4], [11, 99]),
    (
        ColumnRule("v", "double", min=0.0, max=1.0),
        [0.5, math.nan, None, 1.0],
        "not_nan",
        [1],
        ["nan"],
    ),
    (
        ColumnRule("v", "double", min=0.0),
        [0.0, -0.5, math.inf, -math.inf],
        "min",
        [1, 3],
        [-0.5, "-inf"],
    ),
    (
        ColumnRule("v", "string", categories=("a", "b")),
        ["a", "c", None, "b", "A"],
        "in_categories",
        [1, 4],
        ["c", "A"],
    ),
    (ColumnRule("v", "string", min="b"), ["b", "a", "ba", "Z"], "min", [1, 3], ["a", "Z"]),
    (
        ColumnRule("v", "int64", unique=True),
        [1, 2, 1, None, None, 3, 2, 1],
        "unique",
        [2, 6, 7],
        [1, 2, 1],
    ),
    (ColumnRule("v", "string", unique=True), ["x", "y", "x", "", ""], "unique", [2, 4], ["x", ""]),
    (
        ColumnRule("v", "double", unique=True),
        [0.0, -0.0, math.nan, math.nan, 1.5],
        "unique",
        [1, 3],
        [-0.0, "nan"],
    ),
    (ColumnRule("v", "bool", unique=True), [True, False, None, True], "unique", [3], [True]),
]


@pytest.mark.parametrize(("rule", "values", "expectation", "rows", "shown"), EXPECTATIONS)
@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_each_expectation_fails_exactly_where_it_should(
    rule: ColumnRule,
    values: list[Any],
    expectation: str,
    rows: list[int],
    shown: list[Any],
    batch_rows: int,
) -> None:
    data = pa.table({"v": pa.array(values, pa.type_for_alias(rule.type))})
    report = check(Contract(columns=(rule,)), data, batch_rows)
    assert not report.passed
    assert report.rows_checked == len(values)
    assert len(report.failures) == 1, report.summary()
    failure = only(report, expectation, "v")
    assert (failure.failed, rows_of(failure), values_of(failure)) == (len(rows), rows, shown)


@pytest.mark.parametrize(("rule", "values", "expectation", "rows", "shown"), EXPECTATIONS)
def test_each_expectation_passes_on_clean_data(
    rule: ColumnRule, values: list[Any], expectation: str, rows: list[int], shown: list[Any]
) -> None:
    clean = [value for index, value in enumerate(values) if index not in rows]
    data = pa.table({"v": pa.array(clean, pa.type_for_alias(rule.type))})
    report = check(Contract(columns=(rule,)), data)
    assert report.passed, report.summary()
    assert report.failures == ()
    assert report.summary() == f"All expectations met on {len(clean)} rows."


def test_nan_passes_where_the_rule_allows_it_or_there_is_no_range() -> None:
    data = pa.table({"v": [0.5, math.nan]})
    assert check(
        Contract(columns=(ColumnRule("v", "double", max=1.0, allow_nan=True),)), data
    ).passed
    assert check(Contract(columns=(ColumnRule("v", "double"),)), data).passed
    with_nulls = pa.table({"v": [None, math.nan, 3.0]})
    report = check(Contract(columns=(ColumnRule("v", "double", max=1.0),)), with_nulls)
    assert [(f.expectation, f.failed, rows_of(f)) for f in report.failures] == [
        ("not_nan", 1, [1]),
        ("max", 1, [2]),
    ]


def test_range_messages_say_what_was_expected_and_the_worst_value() -> None:
    data = pa.table({"v": [5, -1, 300, -7, 12]})
    report = check(
        Contract(columns=(ColumnRule("v", "int64", min=0, max=100),)), data, batch_rows=2
    )
    low, high = only(report, "min", "v"), only(report, "max", "v")
    assert low.message == "expected values >= 0; 2 of 5 rows are below, the lowest -7"
    assert high.message == "expected values <= 100; 1 of 5 rows are above, the highest 300"
    assert report.summary().splitlines() == [
        "min 'v': expected values >= 0; 2 of 5 rows are below, the lowest -7 (e.g. row 1: -1, row 3: -7)",
        "max 'v': expected values <= 100; 1 of 5 rows are above, the highest 300 (e.g. row 2: 300)",
    ]


def test_examples_stop_at_five_and_counts_do_not() -> None:
    data = pa.table({"v": pa.array([None] * 1000, pa.int64())})
    failure = only(
        check(Contract(columns=(ColumnRule("v", "int64", nullable=False),)), data, 64),
        "not_null",
        "v",
    )
    assert failure.failed == 1000
    assert rows_of(failure) == [0, 1, 2, 3, 4]


def test_timestamps_compare_as_timestamps() -> None:
    utc = dt.UTC
    moments = [
        dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=utc),
        dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=utc),
        None,
    ]
    data = pa.table({"t": pa.array(moments, pa.timestamp("us", tz="UTC"))})
    # 01:00 at +01:00 is midnight UTC: the first row is a second after it, the second before it
    # (compared as text, both would be below '2024-01-01T01:00').
    rule = ColumnRule("t", "timestamp[us, tz=UTC]", min="2024-01-01T01:00:00+01:00")
    failure = only(check(Contract(columns=(rule,)), data), "min", "t")
    assert (failure.failed, rows_of(failure)) == (1, [1])
    assert values_of(failure) == ["2023-12-31 23:59:59.000000Z"]
    naive = pa.table(
        {
            "t": pa.array(
                [dt.datetime(2024, 5, 1, 12), dt.datetime(2024, 5, 1, 11, 59)], pa.timestamp("ns")
            )
        }
    )
    failure = only(
        check(Contract(columns=(ColumnRule("t", "timestamp[ns]", min="2024-05-01 12:00"),)), naive),
        "min",
        "t",
    )
    assert values_of(failure) == ["2024-05-01 11:59:00.000000000"]


def test_dates_compare_as_dates() -> None:
    data = pa.table({"d": pa.array([dt.date(2024, 2, 29), dt.date(2024, 3, 1)], pa.date32())})
    failure = only(
        check(Contract(columns=(ColumnRule("d", "date32[day]", max="2024-02-29"),)), data),
        "max",
        "d",
    )
    assert (rows_of(failure), values_of(failure)) == ([1], ["2024-03-01"])


def test_dictionary_encoded_text_is_checked_on_its_dictionary() -> None:
    values = pa.array(["a", "b", None, "zz", "a", "zz"]).dictionary_encode()
    data = pa.table({"v": values})
    rule = ColumnRule("v", "string", nullable=False, categories=("a", "b"), max="b", unique=True)
    report = check(Contract(columns=(rule,)), data, batch_rows=4)
    assert {(f.expectation, f.failed, tuple(rows_of(f))) for f in report.failures} == {
        ("not_null", 1, (2,)),
        ("in_categories", 2, (3, 5)),
        ("max", 2, (3, 5)),
        ("unique", 2, (4, 5)),
    }
    assert values_of(only(report, "in_categories", "v")) == ["zz", "zz"]


def test_an_unused_dictionary_value_does_not_fail_a_row() -> None:
    values = pa.DictionaryArray.from_arrays(pa.array([0, 0, 1]), pa.array(["a", "b", "outside"]))
    rule = ColumnRule("v", "string", categories=("a", "b"), max="b")
    assert check(Contract(columns=(rule,)), pa.table({"v": values})).passed


def test_a_composite_key_reports_its_repeated_combinations() -> None:
    data = pa.table(
        {
            "store": ["a", "a", "b", "a", None, None],
            "day": pa.array([1, 2, 1, 1, 1, 1], pa.int32()),
        }
    )
    contract = Contract(
        columns=(ColumnRule("store", "string"), ColumnRule("day", "int32")), key=("store", "day")
    )
    failure = only(check(contract, data, batch_rows=2), "unique", None)
    assert (failure.failed, rows_of(failure)) == (1, [3])
    assert values_of(failure) == [{"store": "a", "day": 1}]
    assert "each combination of 'store', 'day'" in failure.message


def test_a_key_that_is_also_a_unique_column_is_checked_once() -> None:
    contract = Contract(columns=(ColumnRule("id", "int64", unique=True),), key=("id",))
    report = check(contract, pa.table({"id": [1, 1]}))
    assert [(f.expectation, f.column, f.failed) for f in report.failures] == [("unique", "id", 1)]


@pytest.mark.parametrize("order", ["growing", "shuffled", "text"])
def test_uniqueness_holds_across_many_batches(order: str) -> None:
    rng = np.random.default_rng(7)
    ids = np.arange(300_000)
    if order != "growing":
        rng.shuffle(ids)
    planted = {250_000: int(ids[3]), 120_001: int(ids[119_999]), 299_999: int(ids[0])}
    for row, value in planted.items():
        ids[row] = value
    column = pa.array(ids) if order != "text" else pa.array([f"k{value}" for value in ids.tolist()])
    failure = only(
        check(
            Contract(columns=(ColumnRule("k", str(column.type), unique=True),)),
            pa.table({"k": column}),
            65_536,
        ),
        "unique",
        "k",
    )
    assert failure.failed == 3
    assert rows_of(failure) == sorted(planted)


def test_rows_min_and_max() -> None:
    empty = pa.table({"v": pa.array([], pa.int64())})
    assert only(
        check(Contract(columns=(ColumnRule("v", "int64"),), rows_min=1), empty), "rows_min", None
    ).message == ("expected at least 1 row; the data has 0 rows")
    assert check(Contract(columns=(ColumnRule("v", "int64"),), rows_min=0), empty).passed
    no_batches = ContractChecker(
        Contract(columns=(), rows_min=1, allow_extra_columns=True), empty.schema
    ).report()
    assert [(f.expectation, f.failed) for f in no_batches.failures] == [("rows_min", 1)]
    three = pa.table({"v": [1, 2, 3]})
    assert check(
        Contract(columns=(ColumnRule("v", "int64"),), rows_min=3, rows_max=3), three
    ).passed
    assert (
        only(
            check(Contract(columns=(ColumnRule("v", "int64"),), rows_max=2), three),
            "rows_max",
            None,
        ).failed
        == 1
    )


# --------------------------------------------------------------------- the schema


def test_a_missing_an_extra_and_retyped_columns() -> None:
    contract = Contract(
        columns=(
            ColumnRule("gone", "int64"),
            ColumnRule("narrow", "int64", max=10),
            ColumnRule("text", "int64", max=10),
            ColumnRule("coded", "string", categories=("a",)),
        )
    )
    data = pa.table(
        {
            "narrow": pa.array([1, 20], pa.int32()),
            "text": ["1", "20"],
            "coded": pa.array(["a", "b"]).dictionary_encode(),
            "new": [1.0, 2.0],
        }
    )
    report = check(contract, data)
    assert [(f.expectation, f.column, f.failed) for f in report.failures] == [
        ("column_present", "gone", 1),
        ("type", "narrow", 1),
        ("type", "text", 1),
        ("no_extra_columns", "new", 1),
        ("max", "narrow", 1),  # int32 widens to int64 without loss: values still checked
        ("in_categories", "coded", 1),  # a dictionary of strings is a string column
    ]
    messages = {(f.expectation, f.column): f.message for f in report.failures}
    assert (
        messages["column_present", "gone"]
        == "expected a column 'gone' of type int64; the data has none"
    )
    assert (
        "int32 converts to int64 without loss, so the values were checked as int64"
        in messages["type", "narrow"]
    )
    assert (
        "converting string to int64 can lose or refuse values, so the column's values were not checked"
        in messages["type", "text"]
    )
    assert (
        "the data adds 'new' of type double (allow_extra_columns: true accepts it)"
        in messages["no_extra_columns", "new"]
    )
    relaxed = dataclasses.replace(contract, allow_extra_columns=True)
    assert "no_extra_columns" not in {f.expectation for f in check(relaxed, data).failures}


@pytest.mark.parametrize(
    ("actual", "expected", "widens"),
    [
        (pa.int8(), "int64", True),
        (pa.uint32(), "int64", True),
        (pa.uint64(), "int64", False),
        (pa.int64(), "int32", False),
        (pa.int32(), "double", True),
        (pa.int64(), "double", False),
        (pa.float32(), "double", True),
        (pa.float64(), "float", False),
        (pa.large_string(), "string", True),
        (pa.date32(), "date64[ms]", True),
        (pa.timestamp("ms"), "timestamp[us]", False),
        (pa.string(), "binary", False),
    ],
)
def test_a_retyped_column_is_checked_only_when_it_widens_without_loss(
    actual: pa.DataType, expected: str, widens: bool
) -> None:
    contract = Contract(columns=(ColumnRule("v", expected, nullable=False),))
    report = check(contract, pa.table({"v": pa.array([None], actual)}))
    assert only(report, "type", "v")
    assert (("not_null", "v") in {(f.expectation, f.column) for f in report.failures}) == widens


# --------------------------------------------------- batching, against a reference


def reference(
    contract: Contract, rows: list[dict[str, Any]]
) -> dict[tuple[str, str | None], list[int]]:
    """The failing rows of each expectation, by plain Python over the rows."""
    failing: dict[tuple[str, str | None], list[int]] = {}

    def fail(expectation: str, column: str | None, row: int) -> None:
        failing.setdefault((expectation, column), []).append(row)

    for rule in contract.columns:
        seen: set[Any] = set()
        for row, record in enumerate(rows):
            value = record[rule.name]
            if value is None:
                if not rule.nullable:
                    fail("not_null", rule.name, row)
                continue
            if isinstance(value, float) and math.isnan(value):
                if (rule.min is not None or rule.max is not None) and not rule.allow_nan:
                    fail("not_nan", rule.name, row)
            else:
                if rule.min is not None and value < rule.min:
                    fail("min", rule.name, row)
                if rule.max is not None and value > rule.max:
                    fail("max", rule.name, row)
            if rule.categories is not None and value not in rule.categories:
                fail("in_categories", rule.name, row)
            marker = "nan" if isinstance(value, float) and math.isnan(value) else value
            if rule.unique and marker in seen:
                fail("unique", rule.name, row)
            seen.add(marker)
    if contract.key is not None and len(contract.key) > 1:
        combos: set[tuple[Any, ...]] = set()
        for row, record in enumerate(rows):
            combo = tuple(record[name] for name in contract.key)
            if None not in combo:
                if combo in combos:
                    fail("unique", None, row)
                combos.add(combo)
    return failing


RECORDS = st.fixed_dictionaries(
    {
        "n": st.one_of(st.none(), st.integers(-5, 5)),
        "x": st.one_of(st.none(), st.just(math.nan), st.floats(-2, 2, allow_nan=False)),
        "s": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é"])),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(RECORDS, max_size=40),
    batch_rows=st.integers(1, 41),
    allow_nan=st.booleans(),
    nullable=st.booleans(),
)
def test_batch_boundaries_do_not_change_the_report(
    rows: list[dict[str, Any]], batch_rows: int, allow_nan: bool, nullable: bool
) -> None:
    contract = Contract(
        columns=(
            ColumnRule("n", "int64", nullable=nullable, min=-3, max=3, unique=True),
            ColumnRule("x", "double", min=-1.0, max=1.5, allow_nan=allow_nan),
            ColumnRule("s", "string", nullable=nullable, categories=("a", "b"), unique=False),
        ),
        key=("s", "n"),
        rows_min=1,
    )
    schema = pa.schema({"n": pa.int64(), "x": pa.float64(), "s": pa.string()})
    data = pa.Table.from_pylist(rows, schema=schema)
    report = check(contract, data, batch_rows)
    assert report == check(contract, data, batch_rows=max(1, len(rows)))
    expected = reference(contract, rows)
    if not rows:
        expected[("rows_min", None)] = []
    assert {(f.expectation, f.column) for f in report.failures} == set(expected)
    for failure in report.failures:
        failing = expected[(failure.expectation, failure.column)]
        if failure.expectation == "rows_min":
            continue
        assert failure.failed == len(failing)
        assert rows_of(failure) == failing[:5]


# ----------------------------------------------------------------------- the report


def test_the_report_is_json_ready_and_round_trips() -> None:
    data = pa.table(
        {
            "f": [math.nan, math.inf],
            "t": pa.array([dt.datetime(2024, 1, 1, 0, 0, 0, 1)] * 2, pa.timestamp("ns")),
            "b": pa.array([b"\x00\xff", b"\x00\xff"]),
            "d": pa.array([decimal.Decimal("1.50")] * 2, pa.decimal128(5, 2)),
            "s": ["x" * 500, "x" * 500],
        }
    )
    contract = Contract(
        columns=(
            ColumnRule("f", "double", max=1.0),
            ColumnRule("t", "timestamp[ns]", unique=True),
            ColumnRule("b", "binary", unique=True),
            ColumnRule("d", "decimal128(5, 2)", unique=True, max=1),
            ColumnRule("s", "string", unique=True),
        )
    )
    report = check(contract, data)
    as_dict = report.to_dict()
    text = json.dumps(as_dict, allow_nan=False)
    assert ValidationReport.from_dict(json.loads(text)) == report
    shown = {(f.expectation, f.column): values_of(f) for f in report.failures}
    assert shown[("not_nan", "f")] == ["nan"]
    assert shown[("max", "f")] == ["inf"]
    assert shown[("unique", "t")] == ["2024-01-01 00:00:00.000001000"]
    assert shown[("unique", "b")] == ["00ff"]
    assert shown[("unique", "d")] == ["1.50"]
    assert shown[("max", "d")] == ["1.50", "1.50"]
    assert shown[("unique", "s")] == ["x" * 200 + "…"]
    assert len(report.summary().splitlines()) == len(report.failures)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"passed": True, "rows_checked": 1},
        {"passed": True, "rows_checked": "x", "failures": []},
        {"passed": False, "rows_checked": 1, "failures": [{"expectation": "min"}]},
    ],
)
def test_a_malformed_stored_report_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="stored validation report is malformed"):
        ValidationReport.from_dict(data)


# ------------------------------------------------------------------------ inference


def sample() -> pa.Table:
    count = 400
    return pa.table(
        {
            "order_id": pa.array(range(count), pa.int64()),
            "email": [f"user{i}@example.com" for i in range(count)],
            "status": pa.array(["new", "paid", "sent", "paid"] * (count // 4)).dictionary_encode(),
            "amount": [float(i % 97) - 3.5 for i in range(count)],
            "score": [math.nan if i == 7 else i / count for i in range(count)],
            "quantity": pa.array([i % 5 if i % 9 else None for i in range(count)], pa.int32()),
            "placed": pa.array(
                [dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(count)],
                pa.timestamp("us"),
            ),
            "day": pa.array(
                [dt.date(2024, 1, 1) + dt.timedelta(days=i % 30) for i in range(count)], pa.date32()
            ),
            "note": [f"free text {i % 200}" for i in range(count)],
            "flag": [i % 2 == 0 for i in range(count)],
        }
    )


def test_inference_follows_the_documented_rules() -> None:
    data = sample()
    contract = infer_contract(data.schema, profile_of(data))
    rules = {rule.name: rule for rule in contract.columns}
    assert [rule.name for rule in contract.columns] == data.column_names
    assert (contract.mode, contract.rows_min, contract.rows_max, contract.allow_extra_columns) == (
        "warn",
        1,
        None,
        False,
    )
    assert contract.key == ("order_id",)  # the first unique column named like an identifier
    assert rules["order_id"] == ColumnRule(
        "order_id", "int64", nullable=False, unique=True
    )  # ids grow: no range
    assert rules["email"] == ColumnRule("email", "string", nullable=False, unique=True)
    assert rules["status"] == ColumnRule(
        "status", "string", nullable=False, categories=("new", "paid", "sent")
    )
    assert (rules["amount"].min, rules["amount"].max, rules["amount"].allow_nan) == (
        -3.5,
        92.5,
        False,
    )
    assert (rules["score"].min, rules["score"].max, rules["score"].allow_nan) == (
        0.0,
        399 / 400,
        True,
    )
    assert (
        rules["quantity"].type,
        rules["quantity"].nullable,
        rules["quantity"].min,
        rules["quantity"].max,
    ) == ("int32", True, 0, 4)
    assert (rules["placed"].min, rules["placed"].max) == (
        "2024-01-01T00:00:00",
        None,
    )  # time moves forward
    assert (rules["day"].min, rules["day"].max) == ("2024-01-01", None)
    assert rules["note"].categories is None  # 200 distinct values: more than 50
    assert rules["flag"] == ColumnRule("flag", "bool", nullable=False)
    assert Contract.from_yaml(contract.to_yaml()) == contract
    assert check(contract, data, 64).passed


def test_inference_without_nan_counts_allows_nan_and_with_few_rows_skips_categories() -> None:
    data = pa.table({"x": [1.0, 2.0], "s": ["a", "a"], "paid": [1, 2]})
    rules = {
        rule.name: rule
        for rule in infer_contract(data.schema, profile_of(data, with_nans=False)).columns
    }
    assert rules["x"].allow_nan  # the profile cannot show NaN is absent
    assert rules["s"].categories is None  # 1 distinct value of 2 is more than 5%
    assert (
        infer_contract(data.schema, profile_of(data)).key is None
    )  # 'paid' ends in 'id' but is no identifier


def test_inference_leaves_out_what_the_profile_cannot_vouch_for() -> None:
    data = pa.table({"x": [1.0, -math.inf, 2.0], "code": ["a", "b", "c"]})
    profile = profile_of(data)
    profile.columns["code"].distinct = None  # the profiler gave up counting
    rules = {rule.name: rule for rule in infer_contract(data.schema, profile).columns}
    assert (rules["x"].min, rules["x"].max) == (None, None)  # an infinity came, of unknown sign
    assert (rules["code"].unique, rules["code"].categories) == (False, None)
    profile.columns["code"].distinct, profile.columns["code"].distinct_is_exact = 3, False
    assert {rule.name: rule for rule in infer_contract(data.schema, profile).columns}[
        "code"
    ].unique is False


def test_inference_from_the_real_profiler_accepts_its_data() -> None:
    from shipyard.data._profile import Profiler

    data = sample()
    profiler = Profiler(data.schema)
    for batch in data.to_batches(max_chunksize=64):
        profiler.update(batch)
    contract = infer_contract(data.schema, profiler.finish())
    assert check(contract, data, 64).passed

    def as_values(rule: ColumnRule) -> tuple[ColumnRule, list[Any]]:
        """The rule and its bounds read as Arrow values: one instant has several ISO spellings."""
        kind = pa.type_for_alias(rule.type)
        bounds = [
            None if b is None else pa.scalar(b).cast(kind).as_py() for b in (rule.min, rule.max)
        ]
        return dataclasses.replace(rule, min=None, max=None), bounds

    stand_in = infer_contract(data.schema, profile_of(data))
    assert list(map(as_values, contract.columns)) == list(map(as_values, stand_in.columns))
    assert contract.key == stand_in.key == ("order_id",)
    assert (contract.rows_min, contract.rows_max) == (stand_in.rows_min, stand_in.rows_max)


def test_inference_on_an_empty_first_version() -> None:
    data = pa.table({"id": pa.array([], pa.int64()), "x": pa.array([], pa.float64())})
    contract = infer_contract(data.schema, profile_of(data))
    assert contract.rows_min == 0
    assert contract.key is None
    assert all(
        rule.min is None and rule.max is None and not rule.unique for rule in contract.columns
    )
    assert check(contract, data).passed


@pytest.mark.parametrize(
    ("name", "looks_like_id"),
    [
        ("id", True),
        ("ID", True),
        ("user_id", True),
        ("order-id", True),
        ("orderId", True),
        ("customerID", True),
        ("uuid", True),
        ("row.key", True),
        ("paid", False),
        ("valid", False),
        ("idea", False),
        ("keys", False),
    ],
)
def test_the_key_is_a_unique_column_named_like_an_identifier(
    name: str, looks_like_id: bool
) -> None:
    data = pa.table({"n": [3, 1, 2], name: [10, 20, 30]})
    assert infer_contract(data.schema, profile_of(data)).key == ((name,) if looks_like_id else None)


def test_inference_takes_profile_values_of_other_shapes() -> None:
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    data = pa.table(
        {
            "t": pa.array([moment] * 40, pa.timestamp("us", tz="UTC")),
            "v": [3] * 40,
            "s": ["x", "y"] * 20,
        }
    )
    profile = profile_of(data)
    profile.columns["v"].min, profile.columns["v"].max = np.int64(3), np.int64(3)  # numpy scalars
    profile.columns["s"].top_values = {"y": 20, "x": 20}  # a mapping of value to count
    rules = {rule.name: rule for rule in infer_contract(data.schema, profile).columns}
    assert rules["t"].min == "2024-01-01T00:00:00+00:00"
    assert (rules["v"].min, rules["v"].max) == (3, 3)
    assert rules["s"].categories == ("x", "y")
    profile.columns["s"].top_values = [("x", 20)]  # the top values leave one out: no categories
    assert {rule.name: rule for rule in infer_contract(data.schema, profile).columns}[
        "s"
    ].categories is None


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(RECORDS, min_size=1, max_size=60), batch_rows=st.integers(1, 61))
def test_the_inferred_contract_accepts_the_data_it_came_from(
    rows: list[dict[str, Any]], batch_rows: int
) -> None:
    schema = pa.schema({"n": pa.int64(), "x": pa.float64(), "s": pa.string()})
    data = pa.Table.from_pylist(rows, schema=schema)
    contract = infer_contract(data.schema, profile_of(data))
    report = check(contract, data, batch_rows)
    assert report.passed, report.summary()
