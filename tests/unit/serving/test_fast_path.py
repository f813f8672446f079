"""The numeric fast path: large batches in every body format get the model's answer, and
every input it is unsure of goes to the signature's check, refused with the same 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import shipyard as sy
from shipyard.errors import InvalidInput
from shipyard.serving import _app, _router
from unit.serving.conftest import BASE, TestClient, credit_frame, fit, make_client, wait_ready

#: Rows of a large batch: past the rows and bytes the event loop handles itself.
ROWS = 2000
COLUMNS = ["income", "age"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module, on SQLite only: the store plays no part in checking input."""
    from shipyard.serving import create_serving_app

    root: Path = tmp_path_factory.mktemp("fast")
    client = make_client(f"sqlite:///{root / 'fast.db'}", root)
    frame = credit_frame(200)
    model = fit(frame)
    sy.log_model(model, "credit", input_example=frame.head(), client=client)
    app = create_serving_app("models:/credit/1", client=client, compact_interval=3600)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as api:
        wait_ready(api)
        api.model = model  # type: ignore[attr-defined]
        yield api


@pytest.fixture(scope="module")
def served(api: TestClient) -> _router.Served:
    current = api.app.state.endpoint.router.current  # type: ignore[attr-defined]
    assert current is not None
    return current


def big_frame() -> pd.DataFrame:
    return credit_frame(ROWS, seed=5)


def rows_of(frame: pd.DataFrame) -> list[list[Any]]:
    return [[float(income), int(age)] for income, age in frame.itertuples(index=False)]


def post_json(api: TestClient, body: Any) -> Any:
    content = json.dumps(body).encode()  # NaN and Infinity go as the literals Python writes
    return api.post("/predict", content=content, headers={"content-type": "application/json"})


def post_arrow(api: TestClient, table: pa.Table) -> Any:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return api.post(
        "/predict",
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )


def answers_as_the_model(response: Any, api: TestClient, frame: pd.DataFrame) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == api.model.predict(frame).tolist()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- accepted


def shapes(frame: pd.DataFrame) -> dict[str, Any]:
    rows = rows_of(frame)
    return {
        "columns and data": {"columns": COLUMNS, "data": rows},
        "columns reordered": {"columns": ["age", "income"], "data": [[a, i] for i, a in rows]},
        "an extra column": {"columns": [*COLUMNS, "x"], "data": [[*r, "any"] for r in rows]},
        "records": {"inputs": [dict(zip(COLUMNS, r, strict=True)) for r in rows]},
        "dict of columns": {"inputs": {c: [r[n] for r in rows] for n, c in enumerate(COLUMNS)}},
    }


@pytest.mark.parametrize("shape", list(shapes(credit_frame(1))))
def test_a_large_json_batch_takes_the_fast_path_and_gets_the_models_answer(
    api: TestClient, served: _router.Served, shape: str
) -> None:
    frame = big_frame()
    body = shapes(frame)[shape]
    payload = _app._parse(json.dumps(body).encode(), "application/json", 10**6)
    columns = served.fast_columns(payload)
    assert columns is not None
    assert columns["age"].dtype.kind == "i"
    assert columns["income"].dtype.kind == "f"
    response = post_json(api, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"] == api.model.predict(frame).tolist()  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        answer["probabilities"],
        api.model.predict_proba(frame),  # type: ignore[attr-defined]
        rtol=0,
        atol=1e-12,
    )


def test_a_large_arrow_batch_of_the_signatures_types_takes_the_fast_path(
    api: TestClient, served: _router.Served
) -> None:
    frame = big_frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert served.fast_columns(table) is not None
    answers_as_the_model(post_arrow(api, table), api, frame)


def test_whole_floats_for_the_integer_column_are_checked_and_accepted(
    api: TestClient, served: _router.Served
) -> None:
    frame = big_frame()
    body = {"columns": COLUMNS, "data": [[i, float(a)] for i, a in rows_of(frame)]}
    assert served.fast_columns(_app._rows_from_json(body)) is None
    answers_as_the_model(post_json(api, body), api, frame)


def test_integers_for_the_float_column_take_the_fast_path(
    api: TestClient, served: _router.Served
) -> None:
    frame = big_frame().assign(income=lambda f: f["income"].round())
    body = {"columns": COLUMNS, "data": [[int(i), a] for i, a in rows_of(frame)]}
    assert served.fast_columns(_app._rows_from_json(body)) is not None
    answers_as_the_model(post_json(api, body), api, frame)


def test_the_fast_path_logs_the_values_as_sent(api: TestClient) -> None:
    from shipyard.serving import predictions

    frame = credit_frame(300, seed=9)
    response = post_json(api, {"columns": COLUMNS, "data": rows_of(frame)})
    ids = set(response.json()["prediction_ids"])
    client = api.app.state.client  # type: ignore[attr-defined]
    logged = predictions("credit", client=client, labels=False).to_pandas()
    logged = logged[logged["prediction_id"].isin(ids)]
    assert logged["inputs.income"].tolist() == frame["income"].tolist()
    assert logged["inputs.age"].tolist() == frame["age"].tolist()
    assert str(logged["inputs.age"].dtype) == "int64"


# ---------------------------------------------------------------- refused

#: name: (how to spoil row 1234 of the batch's [income, age] rows, text a refusal contains)
SPOILED: dict[str, tuple[Any, str]] = {
    "a string in the float column": (lambda r: ["5.0", r[1]], "income"),
    "a string in the integer column": (lambda r: [r[0], "30"], "age"),
    "true in the integer column": (lambda r: [r[0], True], "age"),
    "false in the float column": (lambda r: [False, r[1]], "income"),
    "null where not allowed": (lambda r: [None, r[1]], "income"),
    "NaN where not allowed": (lambda r: [float("nan"), r[1]], "income"),
    "infinity": (lambda r: [float("inf"), r[1]], "refused the input"),
    "a fraction in the integer column": (lambda r: [r[0], 30.5], "age"),
    "an integer beyond int64": (lambda r: [r[0], 2**70], "age"),
    "an integer beyond what a float holds": (lambda r: [2**60 + 1, r[1]], "income"),
    "a list as a value": (lambda r: [[r[0]], r[1]], "income"),
}


def body_of(shape: str, rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "columns and data": {"columns": COLUMNS, "data": rows},
        "records": {"inputs": [dict(zip(COLUMNS, r, strict=True)) for r in rows]},
        "dict of columns": {"inputs": {c: [r[n] for r in rows] for n, c in enumerate(COLUMNS)}},
    }[shape]


def checked_answer(served: _router.Served, content: bytes) -> tuple[int, str | None]:
    """The status and message of ``content`` through the signature's check alone."""
    try:
        payload = _app._parse(content, "application/json", 10**6)
        if isinstance(payload, _router.Table):
            payload = payload.records()
        served.predict(served.validate(payload)[1])
    except InvalidInput as exc:
        return 400, exc.message
    return 200, None


@pytest.mark.parametrize("case", SPOILED)
@pytest.mark.parametrize("shape", ["columns and data", "records", "dict of columns"])
def test_one_unsure_value_in_a_large_batch_is_answered_as_the_check_answers_it(
    api: TestClient, served: _router.Served, case: str, shape: str
) -> None:
    spoil, needle = SPOILED[case]
    rows = rows_of(big_frame())
    rows[1234] = spoil(rows[1234])
    body = body_of(shape, rows)
    content = json.dumps(body).encode()  # NaN and Infinity go as the literals Python writes
    assert served.fast_columns(_app._parse(content, "application/json", 10**6)) is None
    status, message = checked_answer(served, content)
    response = post_json(api, body)
    assert response.status_code == status, response.text
    if status == 400:
        error = response.json()["error"]
        assert error["message"] == message
        assert needle in error["message"]
        assert error["hint"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"columns": COLUMNS, "data": [[1.0, 2]] * 1500 + [[1.0]] + [[1.0, 2]] * 10}, "Row 1500"),
        ({"columns": ["income", "agee"], "data": [[1.0, 2]] * 1500}, "['age']"),
        ({"columns": ["age", "age"], "data": [[1, 2]] * 1500}, "more than once"),
        ({"inputs": [{"income": 1.0, "age": 2}] * 1500 + [{"income": 1.0}]}, "age"),
        ({"inputs": [{"income": 1.0, "age": 2}] * 1500 + [[1.0, 2]]}, "row 1500"),
        ({"inputs": {"income": [1.0] * 1500, "age": [2] * 1499}}, "length"),
    ],
    ids=[
        "ragged row",
        "wrong column name",
        "a column twice",
        "a row short",
        "a row a list",
        "columns of unequal length",
    ],
)
def test_a_badly_shaped_large_batch_is_a_4xx_saying_why(
    api: TestClient, body: Any, needle: str
) -> None:
    response = post_json(api, body)
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]["message"]


def test_many_zeros_and_ones_still_find_a_bool(served: _router.Served) -> None:
    rows = [[1.0, 0] for _ in range(ROWS)]
    assert served.fast_columns(_router.Table(COLUMNS, rows)) is not None
    rows[-1] = [1.0, False]
    assert served.fast_columns(_router.Table(COLUMNS, rows)) is None


ARROW_SPOILED: dict[str, tuple[pa.Table, int, str]] = {
    "a null": (pa.table({"income": [1.0, None] * 1000, "age": [3, 4] * 1000}), 400, "income"),
    "NaN": (pa.table({"income": [1.0, float("nan")] * 1000, "age": [3, 4] * 1000}), 400, "income"),
    "strings": (pa.table({"income": ["1.0"] * 2000, "age": [3] * 2000}), 400, "income"),
    "a missing column": (pa.table({"income": [1.0] * 2000}), 400, "age"),
}


@pytest.mark.parametrize("case", ARROW_SPOILED)
def test_an_arrow_batch_the_fast_path_cannot_take_is_checked(
    api: TestClient, served: _router.Served, case: str
) -> None:
    table, status, needle = ARROW_SPOILED[case]
    assert served.fast_columns(table) is None
    response = post_arrow(api, table)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_an_arrow_batch_of_other_numeric_types_is_cast_by_the_check(
    api: TestClient, served: _router.Served
) -> None:
    frame = big_frame()
    table = pa.table(
        {
            "income": pa.array(frame["income"], pa.float64()),
            "age": pa.array(frame["age"], pa.int32()),
        }
    )
    assert served.fast_columns(table) is None
    answers_as_the_model(post_arrow(api, table), api, frame)
