"""Users and tokens through the Client, embedded and remote; and the CLI against a server."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner

import shipyard as sy
from shipyard.cli import cli
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from shipyard.server import create_app


def test_users_and_tokens(any_client: sy.Client, backing: sy.Client) -> None:
    ann = any_client.create_user("ann", "viewer")
    assert (ann.name, ann.role, ann.disabled) == ("ann", "viewer", False)
    assert any_client.get_user("ann") == ann
    any_client.create_user("bob", "admin")
    assert [u.name for u in any_client.list_users()] == ["ann", "bob"]
    assert any_client.set_user_role("ann", "editor").role == "editor"
    assert any_client.disable_user("ann").disabled
    assert not any_client.disable_user("ann", disabled=False).disabled

    record, text = any_client.create_token("ann", "laptop", expires_days=30)
    assert text.startswith(f"sy_{record.token_id}_")
    assert (record.user, record.name, record.revoked_at) == ("ann", "laptop", None)
    assert record.expires_at is not None
    assert backing.authenticate(text).name == "ann"  # type: ignore[union-attr]
    other, _ = any_client.create_token("bob")
    assert [t.token_id for t in any_client.list_tokens()] == [record.token_id, other.token_id]
    (listed,) = any_client.list_tokens("ann")
    assert listed.last_used_at is not None  # authenticate() above used it
    assert listed == dataclasses.replace(record, last_used_at=listed.last_used_at)
    revoked = any_client.revoke_token(record.token_id)
    assert revoked.revoked_at is not None
    assert any_client.revoke_token(record.token_id) == revoked  # again: nothing changes
    assert backing.authenticate(text) is None
    assert {e.action for e in backing.audit_events("token")} == {"token.create", "token.revoke"}

    with pytest.raises(AlreadyExists):
        any_client.create_user("ann", "viewer")
    with pytest.raises(InvalidInput, match="role is one of"):
        any_client.create_user("cid", "owner")
    with pytest.raises(InvalidInput, match="user name"):
        any_client.create_user("bad name", "viewer")
    with pytest.raises(NotFound):
        any_client.get_user("nobody")
    with pytest.raises(NotFound):
        any_client.set_user_role("nobody", "viewer")
    with pytest.raises(InvalidInput, match="role is one of"):
        any_client.set_user_role("ann", "root")
    with pytest.raises(NotFound):
        any_client.disable_user("nobody")
    with pytest.raises(NotFound):
        any_client.create_token("nobody")
    with pytest.raises(InvalidInput, match="lifetime"):
        any_client.create_token("ann", expires_days=0)
    with pytest.raises(InvalidInput, match="token id"):
        any_client.revoke_token("not-an-id")
    with pytest.raises(NotFound):
        any_client.revoke_token("0123456789ab")
    with pytest.raises(NotFound):
        any_client.list_tokens("nobody")
    assert [u.name for u in any_client.list_users()] == ["ann", "bob"]


def test_only_an_admin_manages_users_remotely(
    backing: sy.Client, serve: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backing.create_user("root", "admin")
    backing.create_user("ed", "editor")
    _, admin_token = backing.create_token("root")
    _, editor_token = backing.create_token("ed")
    monkeypatch.setenv("SHIPYARD_URI", serve(create_app(backing, auth=True)))

    monkeypatch.setenv("SHIPYARD_TOKEN", editor_token)
    editor = sy.Client()
    for call in (
        editor.list_users,
        lambda: editor.create_user("eve", "admin"),
        lambda: editor.set_user_role("ed", "admin"),
        lambda: editor.create_token("ed"),
        editor.list_tokens,
    ):
        with pytest.raises(PermissionDenied, match="admin"):
            call()
    assert backing.get_user("ed").role == "editor"

    monkeypatch.setenv("SHIPYARD_TOKEN", admin_token)
    admin = sy.Client()
    admin.disable_user("ed")
    with pytest.raises(PermissionDenied, match="not valid"):
        editor.list_experiments()  # a disabled user's token stops working at once
    (event,) = backing.audit_events("user", "ed")[-1:]
    assert (event.action, event.actor) == ("user.disable", "root")


def test_the_cli_manages_users_on_a_server_with_an_admin_token(
    backing: sy.Client,
    serve: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    # The first admin is made on the server's machine, straight in the store, no token.
    runner = CliRunner()
    store_uri = backing.settings.uri
    made = runner.invoke(cli, ["--uri", store_uri, "users", "create", "root", "--role", "admin"])
    assert made.exit_code == 0, made.output
    token = runner.invoke(cli, ["--uri", store_uri, "tokens", "create", "root"])
    assert token.exit_code == 0, token.output
    admin_token = token.stdout.strip().splitlines()[0]

    url = serve(create_app(backing, auth=True))
    monkeypatch.setenv("SHIPYARD_URI", url)
    monkeypatch.setenv("SHIPYARD_TOKEN", admin_token)

    def shipyard(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "Created user ann (viewer)" in shipyard("users", "create", "ann", "--role", "viewer")
    assert "ann is now editor" in shipyard("users", "set-role", "ann", "editor")
    created = shipyard("tokens", "create", "ann", "--name", "ci", "--expires-days", "7")
    ann_token = created.strip().splitlines()[0]
    assert backing.authenticate(ann_token).name == "ann"  # type: ignore[union-attr]
    listed = json.loads(shipyard("tokens", "list", "ann", "--json"))
    assert [(t["user"], t["name"], t["status"]) for t in listed] == [("ann", "ci", "active")]
    assert "hash" not in json.dumps(listed)
    assert "disabled" in shipyard("users", "disable", "ann")
    users = json.loads(shipyard("users", "list", "--json"))
    assert {(u["name"], u["role"], u["disabled"]) for u in users} == {
        ("root", "admin", False),
        ("ann", "editor", True),
    }
    assert "Revoked" in shipyard("tokens", "revoke", listed[0]["token_id"])
    assert backing.authenticate(ann_token) is None

    refused = runner.invoke(cli, ["users", "set-role", "ann", "owner"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error:")
    assert "role is one of" in refused.stderr
    missing = runner.invoke(cli, ["tokens", "revoke", "0123456789ab"])
    assert missing.exit_code == 1
    assert "error:" in missing.stderr

    monkeypatch.setenv("SHIPYARD_TOKEN", ann_token)  # revoked
    locked_out = runner.invoke(cli, ["users", "list"])
    assert locked_out.exit_code == 1
    assert "not valid" in locked_out.stderr
