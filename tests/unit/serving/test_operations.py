"""Operations: /health, /ready, /metrics, /labels, hot swap, auth, and the `serve` command."""

from __future__ import annotations

import re
import time

import pytest
from click.testing import CliRunner

import shipyard as sy
from shipyard.serving import predictions
from unit.serving.conftest import credit_frame, fit

ROW = {"inputs": [{"income": 6.0, "age": 40}]}
_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>([a-zA-Z_]\w*="([^"\\]|\\.)*",?)*)\})? '
    r"(?P<value>[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|Inf|NaN))$"
)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format: every line a comment or a sample; {name{labels}: value}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        key = match.group("name") + (
            f"{{{match.group('labels')}}}" if match.group("labels") else ""
        )
        samples[key] = float(match.group("value").replace("Inf", "inf"))
    return samples


def test_ready_is_503_until_the_model_loads(serve, client) -> None:
    api = serve(ready=False, poll_interval=0.05)
    assert api.get("/health").json()["status"] == "ok"
    deadline = time.monotonic() + 20
    while (response := api.get("/ready")).json()["error"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert "credit" in response.json()["error"]  # no such model yet: says why
    assert api.post("/predict", json=ROW).status_code == 503
    frame = credit_frame(50)
    sy.log_model(fit(frame), "credit", input_example=frame.head(), client=client)
    client.set_alias("credit", "champion", 1)
    deadline = time.monotonic() + 20
    while api.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get("/ready").json()["model_version"] == "models:/credit/1"
    assert api.post("/predict", json=ROW).status_code == 200


def test_metrics_are_prometheus_text_and_count(serve, registered) -> None:
    api = serve()
    for _ in range(3):
        api.post("/predict", json=ROW)
    api.post("/predict", json={"inputs": [{"income": "x", "age": 1}]})
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(response.text)
    assert samples['shipyard_serving_requests_total{route="predict",status="200"}'] == 3
    assert samples['shipyard_serving_requests_total{route="predict",status="400"}'] == 1
    assert samples['shipyard_serving_errors_total{code="invalid_input"}'] == 1
    assert samples["shipyard_serving_request_duration_seconds_count"] == 3
    assert samples['shipyard_serving_request_duration_seconds_bucket{le="+Inf"}'] == 3
    assert samples['shipyard_serving_model_version_info{model_version="models:/credit/1"}'] == 1
    assert samples['shipyard_serving_log_backlog{what="records"}'] == 0
    assert samples['shipyard_serving_log_backlog{what="bytes"}'] > 0
    assert samples["shipyard_serving_predictions_total"] == 3


def test_labels_route_stores_and_reports_unknown_ids(serve, registered, client) -> None:
    api = serve()
    ids = api.post("/predict", json={"inputs": ROW["inputs"] * 2}).json()["prediction_ids"]
    response = api.post(
        "/labels",
        json=[{"prediction_id": ids[1], "label": 1}, {"prediction_id": "f" * 32, "label": 0}],
    )
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "unknown": ["f" * 32]}
    table = predictions("credit", client=client)
    assert table.column("label").to_pylist() == [None, 1]
    bad = api.post("/labels", json={"prediction_id": ids[0]})
    assert bad.status_code == 400
    assert "non-empty list" in bad.json()["error"]["message"]
    assert api.post("/labels", content=b"[").status_code == 400


def test_without_a_log_labels_are_a_conflict_and_nothing_is_written(
    serve, registered, client
) -> None:
    api = serve(log_predictions=False)
    assert api.post("/predict", json=ROW).status_code == 200
    response = api.post("/labels", json=[{"prediction_id": "a", "label": 1}])
    assert response.status_code == 409
    assert predictions("credit", client=client).num_rows == 0


def test_the_alias_move_is_served_without_a_restart(serve, registered, client) -> None:
    api = serve(poll_interval=0.05)
    assert api.post("/predict", json=ROW).json()["model_version"] == "models:/credit/1"
    frame = credit_frame(50, seed=2)
    sy.log_model(fit(frame, flip=True), "credit", input_example=frame.head(), client=client)
    client.set_alias("credit", "champion", 2)
    deadline = time.monotonic() + 5
    while api.post("/predict", json=ROW).json()["model_version"] != "models:/credit/2":
        assert time.monotonic() < deadline, "the new version was not served within 5 s"
        time.sleep(0.02)
    assert parse_metrics(api.get("/metrics").text)["shipyard_serving_model_swaps_total"] == 2
    versions = set(predictions("credit", client=client).column("model_version").to_pylist())
    assert versions == {"models:/credit/1", "models:/credit/2"}


def test_a_pinned_version_is_served_as_is(serve, registered, client) -> None:
    api = serve("models:/credit/1", poll_interval=0.05)
    client.set_alias("credit", "champion", 1)
    assert api.get("/ready").json()["model_version"] == "models:/credit/1"


def test_with_auth_a_token_is_required(serve, registered, client) -> None:
    api = serve(auth=True, ready=False)
    assert api.get("/health").status_code == 200
    assert api.post("/predict", json=ROW).status_code == 401
    client.create_user("ana", "viewer")
    _, token = client.create_token("ana")
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 20
    while api.get("/ready", headers=headers).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.post("/predict", json=ROW, headers=headers).status_code == 200
    labels = api.post("/labels", json=[{"prediction_id": "a", "label": 1}], headers=headers)
    assert labels.status_code == 403  # labels need an editor


def test_a_foreign_host_header_is_refused(serve, registered) -> None:
    api = serve()
    response = api.post("/predict", json=ROW, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_host"


def test_the_app_refuses_a_bad_runtime_or_uri(client) -> None:
    from shipyard.errors import InvalidInput
    from shipyard.serving import create_serving_app

    with pytest.raises(InvalidInput, match="runtime"):
        create_serving_app("models:/credit@champion", client=client, runtime="gpu")
    with pytest.raises(InvalidInput, match="model URI"):
        create_serving_app("credit", client=client)
    with pytest.raises(InvalidInput, match="deployment name"):
        create_serving_app("models:/credit/1", deployment="a/b", client=client)


def test_serve_refuses_a_public_address_without_auth(client) -> None:
    from shipyard.cli._app import cli
    from shipyard.cli._serving import serve

    if "serve" not in cli.commands:
        cli.add_command(serve)
    result = CliRunner().invoke(cli, ["serve", "models:/credit@champion", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "Refusing to serve on 0.0.0.0 without authentication" in result.output
    result = CliRunner().invoke(cli, ["serve", "nope"])
    assert result.exit_code == 1
    assert "Bad model URI" in result.output
