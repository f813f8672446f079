"""Stored deployments served: the canary's share, the shadow that never answers, updates
followed without a restart, and predictions through the main server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest

import shipyard as sy
from shipyard.serving import create_serving_app, predictions
from shipyard.serving._app import Endpoints, ShadowRunner
from unit.models._models_for_tests import Threshold
from unit.serving.conftest import BASE, credit_frame, fit, make_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ROW = {"inputs": [{"income": 6.0, "age": 40}]}
ROWS = {"inputs": [{"income": 4.0 + i / 10, "age": 20 + i} for i in range(20)]}


@pytest.fixture
def two_versions(client: sy.Client, registered: Any) -> sy.Client:
    """``credit`` v1 (champion) and v2, a model answering the opposite (challenger)."""
    frame = credit_frame(200, seed=1)
    sy.log_model(fit(frame, flip=True), "credit", input_example=frame.head(), client=client)
    client.set_alias("credit", "challenger", 2)
    return client


def post_many(app: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST each body to /predict in turn, in-process, inside the app's lifespan."""

    async def main() -> list[dict[str, Any]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
                deadline = time.monotonic() + 30
                while (await http.get("/ready")).status_code != 200:
                    assert time.monotonic() < deadline, (await http.get("/ready")).json()
                    await asyncio.sleep(0.02)
                answers = []
                for body in bodies:
                    response = await http.post("/predict", json=body)
                    assert response.status_code == 200, response.text
                    answers.append(response.json())
                app.state.endpoint.shadow.wait()
                return answers

    return asyncio.run(main())


def post_raw(app: Any, body: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """POST ``body`` to /predict ``count`` times as bare ASGI calls (no HTTP client in
    between, half the cost per request), inside the app's lifespan."""
    content = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": content, "more_body": False}

    async def main() -> list[dict[str, Any]]:
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + 30
            while not app.state.endpoint.router.ready:
                assert time.monotonic() < deadline, app.state.endpoint.load_error
                await asyncio.sleep(0.02)
            answers = []
            for _ in range(count):
                sent: list[dict[str, Any]] = []

                async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                    sent.append(message)

                await app(dict(scope), receive, send)
                assert sent[0]["status"] == 200, sent
                answers.append(json.loads(b"".join(m.get("body", b"") for m in sent[1:])))
            return answers

    return asyncio.run(main())


@pytest.mark.slow  # some seconds: 10,000 requests through the whole ASGI stack
def test_the_canary_gets_its_share_of_10000_requests(tmp_path: Path) -> None:
    """On SQLite alone (the share is the router's, whatever the store), with cheap models and
    the log off, so 10,000 requests take seconds."""
    client = make_client(f"sqlite:///{tmp_path / 'share.db'}", tmp_path)
    example = pd.DataFrame({"income": [4.0, 6.0], "age": [30, 40]})
    for cut in (5.0, 7.0):
        sy.log_model(Threshold("income", cut), "credit", input_example=example, client=client)
    client.set_alias("credit", "champion", 1)
    client.create_deployment(
        "credit", "models:/credit@champion", canary="models:/credit/2", canary_percent=10
    )
    app = create_serving_app(None, deployment="credit", client=client, log_predictions=False)
    answers = post_raw(app, ROW, 10_000)
    canary = sum(a["model_version"] == "models:/credit/2" for a in answers)
    assert 800 <= canary <= 1200, canary  # 10 % ± 2 %
    assert {a["predictions"][0] for a in answers} == {0, 1}  # 6.0 > 5 but not > 7


def test_a_shadow_changes_no_response_and_is_logged_with_its_version(
    two_versions: sy.Client, tmp_path: Any
) -> None:
    plain = create_serving_app(
        "models:/credit@champion",
        deployment="plain",
        client=two_versions,
        sync=False,
        compact_interval=3600,
    )
    two_versions.create_deployment(
        "credit", "models:/credit@champion", shadow="models:/credit@challenger"
    )
    shadowed = create_serving_app(
        None, deployment="credit", client=two_versions, sync=False, compact_interval=3600
    )
    bodies = [ROWS, ROW, {"columns": ["income", "age"], "data": [[7.5, 30], [3.0, 50]]}]
    without, with_shadow = post_many(plain, bodies), post_many(shadowed, bodies)

    def visible(answers: list[dict[str, Any]]) -> list[Any]:
        return [(a["predictions"], a["probabilities"], a["model_version"]) for a in answers]

    assert visible(with_shadow) == visible(without)
    answered = predictions("credit", client=two_versions)
    assert set(answered.column("role").to_pylist()) == {"primary"}
    every = predictions("credit", shadow=True, client=two_versions)
    shadow = every.filter(pa.compute.equal(every.column("role"), "shadow"))
    assert set(shadow.column("model_version").to_pylist()) == {"models:/credit/2"}
    assert sorted(shadow.column("prediction_id").to_pylist()) == sorted(
        answered.column("prediction_id").to_pylist()
    )  # the same ids: labels for the answer grade the shadow too
    assert shadow.column("prediction").to_pylist() != answered.column("prediction").to_pylist()
    assert shadowed.state.endpoint.shadow.counts == {"done": 3, "dropped": 0, "failed": 0}


def test_a_failing_shadow_never_reaches_the_client(serve, two_versions: sy.Client) -> None:
    other = pd.DataFrame({"region": ["north", "south"] * 10, "size": range(20)})
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier().fit(other[["size"]], other["region"])
    sy.log_model(tree, "zones", input_example=other[["size"]].head(), client=two_versions)
    two_versions.create_deployment("credit", "models:/credit@champion", shadow="models:/zones/1")
    api = serve(None, deployment="credit")
    response = api.post("/predict", json=ROW)
    assert response.status_code == 200
    assert response.json()["model_version"] == "models:/credit/1"
    endpoint = api.app.state.endpoint  # type: ignore[attr-defined]
    endpoint.shadow.wait()
    assert endpoint.shadow.counts["failed"] == 1  # zones has no income or age
    metrics = api.get("/metrics").text
    assert 'shipyard_serving_shadow_requests_total{outcome="failed"} 1' in metrics
    assert predictions("credit", shadow=True, client=two_versions).num_rows == 1


class _Slow:
    """Stands in for a loaded shadow whose prediction waits until released."""

    uri = "models:/slow/1"

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def fast_columns(self, rows: Any) -> None:
        return None

    def validate(self, rows: Any) -> tuple[Any, Any]:
        return pd.DataFrame(rows), rows

    def predict(self, rows: Any) -> Any:
        from shipyard.serving._router import Prediction

        self.entered.set()
        assert self.release.wait(10)
        return Prediction([0] * len(rows), None)


def test_a_shadow_that_falls_behind_drops_requests_instead_of_delaying_them() -> None:
    runner = ShadowRunner(None, capacity=1)
    slow = _Slow()
    runner.submit(slow, [{"x": 1}], ["a"], 0)  # type: ignore[arg-type]
    assert slow.entered.wait(10)
    started = time.perf_counter()
    runner.submit(slow, [{"x": 2}], ["b"], 0)  # type: ignore[arg-type]  # queued
    runner.submit(slow, [{"x": 3}], ["c"], 0)  # type: ignore[arg-type]  # the queue is full
    assert time.perf_counter() - started < 0.5
    assert runner.counts == {"done": 0, "dropped": 1, "failed": 0}
    slow.release.set()
    runner.wait()
    runner.close()
    assert runner.counts == {"done": 2, "dropped": 1, "failed": 0}


def test_an_update_of_the_stored_deployment_is_served_without_a_restart(
    serve, two_versions: sy.Client
) -> None:
    two_versions.create_deployment(
        "credit", "models:/credit@champion", canary="models:/credit/2", canary_percent=50
    )
    api = serve(None, deployment="credit", poll_interval=0.05)
    ready = api.get("/ready").json()
    assert (ready["model"], ready["canary"], ready["canary_percent"]) == (
        "deployment credit",
        "models:/credit/2",
        50.0,
    )
    answered = {api.post("/predict", json=ROW).json()["model_version"] for _ in range(40)}
    assert answered == {"models:/credit/1", "models:/credit/2"}  # 2**-39: never one alone
    logged = predictions("credit", client=two_versions)
    assert sorted({(r["role"], r["model_version"]) for r in logged.to_pylist()}) == [
        ("canary", "models:/credit/2"),
        ("primary", "models:/credit/1"),
    ]
    two_versions.update_deployment("credit", canary=None)
    deadline = time.monotonic() + 5
    while api.get("/ready").json()["canary"] is not None:
        assert time.monotonic() < deadline, "the update was not served within 5 s"
        time.sleep(0.02)
    versions = {api.post("/predict", json=ROW).json()["model_version"] for _ in range(30)}
    assert versions == {"models:/credit/1"}
    two_versions.set_alias("credit", "champion", 2)  # an alias move is followed as well
    deadline = time.monotonic() + 5
    while api.post("/predict", json=ROW).json()["model_version"] != "models:/credit/2":
        assert time.monotonic() < deadline, "the alias move was not served within 5 s"
        time.sleep(0.02)


def test_serving_a_deployment_needs_a_uri_or_a_name(client: sy.Client) -> None:
    from shipyard.errors import InvalidInput

    with pytest.raises(InvalidInput, match="model URI or the name of a stored deployment"):
        create_serving_app(None, client=client)


# ------------------------------------------------------------------ the main server


@pytest.fixture
def server(two_versions: sy.Client) -> TestClient:
    from shipyard.server import create_app

    app = create_app(two_versions)
    app.state.endpoints = Endpoints(two_versions, poll_interval=0.05)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def test_the_main_server_predicts_through_a_stored_deployment(
    server: TestClient, two_versions: sy.Client
) -> None:
    created = server.post(
        "/api/v1/deployments",
        json={"name": "credit", "model": "models:/credit@champion", "shadow": "models:/credit/2"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["shadow_uri"] == "models:/credit/2"
    answer = server.post("/api/v1/deployments/credit/predict", json=ROWS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "models:/credit/1"
    assert len(body["predictions"]) == len(body["prediction_ids"]) == 20
    assert len(body["probabilities"][0]) == 2

    sink = pa.BufferOutputStream()
    table = pa.table({"income": [6.0, 2.0], "age": [40, 50]})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = server.post(
        "/api/v1/deployments/credit/predict",
        content=sink.getvalue().to_pybytes(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert arrow.status_code == 200, arrow.text
    assert len(arrow.json()["prediction_ids"]) == 2

    two_versions.set_alias("credit", "champion", 2)  # followed, like `shipyard serve` does
    deadline = time.monotonic() + 5
    while (
        server.post("/api/v1/deployments/credit/predict", json=ROW).json()["model_version"]
        != "models:/credit/2"
    ):
        assert time.monotonic() < deadline, "the alias move was not followed within 5 s"
        time.sleep(0.02)
    server.app.state.endpoints.close()  # type: ignore[attr-defined]
    logged = predictions("credit", client=two_versions)
    assert logged.num_rows >= 23
    assert predictions("credit", shadow=True, client=two_versions).num_rows > logged.num_rows


def test_the_main_server_refuses_unknown_deployments_and_bad_bodies(
    server: TestClient, two_versions: sy.Client
) -> None:
    unknown = server.post("/api/v1/deployments/nope/predict", json=ROW)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert "No deployment 'nope'" in unknown.json()["error"]["message"]
    bad_name = server.post("/api/v1/deployments/a..b/predict", json=ROW)
    assert bad_name.status_code == 400
    assert set(bad_name.json()["error"]) >= {"code", "message", "hint"}

    two_versions.create_deployment("credit", "models:/credit@champion")
    bad_row = server.post("/api/v1/deployments/credit/predict", json={"inputs": [{"income": 1}]})
    assert bad_row.status_code == 400
    assert "age" in bad_row.json()["error"]["message"]
    not_json = server.post("/api/v1/deployments/credit/predict", content=b"{")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "malformed_body"
    media = server.post(
        "/api/v1/deployments/credit/predict", content=b"x", headers={"Content-Type": "text/csv"}
    )
    assert media.status_code == 415
    assert media.json()["error"]["hint"]

    two_versions.delete_deployment("credit")  # deleted: refused once the server notices
    deadline = time.monotonic() + 5
    while server.post("/api/v1/deployments/credit/predict", json=ROW).status_code != 404:
        assert time.monotonic() < deadline, "the deleted deployment was still served after 5 s"
        time.sleep(0.02)


def test_the_rest_api_refuses_bad_definitions(server: TestClient) -> None:
    def error(response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) >= {"code", "message", "hint"}
        return response.json()["error"]

    base = {"name": "credit", "model": "models:/credit@champion"}
    assert error(server.post("/api/v1/deployments", json={**base, "canary_percent": 5}), 400)[
        "message"
    ].startswith("canary_percent=5 needs a canary")
    assert error(server.post("/api/v1/deployments", json={**base, "model": "x"}), 400)
    assert error(server.post("/api/v1/deployments", json={**base, "model": "models:/no/1"}), 404)
    assert error(server.post("/api/v1/deployments", json={**base, "colour": "red"}), 422)
    assert error(server.post("/api/v1/deployments", json={**base, "canary_percent": "5"}), 422)
    assert server.post("/api/v1/deployments", json=base).status_code == 201
    assert error(server.post("/api/v1/deployments", json=base), 409)
    assert error(server.patch("/api/v1/deployments/credit", json={"model": None}), 400)
    assert error(server.patch("/api/v1/deployments/nope", json={"shadow": None}), 404)
    assert error(server.get("/api/v1/deployments?page_token=x"), 400)
    patched = server.patch(
        "/api/v1/deployments/credit",
        json={"canary": "models:/credit/2", "canary_percent": 20, "description": "d"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["canary_percent"], patched.json()["description"]) == (20.0, "d")
    listed = server.get("/api/v1/deployments?max_results=1").json()
    assert [d["name"] for d in listed["items"]] == ["credit"]
    assert server.delete("/api/v1/deployments/credit").json()["name"] == "credit"
    assert error(server.get("/api/v1/deployments/credit"), 404)
