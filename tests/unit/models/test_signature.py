"""Signatures: inference from an example and a model, and strict validation of requests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.errors import InvalidInput
from shipyard.models._signature import ColumnSpec, Signature, infer_signature


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 52, 28], dtype=np.int64),
            "income": [52_000.0, np.nan, 81_500.5, 33_000.0],
            "city": ["Oslo", None, "Lima", "Pune"],
            "member": [True, False, True, False],
            "plan": pd.Categorical(["basic", "pro", "basic", "pro"]),
            "visits": pd.array([1, None, 3, 4], dtype="Int64"),
            "signup": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
            "seen": pd.to_datetime(["2024-01-01"] * 4).tz_localize("UTC"),
        }
    )


def spec(sig: Signature, name: str) -> ColumnSpec:
    return next(s for s in sig.inputs if s.name == name)


def row(**changes: Any) -> dict[str, list[Any]]:
    """One valid request for the ``mixed`` signature, with ``changes`` applied."""
    base: dict[str, list[Any]] = {
        "age": [40],
        "income": [1.5],
        "city": ["Rome"],
        "member": [True],
        "plan": ["pro"],
        "visits": [2],
        "signup": ["2024-05-01T12:30:00"],
        "seen": ["2024-05-01T12:30:00+00:00"],
    }
    return {**base, **changes}


# ---------------------------------------------------------------- inference


def test_types_and_nullability_are_read_from_the_example(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    assert [(s.name, s.type, s.nullable) for s in sig.inputs] == [
        ("age", "int64", False),
        ("income", "double", True),
        ("city", "string", True),
        ("member", "bool", False),
        ("plan", "string", False),
        ("visits", "int64", True),
        ("signup", "timestamp[us]", False),
        ("seen", "timestamp[us, tz=UTC]", False),
    ]
    assert spec(sig, "plan").categories == ("basic", "pro")
    assert spec(sig, "city").categories is None
    assert sig.outputs == {}


def test_a_signature_round_trips_through_json(mixed: pd.DataFrame) -> None:
    model = LogisticRegression().fit(mixed[["age", "income"]].fillna(0), [0, 1, 0, 1])
    sig = infer_signature(mixed[["age", "income"]].fillna(0), model)
    again = Signature.from_dict(json.loads(json.dumps(sig.to_dict())))
    assert again == sig
    assert Signature.from_dict(json.loads(json.dumps(infer_signature(mixed).to_dict()))) == (
        infer_signature(mixed)
    )


def test_a_classifier_records_its_outputs_and_classes() -> None:
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = np.where(X["a"] > 9, "yes", "no")
    sig = infer_signature(X.head(), RandomForestClassifier(n_estimators=3).fit(X, y))
    assert sig.outputs == {
        "predict": {"type": "string", "shape": [-1]},
        "predict_proba": {"type": "double", "shape": [-1, 2]},
        "classes": ["no", "yes"],
    }


def test_a_regressor_has_only_predict() -> None:
    X = pd.DataFrame({"a": np.arange(20.0)})
    sig = infer_signature(X, LinearRegression().fit(X, X["a"] * 2))
    assert sig.outputs == {"predict": {"type": "double", "shape": [-1]}}


def test_an_example_that_does_not_fit_the_model_is_invalid_input() -> None:
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0)})
    model = LogisticRegression().fit(X, X["a"] > 9)
    with pytest.raises(
        InvalidInput, match=r"(?s)does not fit the model: ValueError: .*missing.*- b"
    ) as info:
        infer_signature(X[["a"]], model)
    assert "same columns and types" in str(info.value)


def test_an_array_example_names_columns_by_position() -> None:
    X = np.arange(12.0).reshape(4, 3)
    model = LinearRegression().fit(X, X.sum(axis=1))
    sig = infer_signature(X, model)
    assert sig.column_names == ["0", "1", "2"]
    assert sig.outputs["predict"] == {"type": "double", "shape": [-1]}
    expected = pd.DataFrame(X, columns=["0", "1", "2"])
    pd.testing.assert_frame_equal(sig.validate(X), expected)
    pd.testing.assert_frame_equal(sig.validate(X.tolist()), expected)
    with pytest.raises(InvalidInput, match="Each row must hold 3 values"):
        sig.validate([[1.0, 2.0]])


def test_a_dict_of_columns_is_an_example_too() -> None:
    sig = infer_signature({"a": [1, 2], "b": ["x", "y"]})
    assert [(s.name, s.type) for s in sig.inputs] == [("a", "int64"), ("b", "string")]


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (pd.DataFrame({0: [1], 1: [2]}), "Column names must be strings"),
        (pd.DataFrame({"a": []}), "has no rows"),
        (pd.DataFrame({"a": [None, None]}), "holds only missing values"),
        (pd.DataFrame({"a": [1, "x"]}), "cannot be read as one type"),
        (np.arange(3.0), "must be 2-D"),
        ([1, 2, 3], "must be a DataFrame"),
    ],
    ids=["int-names", "empty", "all-null", "mixed", "1d", "list"],
)
def test_bad_examples_are_refused(example: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        infer_signature(example)


# --------------------------------------------------------------- validation


def test_validate_returns_signature_columns_in_order_and_drops_extras(mixed) -> None:
    sig = infer_signature(mixed)
    shuffled = mixed[list(reversed(mixed.columns))].assign(extra=1)
    pd.testing.assert_frame_equal(sig.validate(shuffled), mixed)


def test_a_request_as_columns_or_records_is_cast_to_the_signature(mixed) -> None:
    sig = infer_signature(mixed)
    out = sig.validate(row(age=[40.0], income=[2], visits=[None]))
    assert out["age"].dtype == np.int64
    assert out["age"].tolist() == [40]
    assert out["income"].tolist() == [2.0]
    assert out["visits"].dtype == "Int64"
    assert out["visits"].isna().all()
    assert out["plan"].dtype == "category"
    assert list(out["plan"].cat.categories) == ["basic", "pro"]
    assert out["signup"].tolist() == [pd.Timestamp("2024-05-01 12:30")]
    assert str(out["seen"].dtype) == "datetime64[us, UTC]"
    records = [{k: v[0] for k, v in row().items()}]
    pd.testing.assert_frame_equal(sig.validate(records), sig.validate(row()))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"age": ["3"]}, r"Column 'age' takes int64 values; got string\..*whole numbers"),
        ({"age": [1.5]}, r"Column 'age' takes int64 values; some values do not fit"),
        ({"age": [True]}, r"Column 'age' takes int64 values; got bool"),
        ({"age": [2**70]}, r"Column 'age'"),
        (
            {"age": [None]},
            r"Column 'age' does not allow nulls; 1 row\(s\) have one, first at index \[0\]",
        ),
        ({"income": ["1.5"]}, r"Column 'income' takes double values; got string"),
        ({"income": [2**53 + 1]}, r"Column 'income'.*do not fit without loss"),
        ({"member": [1]}, r"Column 'member' takes bool values; got int64.*true or false"),
        ({"member": ["true"]}, r"Column 'member' takes bool values; got string"),
        ({"city": [3]}, r"Column 'city' takes string values; got int64.*quote numbers"),
        ({"city": [["a"]]}, r"Column 'city' takes string values; got list"),
        ({"plan": ["gold"]}, r"Column 'plan' takes one of \['basic', 'pro'\]; got 'gold'"),
        ({"plan": [None]}, r"Column 'plan' does not allow nulls"),
        ({"signup": ["yesterday"]}, r"Column 'signup'.*not ISO 8601"),
        ({"signup": ["2024-05-01T00:00:00+02:00"]}, r"Column 'signup'.*time zone"),
        ({"seen": ["2024-05-01T00:00:00"]}, r"Column 'seen'.*no time zone"),
        ({"visits": ["x", 1]}, r"Column 'visits' should hold int64 values"),
    ],
    ids=lambda v: str(v)[:30] if isinstance(v, dict) else "",
)
def test_each_bad_value_is_named_with_what_was_expected(
    mixed: pd.DataFrame, changes: dict[str, Any], message: str
) -> None:
    sig = infer_signature(mixed)
    request = row(**changes)
    if len(changes.get("visits", [])) == 2:
        request = {k: v * 2 for k, v in row().items()} | changes
    with pytest.raises(InvalidInput, match=message):
        sig.validate(request)


def test_a_null_is_reported_at_its_row_label(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    frame = mixed.set_axis(["r1", "r2", "r3", "r4"]).assign(age=[1.0, np.nan, 3.0, np.nan])
    with pytest.raises(InvalidInput, match=r"'age'.*2 row\(s\).*\['r2', 'r4'\]"):
        sig.validate(frame)


def test_a_tz_aware_time_is_converted_to_the_signature_zone(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    out = sig.validate(row(seen=["2024-05-01T02:00:00+02:00"]))
    assert out["seen"].tolist() == [pd.Timestamp("2024-05-01 00:00", tz="UTC")]


def test_missing_columns_are_all_named(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    request = {k: v for k, v in row().items() if k not in ("age", "plan")}
    with pytest.raises(InvalidInput, match=r"lacks the column\(s\) \['age', 'plan'\]"):
        sig.validate(request)
    records = [{k: v[0] for k, v in row().items()}, {"age": 3}]
    with pytest.raises(InvalidInput, match=r"Row 1 lacks the column\(s\) \['income'"):
        sig.validate(records)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"a": 1}, "map to single values"),
        ({"a": [1, 2], "b": [1]}, "different lengths"),
        ([1, 2], "one dict per row; row 0 is a int"),
        ("a,b", "got str"),
        (42, "got int"),
        (np.arange(4.0).reshape(2, 2), "named columns"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "more than once"),
    ],
    ids=["scalar", "lengths", "not-records", "str", "int", "array", "duplicate"],
)
def test_requests_of_the_wrong_shape_are_refused(data: Any, message: str) -> None:
    sig = infer_signature(pd.DataFrame({"a": [1], "b": [2]}))
    with pytest.raises(InvalidInput, match=message):
        sig.validate(data)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"inputs": [{"name": "a"}]},
        {"inputs": [{"name": "a", "type": "int64", "nullable": "no"}]},
        {"inputs": [{"name": "a", "type": "int64", "nullable": True}] * 2},
        [],
    ],
)
def test_a_malformed_signature_dict_is_invalid_input(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="signature"):
        Signature.from_dict(bad)


# --------------------------------------------------------------- properties

KINDS = ("int", "float", "nullable_float", "bool", "str", "nullable_str", "time", "category")


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Small frames of the dtypes models are fed, with nulls where a dtype holds them."""
    rows = draw(st.integers(1, 12))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
    columns: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        name = f"c{i}_{kind}"
        if kind == "int":
            values: Any = np.array(
                draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=rows, max_size=rows)),
                dtype=np.int64,
            )
        elif kind in ("float", "nullable_float"):
            floats = st.floats(allow_nan=kind == "nullable_float", allow_infinity=True)
            values = np.array(
                draw(st.lists(floats, min_size=rows, max_size=rows)), dtype=np.float64
            )
        elif kind == "bool":
            values = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
        elif kind in ("str", "nullable_str"):
            item = st.none() | text if kind == "nullable_str" else text
            values = draw(st.lists(item, min_size=rows, max_size=rows))
            if all(v is None for v in values):
                values[0] = "x"
        elif kind == "time":
            stamps = st.datetimes(
                min_value=pd.Timestamp("1900-01-01").to_pydatetime(),
                max_value=pd.Timestamp("2200-01-01").to_pydatetime(),
            )
            values = pd.to_datetime(draw(st.lists(stamps, min_size=rows, max_size=rows))).as_unit(
                "us"
            )
        else:
            values = pd.Categorical(
                draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=rows, max_size=rows))
            )
        columns[name] = values
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_an_example_validates_unchanged_against_its_own_signature(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    pd.testing.assert_frame_equal(sig.validate(frame), frame)
    records = frame.to_dict("records")
    pd.testing.assert_frame_equal(sig.validate(records), frame, check_dtype=False)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["2024-01-01", "1e9", "NaT", "", "3"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
REQUESTS = (
    JSON_VALUES
    | st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "z"]), st.lists(JSON_VALUES, max_size=4), max_size=5
    )
    | st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c", "d", "z"]), JSON_VALUES, max_size=5),
        max_size=4,
    )
)


@settings(max_examples=300, deadline=None)
@given(REQUESTS)
def test_junk_is_either_accepted_or_an_invalid_input(data: Any) -> None:
    sig = infer_signature(
        pd.DataFrame(
            {
                "a": [1, 2],
                "b": [1.5, None],
                "c": ["x", None],
                "d": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            }
        )
    )
    try:
        out = sig.validate(data)
    except InvalidInput:
        return
    assert list(out.columns) == ["a", "b", "c", "d"]
    assert out["a"].dtype == np.int64
    assert out["b"].dtype == np.float64
