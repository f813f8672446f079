"""Alert rules and alerts over REST (/api/v1/alerts) and through the remote Client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shipyard as sy
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring._alerts import evaluate_rules
from shipyard.server import create_app
from shipyard.tracking import _remote
from unit.monitoring.test_alerts import add_monitor, add_window, make_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE = "http://127.0.0.1"


@pytest.fixture
def backing(store_uri: str, tmp_path: Path) -> sy.Client:
    """The server's own client: webhooks to hooks.example.com allowed."""
    return make_client(store_uri, tmp_path, webhook_allow=("hooks.example.com",))


@pytest.fixture
def http(backing: sy.Client) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """A client of the app with auth on, and an Authorization header per role."""
    headers = {}
    for role in ("viewer", "editor", "admin"):
        backing.create_user(role, role)
        headers[role] = {"Authorization": f"Bearer {backing.create_token(role)[1]}"}
    with TestClient(create_app(backing, auth=True), base_url=BASE) as api:
        yield api, headers


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert "hint" in error
    return error


def test_rules_and_alerts_over_rest(
    backing: sy.Client, http: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    api, role = http
    monitor_id = add_monitor(backing)
    made = api.post(
        "/api/v1/alerts/rules",
        json={"monitor": "credit-drift", "rule": "drift_share > 0.3 for 2 windows"},
        headers=role["editor"],
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["text"] == rule["name"] == "drift_share > 0.3 for 2 windows"
    assert rule["created_by"] == "editor"
    parts = {"monitor": "credit-drift", "metric": "roc_auc", "op": "<", "threshold": 0.8}
    made = api.post("/api/v1/alerts/rules", json={**parts, "name": "auc"}, headers=role["editor"])
    assert made.status_code == 201
    assert made.json()["for_windows"] == 1

    add_window(backing, monitor_id, 1, drift_share=0.5)
    add_window(backing, monitor_id, 2, drift_share=0.6)
    (opened,) = evaluate_rules(backing, monitor_id)
    listed = api.get("/api/v1/alerts", params={"status": "open"}, headers=role["viewer"]).json()
    assert [a["id"] for a in listed["items"]] == [opened.id]
    assert listed["items"][0]["message"] == opened.message
    closed = api.get("/api/v1/alerts", params={"status": "closed"}, headers=role["viewer"])
    assert closed.json()["items"] == []
    rules = api.get(
        "/api/v1/alerts/rules", params={"monitor": "credit-drift"}, headers=role["viewer"]
    )
    assert [r["name"] for r in rules.json()["items"]] == [rule["name"], "auc"]

    deleted = api.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=role["editor"])
    assert deleted.json()["id"] == rule["id"]
    assert api.get("/api/v1/alerts", headers=role["viewer"]).json()["items"] == []


def test_bad_rest_input_is_a_4xx_with_a_json_error(
    backing: sy.Client, http: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    api, role = http
    add_monitor(backing)
    editor = role["editor"]

    def post(body: dict[str, Any], headers: dict[str, str] = editor) -> Any:
        return api.post("/api/v1/alerts/rules", json=body, headers=headers)

    text = {"monitor": "credit-drift", "rule": "roc_auc < 0.8"}
    assert "metric" in error_of(post({**text, "rule": "auc < 0.8"}), 400)["message"]
    assert "not both" in error_of(post({**text, "metric": "roc_auc"}), 400)["message"]
    assert "not both" in error_of(post({"monitor": "credit-drift", "op": "<"}), 400)["message"]
    assert error_of(post({**text, "monitor": "nope"}), 404)["code"] == "not_found"
    assert error_of(post({**text, "for": 2}), 422)["code"] == "invalid_input"
    bad_op = {"monitor": "credit-drift", "metric": "roc_auc", "op": "=", "threshold": 1}
    assert error_of(post(bad_op), 422)["code"] == "invalid_input"
    huge = {**bad_op, "op": "<", "threshold": 10**400}
    assert "finite number" in error_of(post(huge), 400)["message"]
    assert post(text).status_code == 201
    assert error_of(post(text), 409)["code"] == "already_exists"
    assert error_of(post(text, role["viewer"]), 403)["code"] == "permission_denied"
    status = api.get("/api/v1/alerts", params={"status": "shut"}, headers=role["viewer"])
    assert error_of(status, 422)["code"] == "invalid_input"
    assert error_of(api.delete("/api/v1/alerts/rules/99", headers=editor), 404)["message"]
    assert error_of(api.delete("/api/v1/alerts/rules/0", headers=editor), 422)["message"]


def test_a_webhook_rule_needs_an_admin_and_an_allowed_host(
    backing: sy.Client, http: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    api, role = http
    add_monitor(backing)
    body = {
        "monitor": "credit-drift",
        "rule": "roc_auc < 0.8",
        "webhook": "https://hooks.example.com/shipyard",
    }
    refused = api.post("/api/v1/alerts/rules", json=body, headers=role["editor"])
    assert "Only an admin" in error_of(refused, 403)["message"]
    other = {**body, "webhook": "https://evil.example.com/x"}
    refused = api.post("/api/v1/alerts/rules", json=other, headers=role["admin"])
    assert "not on the allow-list" in error_of(refused, 400)["message"]
    made = api.post("/api/v1/alerts/rules", json=body, headers=role["admin"])
    assert made.status_code == 201
    assert made.json()["webhook_url"] == body["webhook"]
    # The URL's path may hold the webhook's secret: below admin only scheme and host show.
    for who, shown in (("viewer", "https://hooks.example.com/…"), ("admin", body["webhook"])):
        rules = api.get("/api/v1/alerts/rules", headers=role[who]).json()["items"]
        assert [r["webhook_url"] for r in rules] == [shown]


@pytest.fixture
def remote(backing: sy.Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[sy.Client]:
    """``sy.Client("http://...")`` whose requests go to the app in-process (no auth)."""
    app = create_app(backing)
    with TestClient(app, base_url=BASE + _remote.API_PATH) as api:
        monkeypatch.setattr(_remote, "_pool", lambda url, token: api)
        yield sy.Client("http://127.0.0.1:1")


def test_the_remote_client_does_what_the_embedded_one_does(
    backing: sy.Client, remote: sy.Client
) -> None:
    assert type(remote).__name__ == "RemoteClient"
    monitor_id = add_monitor(backing)
    text_rule = remote.create_alert_rule("credit-drift", "drift_share > 0.3")
    parts_rule = remote.create_alert_rule(
        "credit-drift",
        ("roc_auc", "<", 0.8, 2),
        name="auc",
        webhook="https://hooks.example.com/x",
    )
    assert remote.list_alert_rules() == backing.list_alert_rules() == [text_rule, parts_rule]
    assert parts_rule.text == "roc_auc < 0.8 for 2 windows"
    add_window(backing, monitor_id, 1, drift_share=0.5)
    evaluate_rules(backing, monitor_id)
    assert remote.list_alerts(status="open") == backing.list_alerts()
    assert remote.list_alerts(monitor="credit-drift", status="closed") == []
    assert remote.delete_alert_rule(text_rule.id) == text_rule
    assert remote.list_alerts() == []

    with pytest.raises(InvalidInput, match="threshold"):
        remote.create_alert_rule("credit-drift", "roc_auc < x")
    with pytest.raises(NotFound, match="No monitor 'nope'"):
        remote.list_alert_rules("nope")
    with pytest.raises(NotFound, match="No alert rule 99"):
        remote.delete_alert_rule(99)
    with pytest.raises(InvalidInput, match="allow-list"):
        remote.create_alert_rule("credit-drift", "r2 < 0", webhook="https://evil.example.com/")
