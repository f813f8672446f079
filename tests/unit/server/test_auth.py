"""Authentication, roles and the server's walls, checked route by route from the route table.

Every API route must declare the least role it needs; then, for every route:
no token gets 401, a viewer on a write gets 403, an editor on an admin route
gets 403, and a token of exactly the declared role gets past both. These
refusals happen before the body is read (see ``shipyard.server._auth``), so
the requests carry placeholder path parameters and no body.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request

import shipyard as sy
from shipyard.errors import ConfigError
from shipyard.server import _app, _auth, _security, create_app
from shipyard.server._auth import Role

with warnings.catch_warnings():
    # Starlette would rather its test client ran on httpx2; httpx still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE = "http://127.0.0.1"


@pytest.fixture
def store_client(store_uri: str, tmp_path: Path) -> sy.Client:
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


@pytest.fixture
def tokens(store_client: sy.Client) -> dict[Role, dict[str, str]]:
    """An Authorization header for a user of each role (named after the role)."""
    headers = {}
    for role in Role:
        store_client.create_user(role.name, role.name)
        _, token = store_client.create_token(role.name)
        headers[role] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture
def app(store_client: sy.Client) -> FastAPI:
    return create_app(store_client, auth=True)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        yield client


def code_of(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["error"]["code"]


# --------------------------------------------------------------- the route table

PLACEHOLDERS = {"int": "1", "path": "x/y.txt", "float": "1.5"}


def url_of(path: str) -> str:
    """``path`` with each ``{param}`` or ``{param:convertor}`` filled with a placeholder."""
    return re.sub(
        r"\{[^}:]+(?::([^}]+))?\}", lambda m: PLACEHOLDERS.get(m.group(1) or "", "x"), path
    )


def calls(app: FastAPI) -> list[tuple[str, str, Role | None]]:
    """(method, path template, declared role) for every API route under /api/v1."""
    found = []
    for route in _auth.api_routes(app):
        if not route.path.startswith(_app.API_PREFIX):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, _auth.required_role(route)))
    return found


def test_every_api_route_declares_the_role_it_needs(app: FastAPI) -> None:
    table = calls(app)
    assert len(table) > 20, "the route table looks empty: is the API mounted?"
    undeclared = [f"{method} {path}" for method, path, role in table if role is None]
    assert undeclared == [], (
        "these routes declare no role; add `principal: Viewer|Editor|Admin` "
        f"(Depends(requires(Role.X))): {undeclared}"
    )


def test_a_route_without_a_declared_role_is_found_and_refused_to_all_but_admins(
    store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    app = create_app(store_client, auth=True)

    @app.post("/api/v1/_test/forgotten")
    def forgotten(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    assert ("POST", "/api/v1/_test/forgotten", None) in calls(app)
    with TestClient(app, base_url=BASE) as http:
        refused = http.post("/api/v1/_test/forgotten", headers=tokens[Role.editor], json={})
        assert (refused.status_code, code_of(refused)) == (403, "permission_denied")
        assert "admin" in refused.json()["error"]["message"]
        assert http.post("/api/v1/_test/forgotten", headers=tokens[Role.admin]).status_code == 200


def test_every_route_refuses_no_token_and_too_low_a_role(
    app: FastAPI, http: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    failures = []
    table = calls(app)
    assert any(role is Role.admin for *_, role in table)
    assert any(role is Role.editor for *_, role in table)
    for method, path, role in table:
        assert role is not None, f"{method} {path} declares no role"
        url = url_of(path)
        name = f"{method} {path}"

        anonymous = http.request(method, url)
        if anonymous.status_code != 401 or code_of(anonymous) != "unauthenticated":
            failures.append(f"{name} without a token: {anonymous.status_code} {anonymous.text}")
        elif not anonymous.headers.get("www-authenticate", "").startswith("Bearer"):
            failures.append(f"{name} without a token: no WWW-Authenticate: Bearer")

        for caller in Role:
            response = http.request(method, url, headers=tokens[caller])
            if caller < role:
                if response.status_code != 403 or code_of(response) != "permission_denied":
                    failures.append(f"{name} as {caller.name}: {response.status_code}, not 403")
                elif role.name not in response.json()["error"]["message"]:
                    failures.append(f"{name} as {caller.name}: 403 does not name {role.name}")
            elif response.status_code in (401, 403):
                failures.append(f"{name} as {caller.name}: refused ({response.status_code})")
    assert failures == []


def test_roles_are_checked_before_the_body_is_read_or_parsed(
    store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    app = create_app(store_client, auth=True, max_body_size=1000)
    broken = {"Content-Type": "application/json"}
    with TestClient(app, base_url=BASE) as http:
        # Malformed JSON does not turn a 401 or a 403 into a 422...
        assert http.post("/api/v1/experiments", content="{", headers=broken).status_code == 401
        viewer = {**broken, **tokens[Role.viewer]}
        assert http.post("/api/v1/experiments", content="{", headers=viewer).status_code == 403
        # ...nor does a body over the cap turn it into a 413...
        big = json.dumps({"name": "x" * 5000})
        assert http.post("/api/v1/experiments", content=big, headers=viewer).status_code == 403
        # ...while the editor's own malformed or oversized body is theirs to fix.
        editor = {**broken, **tokens[Role.editor]}
        bad = http.post("/api/v1/experiments", content="{", headers=editor)
        assert (bad.status_code, code_of(bad)) == (422, "invalid_input")
        too_big = http.post("/api/v1/experiments", content=big, headers=editor)
        assert (too_big.status_code, code_of(too_big)) == (413, "payload_too_large")


# ------------------------------------------------------------------------ tokens


def test_health_needs_no_token(http: TestClient) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_spec_and_unknown_paths_need_a_token(
    http: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    assert http.get("/api/v1/openapi.json").status_code == 401
    assert http.get("/api/v1/openapi.json", headers=tokens[Role.viewer]).status_code == 200
    assert http.get("/api/v1/no-such-thing").status_code == 401
    assert http.get("/api/v1/no-such-thing", headers=tokens[Role.viewer]).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "Token sy_0123456789ab_abc",
        "Bearer sy_0123456789ab_abc",
        "Bearer not-a-token",
        "Bearer a b",
    ],
)
def test_a_bad_authorization_header_gets_401(
    http: TestClient, tokens: dict[Role, dict[str, str]], header: str
) -> None:
    response = http.get("/api/v1/experiments", headers={"Authorization": header})
    assert (response.status_code, code_of(response)) == (401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["hint"]


def test_the_actor_of_a_write_is_the_tokens_user(
    http: TestClient, store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    created = http.post("/api/v1/experiments", json={"name": "credit"}, headers=tokens[Role.editor])
    assert created.status_code == 201, created.text
    (event,) = store_client.audit_events(object_type="experiment")
    assert (event.action, event.actor) == ("experiment.create", "editor")
    user = http.post(
        "/api/v1/users", json={"name": "ann", "role": "viewer"}, headers=tokens[Role.admin]
    )
    assert user.status_code == 201, user.text
    assert store_client.audit_events(object_type="user", object_id="ann")[0].actor == "admin"


def test_a_revoked_token_is_refused_on_the_next_request(
    http: TestClient, store_client: sy.Client
) -> None:
    store_client.create_user("alice", "viewer")
    record, token = store_client.create_token("alice")
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/v1/experiments", headers=headers).status_code == 200
    # Revoked through another client, as another replica or the CLI would.
    sy.Client(store_client.settings.uri).revoke_token(record.token_id)
    refused = http.get("/api/v1/experiments", headers=headers)
    assert (refused.status_code, code_of(refused)) == (401, "unauthenticated")


def test_a_disabled_user_or_an_expired_token_is_refused(
    http: TestClient, store_client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.tracking import _client

    store_client.create_user("alice", "editor")
    _, token = store_client.create_token("alice")
    record, expiring = store_client.create_token("alice", expires_days=1)
    headers = {"Authorization": f"Bearer {token}"}
    store_client.disable_user("alice")
    assert http.get("/api/v1/experiments", headers=headers).status_code == 401
    store_client.disable_user("alice", disabled=False)
    assert http.get("/api/v1/experiments", headers=headers).status_code == 200

    assert record.expires_at is not None
    monkeypatch.setattr(_client, "_now_ms", lambda: record.expires_at)
    expired = http.get("/api/v1/experiments", headers={"Authorization": f"Bearer {expiring}"})
    assert expired.status_code == 401


def test_a_role_change_applies_on_the_next_request(
    http: TestClient, store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    body = {"name": "credit"}
    assert (
        http.post("/api/v1/experiments", json=body, headers=tokens[Role.viewer]).status_code == 403
    )
    store_client.set_user_role("viewer", "editor")
    assert (
        http.post("/api/v1/experiments", json=body, headers=tokens[Role.viewer]).status_code == 201
    )


def test_without_auth_every_caller_acts_as_the_servers_actor(store_client: sy.Client) -> None:
    with TestClient(create_app(store_client), base_url=BASE) as http:
        assert http.post("/api/v1/experiments", json={"name": "e"}).status_code == 201
    (event,) = store_client.audit_events(object_type="experiment")
    assert event.actor == store_client.actor


# ------------------------------------------------------------- Host, CORS, size


def test_a_foreign_host_header_gets_400_before_anything_else(http: TestClient) -> None:
    for host in ("evil.example", "evil.example:5000", "127.0.0.1.evil.example"):
        response = http.get("/api/v1/experiments", headers={"Host": host})
        assert (response.status_code, code_of(response)) == (400, "invalid_host"), host
    for host in ("127.0.0.1:5000", "localhost", "LOCALHOST:80", "[::1]:5000"):
        response = http.get("/api/v1/experiments", headers={"Host": host})
        assert response.status_code == 401, host  # past the Host check
    # Probes call /health by IP or any name.
    assert http.get("/health", headers={"Host": "10.1.2.3:5000"}).status_code == 200


def test_allowed_hosts_can_be_named_or_opened(store_client: sy.Client) -> None:
    app = create_app(store_client, allowed_hosts=["shipyard.internal"])
    with TestClient(app, base_url="http://shipyard.internal") as http:
        assert http.get("/api/v1/experiments").status_code == 200
        assert http.get("/api/v1/experiments", headers={"Host": "127.0.0.1"}).status_code == 400
    with TestClient(create_app(store_client, allowed_hosts=["*"]), base_url=BASE) as http:
        assert http.get("/api/v1/experiments", headers={"Host": "any.example"}).status_code == 200


def test_cors_is_closed_by_default(http: TestClient, tokens: dict[Role, dict[str, str]]) -> None:
    origin = {"Origin": "https://evil.example"}
    response = http.get("/api/v1/experiments", headers={**origin, **tokens[Role.viewer]})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = http.options(
        "/api/v1/experiments",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_to_the_named_origins_only(
    store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    app = create_app(store_client, auth=True, cors_origins=["https://ui.example.com"])
    with TestClient(app, base_url=BASE) as http:
        ok = http.get(
            "/api/v1/experiments",
            headers={"Origin": "https://ui.example.com", **tokens[Role.viewer]},
        )
        assert ok.headers["access-control-allow-origin"] == "https://ui.example.com"
        assert "access-control-allow-credentials" not in ok.headers
        preflight = http.options(
            "/api/v1/experiments",
            headers={
                "Origin": "https://ui.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        foreign = http.get(
            "/api/v1/experiments", headers={"Origin": "https://evil.example", **tokens[Role.viewer]}
        )
        assert "access-control-allow-origin" not in foreign.headers


def test_json_bodies_are_capped_and_uploads_stream_past_the_cap(
    store_client: sy.Client, tokens: dict[Role, dict[str, str]]
) -> None:
    app = create_app(store_client, auth=True, max_body_size=1000)
    run = store_client.create_run("e")
    data = b"0123456789" * 500  # 5,000 bytes: over the JSON cap
    with TestClient(app, base_url=BASE) as http:
        editor = tokens[Role.editor]
        declared = http.post(
            f"/api/v1/runs/{run.run_id}/tags", json={"tags": {"k": "v" * 2000}}, headers=editor
        )
        assert (declared.status_code, code_of(declared)) == (413, "payload_too_large")

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"tags": {"k": "'
            yield b"v" * 2000
            yield b'"}}'

        streamed = http.post(
            f"/api/v1/runs/{run.run_id}/tags",
            content=chunked(),
            headers={**editor, "Content-Type": "application/json"},
        )
        assert (streamed.status_code, code_of(streamed)) == (413, "payload_too_large")
        upload = http.put(
            f"/api/v1/runs/{run.run_id}/artifacts/big.bin", content=data, headers=editor
        )
        assert upload.status_code == 201, upload.text
    assert store_client.get_run(run.run_id).tags == {}
    assert [a.path for a in store_client.list_artifacts(run.run_id)] == ["big.bin"]


# ------------------------------------------------------------------ configuration


def test_the_security_options_are_checked() -> None:
    assert _security.default_allowed_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert _security.default_allowed_hosts("10.0.0.5")[0] == "10.0.0.5"
    for wildcard in ("0.0.0.0", "::", "[::]"):
        with pytest.raises(ConfigError, match="--allowed-host"):
            _security.default_allowed_hosts(wildcard)
    assert [_security.is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost")] == [
        True
    ] * 4
    assert not any(_security.is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "example.com"))
    assert _security.host_of("[::1]:5000") == "::1"
    assert _security.host_of("Example.COM.:80") == "example.com"
    for bad in ("http://x", "a b", "", "x/y"):
        with pytest.raises(ConfigError, match="allowed host"):
            _security.check_allowed_hosts([bad])
    for bad in ("ui.example.com", "https://ui.example.com/", "ftp://x", "https://x/path"):
        with pytest.raises(ConfigError, match="CORS origin"):
            _security.check_cors_origins([bad])


def test_the_app_factory_fails_closed_without_options(
    store_client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_URI", store_client.settings.uri)
    app = _app.app_from_environment({})
    assert app.state.auth is True
    with TestClient(app, base_url=BASE) as http:
        assert http.get("/api/v1/experiments").status_code == 401
        assert http.get("/health", headers={"Host": "evil.example"}).status_code == 200
        assert http.get("/api/v1/experiments", headers={"Host": "evil.example"}).status_code == 400
    options = {"auth": False, "allowed_hosts": ["*"], "cors_origins": []}
    app = _app.app_from_environment({_app.OPTIONS_VARIABLE: json.dumps(options)})
    assert app.state.auth is False
    with pytest.raises(ConfigError, match=_app.OPTIONS_VARIABLE):
        _app.app_from_environment({_app.OPTIONS_VARIABLE: "[1]"})
