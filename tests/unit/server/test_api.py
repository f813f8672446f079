"""The API as a whole: every route declares a role, bad input is a 4xx with a JSON error, never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.routing import APIRoute

from shipyard.server._auth import Role, required_role
from shipyard.server._routes import ROUTERS
from shipyard.server._routes import models as model_routes
from shipyard.server._schemas import MAX_METRICS_PER_BATCH
from shipyard.server._security import MAX_JSON_BODY as MAX_JSON_BYTES

#: Routes that write but need more than an editor, or read-like POSTs a viewer may call.
ROLE_EXCEPTIONS = {
    ("POST", "/api/v1/runs/search"): Role.viewer,
    # Users and tokens are an admin's, reads included (a token list shows who may do what).
    ("GET", "/api/v1/users"): Role.admin,
    ("POST", "/api/v1/users"): Role.admin,
    ("GET", "/api/v1/users/{name}"): Role.admin,
    ("PATCH", "/api/v1/users/{name}"): Role.admin,
    ("GET", "/api/v1/tokens"): Role.admin,
    ("POST", "/api/v1/tokens"): Role.admin,
    ("POST", "/api/v1/tokens/{token_id}/revoke"): Role.admin,
}


def test_every_route_declares_its_least_role() -> None:
    """Reads need a viewer, writes an editor (champion moves check admin inside the route)."""
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 30
    for route in routes:
        for method in route.methods:
            path = f"/api/v1{route.path}"
            expected = ROLE_EXCEPTIONS.get(
                (method, path), Role.viewer if method == "GET" else Role.editor
            )
            assert required_role(route) == expected, (method, path)


def test_champion_is_protected() -> None:
    assert model_routes.PROTECTED_ALIASES == ("champion",)


def test_health_and_spec(api) -> None:  # type: ignore[no-untyped-def]
    spec = api.get("/openapi.json").json()
    assert "/api/v1/runs/{run_id}/batch" in spec["paths"]
    upload = spec["paths"]["/api/v1/runs/{run_id}/artifacts/{path}"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]


def error_of(response) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"code", "message", "hint"}
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def run_id(api) -> str:  # type: ignore[no-untyped-def]
    return api.post("/runs", json={"experiment": "credit"}).json()["run_id"]


def test_malformed_json(api, run_id: str) -> None:  # type: ignore[no-untyped-def]
    for content in [b"{", b"[1, 2", b'{"metrics": [}', b"\xff\xfe", b"null", b"[]", b'"x"']:
        response = api.post(
            f"/runs/{run_id}/batch", content=content, headers={"Content-Type": "application/json"}
        )
        error = error_of(response)
        assert response.status_code == 422
        assert error["code"] == "invalid_input"
    no_type = api.post(f"/runs/{run_id}/batch", content=b'{"metrics": []}')
    assert no_type.status_code in (200, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "a", "value": "high"}]},
        {"metrics": [{"key": "a", "value": True}]},
        {"metrics": [{"key": "a", "value": "nan"}]},
        {"metrics": [{"key": "a", "value": 1, "step": 1.5}]},
        {"metrics": [{"key": "a", "value": 1, "step": "1"}]},
        {"metrics": [{"key": "a", "value": 1, "step": 2**63}]},
        {"metrics": [{"key": "a", "value": 1, "timestamp": -1}]},
        {"metrics": [{"key": "", "value": 1}]},
        {"metrics": [{"key": "k" * 251, "value": 1}]},
        {"metrics": [{"value": 1}]},
        {"metrics": {"a": 1}},
        {"params": {"a": [1, 2]}},
        {"params": {"a": {"b": 1}}},
        {"params": {"a": None}},
        {"params": {"a": "v" * 64_001}},
        {"tags": "team=risk"},
        {"metric": []},  # unknown field
        {"metrics": [{"key": "a", "value": 1, "unit": "s"}]},  # unknown nested field
    ],
)
def test_wrong_types_and_unknown_fields(api, run_id: str, body: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    response = api.post(f"/runs/{run_id}/batch", json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["problems"]
    assert api.get(f"/runs/{run_id}").json()["metrics"] == {}


def test_bad_keys_the_schema_cannot_see(api, run_id: str) -> None:  # type: ignore[no-untyped-def]
    response = api.post(f"/runs/{run_id}/batch", json={"params": {"a\nb": "1"}})
    assert error_of(response)["code"] == "invalid_input"
    assert response.status_code == 400
    named = api.post("/runs", json={"name": "   "})
    assert named.status_code == 400


def test_batches_are_bounded(api, run_id: str) -> None:  # type: ignore[no-untyped-def]
    point = {"key": "loss", "value": 0.5, "step": 1, "timestamp": 1}
    full = api.post(f"/runs/{run_id}/metrics", json={"metrics": [point] * MAX_METRICS_PER_BATCH})
    assert full.status_code == 200, full.text
    over = api.post(
        f"/runs/{run_id}/metrics", json={"metrics": [point] * (MAX_METRICS_PER_BATCH + 1)}
    )
    assert over.status_code == 422
    assert "10000" in json.dumps(error_of(over)) or "10,000" in json.dumps(error_of(over))


def test_huge_bodies_are_refused_before_they_are_read(api, run_id: str) -> None:  # type: ignore[no-untyped-def]
    huge = b'{"params": {"a": "' + b"x" * (MAX_JSON_BYTES + 10) + b'"}}'
    declared = api.post(
        f"/runs/{run_id}/batch", content=huge, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "payload_too_large"

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"params": {"a": "'
        for _ in range(MAX_JSON_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    streamed = api.post(
        f"/runs/{run_id}/batch", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert error_of(streamed)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "path",
    [
        "/experiments?max_results=0",
        "/experiments?max_results=1001",
        "/experiments?max_results=ten",
        "/experiments?page_token=not-a-token",
        "/experiments?page_token=eyJvZmZzZXQiOiAtMX0=",  # {"offset": -1}
        "/runs?max_results=5000",
        "/runs?page_token=%%%",
        "/audit/events?max_results=0",
        "/audit/events?page_token=x",
        "/models?page_token=x",
        "/lineage",
        "/lineage?ref=dataset:credit@1&depth=-1",
        "/datasets/credit/diff?old=1",
    ],
)
def test_bad_query_parameters(api, path: str) -> None:  # type: ignore[no-untyped-def]
    error = error_of(api.get(path))
    assert error["code"] == "invalid_input"


def test_unknown_routes_and_methods(api) -> None:  # type: ignore[no-untyped-def]
    assert error_of(api.get("/nope"))["code"] == "not_found"
    assert api.delete("/experiments").status_code == 405
    assert "error" in api.delete("/experiments").json()
