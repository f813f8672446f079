"""POST /predict: every body format gives the model's answer; every bad body a 4xx naming why."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shipyard as sy
from unit.serving.conftest import (
    BASE,
    TestClient,
    credit_frame,
    fit,
    make_client,
    wait_ready,
)

ROWS = [{"income": 6.5, "age": 30}, {"income": 3.0, "age": 71}, {"income": 5.2, "age": 45}]


def expected(model: Any, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]]]:
    frame = pd.DataFrame(rows).astype({"income": "float64", "age": "int64"})
    return model.predict(frame).tolist(), model.predict_proba(frame).tolist()


def arrow_body(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def parquet_body(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


BODIES = {
    "json rows": lambda rows: ({"json": {"inputs": rows}}),
    "json columns": lambda rows: (
        {"json": {"columns": ["income", "age"], "data": [[r["income"], r["age"]] for r in rows]}}
    ),
    "json dict of columns": lambda rows: (
        {"json": {"inputs": {k: [r[k] for r in rows] for k in ("income", "age")}}}
    ),
    "arrow": lambda rows: {
        "content": arrow_body(rows),
        "headers": {"content-type": "application/vnd.apache.arrow.stream"},
    },
    "parquet": lambda rows: {
        "content": parquet_body(rows),
        "headers": {"content-type": "application/x-parquet"},
    },
}


@pytest.mark.parametrize("kind", BODIES)
def test_every_body_format_gets_the_models_predictions(serve, registered, kind: str) -> None:
    api = serve()
    response = api.post("/predict", **BODIES[kind](ROWS))
    assert response.status_code == 200, response.text
    body = response.json()
    labels, proba = expected(registered, ROWS)
    assert body["predictions"] == labels
    np.testing.assert_allclose(body["probabilities"], proba, rtol=0, atol=1e-12)
    assert body["model_version"] == "models:/credit/1"
    assert len(body["prediction_ids"]) == len(ROWS) == len(set(body["prediction_ids"]))


def test_whole_floats_for_an_integer_column_take_the_checked_path(serve, registered) -> None:
    api = serve()
    fast = api.post("/predict", json={"inputs": [{"income": 6.5, "age": 30}]}).json()
    slow = api.post("/predict", json={"inputs": [{"income": 6.5, "age": 30.0}]}).json()
    assert fast["predictions"] == slow["predictions"]
    assert fast["probabilities"] == slow["probabilities"]


def test_prediction_ids_are_unique_across_requests(serve, registered) -> None:
    api = serve()
    ids: list[str] = []
    for _ in range(30):
        ids += api.post("/predict", json={"inputs": ROWS}).json()["prediction_ids"]
    assert len(ids) == len(set(ids)) == 90
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_large_batch_runs_and_matches(serve, registered) -> None:
    frame = credit_frame(5000, seed=3)
    api = serve()
    response = api.post(
        "/predict",
        content=parquet_body(frame.to_dict("records")),
        headers={"content-type": "application/x-parquet"},
    )
    assert response.status_code == 200
    assert response.json()["predictions"] == registered.predict(frame).tolist()


def test_the_onnx_runtime_predicts_the_same(serve, registered, client) -> None:
    sy.export_onnx("models:/credit/1", client=client)
    native = serve(runtime="native").post("/predict", json={"inputs": ROWS}).json()
    onnx_api = serve(runtime="auto")
    assert onnx_api.get("/ready").json()["runtime"] == "onnx"
    onnx = onnx_api.post("/predict", json={"inputs": ROWS}).json()
    assert onnx["predictions"] == native["predictions"]
    # The tolerance export_onnx checked: |onnx - native| <= 1e-5 * max(1, |native|).
    np.testing.assert_allclose(onnx["probabilities"], native["probabilities"], atol=1e-5)


def test_runtime_onnx_without_an_export_is_not_ready(serve, registered) -> None:
    api = serve(runtime="onnx", ready=False)
    response = api.post("/predict", json={"inputs": ROWS})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"


# ---------------------------------------------------------------- bad input

BAD_JSON: dict[str, tuple[Any, int, str]] = {
    # name: (body, status, text the message must contain)
    "missing column": ({"inputs": [{"income": 5.0}]}, 400, "age"),
    "string for a number": ({"inputs": [{"income": "5", "age": 30}]}, 400, "income"),
    "bool for a number": ({"inputs": [{"income": 5.0, "age": True}]}, 400, "age"),
    "null not allowed": ({"inputs": [{"income": None, "age": 30}]}, 400, "income"),
    "fraction for an integer": ({"inputs": [{"income": 5.0, "age": 30.5}]}, 400, "age"),
    "huge integer": ({"inputs": [{"income": 5.0, "age": 2**70}]}, 400, "age"),
    "list as a value": ({"inputs": [{"income": [1], "age": 30}]}, 400, "income"),
    "empty batch": ({"inputs": []}, 400, "no rows"),
    "empty columns": ({"columns": ["income", "age"], "data": []}, 400, "no rows"),
    "not an object": ([1, 2], 400, "JSON object"),
    "no inputs key": ({"rows": []}, 400, "inputs"),
    "extra key": ({"inputs": [{"income": 5.0, "age": 30}], "x": 1}, 400, "'x'"),
    "row not an object": ({"inputs": [[5.0, 30]]}, 400, "named columns"),
    "columns without data": ({"columns": ["income", "age"]}, 400, "'data'"),
    "short data row": ({"columns": ["income", "age"], "data": [[5.0]]}, 400, "Row 0"),
    "duplicate columns": ({"columns": ["age", "age"], "data": [[1, 2]]}, 400, "age"),
    "column names not strings": ({"columns": [1, 2], "data": [[1, 2]]}, 400, "column names"),
    "inputs a number": ({"inputs": 3}, 400, "inputs"),
}


@pytest.mark.parametrize("case", BAD_JSON)
def test_bad_json_input_is_a_4xx_json_error_that_says_why(serve, registered, case: str) -> None:
    body, status, needle = BAD_JSON[case]
    response = serve().post("/predict", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"], error
    assert error["code"]
    assert error["hint"] is not None


RAW: dict[str, tuple[bytes, str, int, str]] = {
    "malformed json": (b'{"inputs": [', "application/json", 400, "not valid JSON"),
    "not utf-8": (b'{"inputs": "\xff"}', "application/json", 400, "not valid JSON"),
    "empty body": (b"", "application/json", 400, "empty"),
    "deep nesting": (b"[" * 100_000, "application/json", 400, "not valid JSON"),
    "nan literal": (b'{"inputs": [{"income": NaN, "age": 3}]}', "application/json", 400, "income"),
    "infinity literal": (
        b'{"inputs": [{"income": Infinity, "age": 3}]}',
        "application/json",
        400,
        "refused the input",
    ),
    "garbage arrow": (b"not arrow", "application/vnd.apache.arrow.stream", 400, "Arrow"),
    "garbage parquet": (b"PAR1 nope", "application/x-parquet", 400, "Parquet"),
    "unknown media type": (b"income,age\n1,2\n", "text/csv", 415, "text/csv"),
}


@pytest.mark.parametrize("case", RAW)
def test_bad_raw_bodies_are_4xx_json_errors(serve, registered, case: str) -> None:
    content, media, status, needle = RAW[case]
    response = serve().post("/predict", content=content, headers={"content-type": media})
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_arrow_with_a_wrong_type_names_the_column(serve, registered) -> None:
    rows = [{"income": "high", "age": 30}]
    response = serve().post(
        "/predict",
        content=arrow_body(rows),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert response.status_code == 400
    assert "'income'" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_413(serve, registered) -> None:
    api = serve(max_body_size=1000)
    response = api.post("/predict", json={"inputs": ROWS * 50})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "1,000 bytes" in response.json()["error"]["message"]


def test_more_rows_than_allowed_is_413(serve, registered) -> None:
    api = serve(max_rows=2)
    for kwargs in (
        {"json": {"inputs": ROWS}},
        {"content": parquet_body(ROWS), "headers": {"content-type": "application/x-parquet"}},
    ):
        response = api.post("/predict", **kwargs)
        assert response.status_code == 413, response.text


def test_refusals_are_not_logged(serve, registered, client) -> None:
    from shipyard.serving import predictions

    api = serve()
    api.post("/predict", json={"inputs": [{"income": "x", "age": 1}]})
    api.post("/predict", json={"inputs": ROWS[:1]})
    assert predictions("credit", client=client).num_rows == 1


# ---------------------------------------------------------------- fuzzing

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_rows = st.dictionaries(st.sampled_from(["income", "age", "other", ""]), _values, max_size=4)
_bodies = st.one_of(
    st.builds(lambda rows: {"inputs": rows}, st.lists(_rows, max_size=4)),
    st.builds(
        lambda cols: {"inputs": cols},
        st.dictionaries(
            st.sampled_from(["income", "age"]),
            st.lists(_scalars, max_size=3) | _scalars,
            max_size=2,
        ),
    ),
    st.builds(
        lambda cols, data: {"columns": cols, "data": data},
        st.lists(st.sampled_from(["income", "age", "x"]) | _scalars, max_size=3),
        st.lists(st.lists(_scalars, max_size=3) | _scalars, max_size=3),
    ),
    _values,
)


@pytest.fixture
def fuzz_api(tmp_path):  # type: ignore[no-untyped-def]
    """One app for every example, on SQLite only: the store plays no part in checking input."""
    from shipyard.serving import create_serving_app

    client = make_client(f"sqlite:///{tmp_path / 'fuzz.db'}", tmp_path)
    frame = credit_frame(100)
    sy.log_model(fit(frame), "credit", input_example=frame.head(), client=client)
    app = create_serving_app("models:/credit/1", client=client, compact_interval=3600)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as api:
        wait_ready(api)
        yield api


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_bodies)
def test_fuzzed_json_bodies_never_get_a_5xx(fuzz_api, body: Any) -> None:
    content = json.dumps(body).encode()  # NaN and Infinity go as JSON literals Python reads
    response = fuzz_api.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, (body, response.text)
    if response.status_code != 200:
        assert "error" in response.json()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=200),
    media=st.sampled_from(
        ["application/json", "application/x-parquet", "application/vnd.apache.arrow.stream"]
    ),
)
def test_fuzzed_raw_bytes_never_get_a_5xx(fuzz_api, content: bytes, media: str) -> None:
    response = fuzz_api.post("/predict", content=content, headers={"content-type": media})
    assert response.status_code < 500, (content, response.text)
