"""Users and tokens over REST: what an admin does, and the bad input each route refuses."""

from __future__ import annotations

import json

import shipyard as sy


def test_an_admin_manages_users_and_tokens(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    created = api.post("/users", json={"name": "ann", "role": "viewer"})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "ann"
    assert set(created.json()) == {"name", "role", "disabled", "created_at", "created_by"}
    assert api.get("/users/ann").json() == created.json()
    assert [u["name"] for u in api.get("/users").json()["items"]] == ["ann"]
    assert api.patch("/users/ann", json={"role": "editor"}).json()["role"] == "editor"
    both = api.patch("/users/ann", json={"role": "admin", "disabled": True}).json()
    assert (both["role"], both["disabled"]) == ("admin", True)
    assert not api.patch("/users/ann", json={"disabled": False}).json()["disabled"]

    token = api.post("/tokens", json={"user": "ann", "name": "ci", "expires_days": 7})
    assert token.status_code == 201, token.text
    secret = token.json()["secret"]
    record = token.json()["token"]
    assert secret.startswith(f"sy_{record['token_id']}_")
    assert client.authenticate(secret).name == "ann"  # type: ignore[union-attr]
    listed = api.get("/tokens", params={"user": "ann"}).json()["items"]
    assert [t["token_id"] for t in listed] == [record["token_id"]]
    assert api.get("/tokens").json()["items"][0]["token_id"] == record["token_id"]
    revoked = api.post(f"/tokens/{record['token_id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert client.authenticate(secret) is None

    # Neither a token's secret nor its hash is in anything but the creating response.
    stored_secret = secret.rsplit("_", 1)[1]
    for response in (api.get("/tokens"), api.get("/users"), revoked):
        text = json.dumps(response.json())
        assert stored_secret not in text
        assert "hash" not in text


#: (method, path, body, status): each refused, and nothing changed by any.
BAD_INPUT = [
    ("POST", "/users", {"name": "ann"}, 422),
    ("POST", "/users", {"name": "ann", "role": "owner"}, 400),
    ("POST", "/users", {"name": "bad name", "role": "viewer"}, 400),
    ("POST", "/users", {"name": "ann", "role": 3}, 422),
    ("POST", "/users", {"name": "ann", "role": "viewer", "admin": True}, 422),
    ("POST", "/users", {"name": "taken", "role": "viewer"}, 409),
    ("GET", "/users/nobody", None, 404),
    ("GET", "/users/-x", None, 400),
    ("PATCH", "/users/taken", {}, 400),
    ("PATCH", "/users/taken", {"role": "root"}, 400),
    ("PATCH", "/users/taken", {"disabled": "yes"}, 422),
    ("PATCH", "/users/nobody", {"disabled": True}, 404),
    ("GET", "/tokens?user=nobody", None, 404),
    ("GET", "/tokens?max_results=0", None, 422),
    ("POST", "/tokens", {"user": "nobody"}, 404),
    ("POST", "/tokens", {"user": "taken", "expires_days": 0}, 400),
    ("POST", "/tokens", {"user": "taken", "expires_days": "7"}, 422),
    ("POST", "/tokens", {"user": "taken", "name": ""}, 422),
    ("POST", "/tokens", {}, 422),
    ("POST", "/tokens/not-an-id/revoke", None, 400),
    ("POST", "/tokens/0123456789ab/revoke", None, 404),
]


def test_bad_input_is_a_4xx_with_a_json_error(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    client.create_user("taken", "viewer")
    for method, path, body, status in BAD_INPUT:
        response = api.request(method, path, json=body)
        assert response.status_code == status, (method, path, response.text)
        error = response.json()["error"]
        assert {"code", "message", "hint"} <= set(error)
        assert error["message"]
    assert [u.name for u in client.list_users()] == ["taken"]
    assert client.list_tokens() == []
