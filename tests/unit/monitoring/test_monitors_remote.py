"""Monitors through a Shipyard server: the same calls over REST, computation on the caller's side,
and the routes' answers to bad input."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.monitoring import create_monitor, monitor_results, run_monitor
from shipyard.server import create_app
from shipyard.serving import predictions
from shipyard.tracking._remote import RemoteClient
from unit.monitoring.test_monitors import FIRST, HOUR, T0, label, with_dataset, write

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

API = "http://127.0.0.1/api/v1"


@pytest.fixture
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> sy.Client:
    """The server's store: both backends for tests that take ``store_uri``, else SQLite."""
    if "store_uri" in request.fixturenames:
        uri = request.getfixturevalue("store_uri")
    else:
        uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    settings = Settings.load(
        uri=uri, artifacts=str(tmp_path / "blobs"), home=str(tmp_path / "home")
    )
    return with_dataset(sy.Client(settings=settings))


@pytest.fixture
def http(backing: sy.Client) -> Iterator[TestClient]:
    with TestClient(create_app(backing), base_url=API) as test_client:
        yield test_client


@pytest.fixture
def remote(backing: sy.Client, http: TestClient) -> RemoteClient:
    """A RemoteClient whose requests go to the app in process; same home and blobs folder."""
    settings = Settings.load(
        uri="http://127.0.0.1:9",
        artifacts=backing.settings.artifacts,
        home=str(backing.settings.home),
    )
    client = sy.Client(settings=settings)
    assert isinstance(client, RemoteClient)
    client._http = http
    return client


def test_a_monitor_over_rest_is_the_monitor_in_the_store(
    remote: RemoteClient, backing: sy.Client, store_uri: str
) -> None:
    made = create_monitor(
        "credit", "dataset:credit@1", window="1h", target="default", client=remote
    )
    assert backing.get_monitor("credit") == made
    assert remote.list_monitors() == [made]
    assert remote.list_monitors("other") == []
    with pytest.raises(AlreadyExists):
        create_monitor("credit", "dataset:credit@1", window="1h", client=remote)

    write(backing, T0, 100)
    write(backing, T0 + HOUR, 100, shift=3, seed=2)
    label(backing, predictions("credit", client=backing).column("prediction_id").to_pylist()[:50])
    done = run_monitor("credit", client=remote, now=T0 + 2 * HOUR)
    assert [w.number for w in done.evaluated] == [FIRST, FIRST + 1]
    assert backing.monitor_windows("credit", results=True) == list(done.evaluated)
    assert run_monitor("credit", client=remote, now=T0 + 2 * HOUR).nothing_new
    assert monitor_results("credit", client=remote).equals(
        monitor_results("credit", client=backing)
    )
    assert remote.monitor_windows("credit", limit=1)[0].number == FIRST + 1

    assert remote.delete_monitor("credit").windows == 2
    with pytest.raises(NotFound):
        remote.get_monitor("credit")


def test_the_routes_refuse_bad_input(http: TestClient, remote: RemoteClient) -> None:
    digest = remote._put_monitor_reference(b"SHIPYARD-DRIFT-REFERENCE\n...")
    body = {
        "name": "credit",
        "deployment": "credit",
        "reference": "dataset:credit@1",
        "reference_digest": digest,
        "window_seconds": 3600,
    }
    for change, status, code in [
        ({"window_rows": 10}, 400, "invalid_input"),  # both
        ({"window_seconds": None}, 400, "invalid_input"),  # neither
        ({"window_seconds": 5}, 422, "invalid_input"),
        ({"name": "two words"}, 400, "invalid_input"),
        ({"reference": "credit"}, 400, "invalid_input"),
        ({"reference_digest": "sha256:" + "0" * 64}, 404, "not_found"),
        ({"thresholds": {"ks": -1}}, 422, "invalid_input"),
        ({"task": "clustering"}, 422, "invalid_input"),
        ({"surprise": 1}, 422, "invalid_input"),
    ]:
        answer = http.post("/monitors", json={**body, **change})
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), change
        assert answer.json()["error"]["message"]
    assert http.post("/monitors", json=body).status_code == 201
    for path in ("/monitors/nope", "/monitors/nope/windows", "/monitors/nope/reference"):
        answer = http.get(path)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
    window = {
        "number": 1,
        "start": 0,
        "end": 10,
        "rows": 3,
        "labelled": 0,
        "drift_share": 2.0,
        "metrics": {},
        "evaluated_at": 1,
        "results": [],
    }
    refused = http.post("/monitors/credit/windows", json={"windows": [window]})
    assert refused.status_code == 422
    assert http.post("/monitors/credit/windows", json={"windows": []}).status_code == 422
    empty = http.post("/monitors/_reference", content=b"")
    assert (empty.status_code, empty.json()["error"]["code"]) == (400, "invalid_input")
    with pytest.raises(InvalidInput):
        remote._set_monitor_task("credit", "clustering")
