"""Users and tokens: tokens shown once and stored hashed, revocation, expiry, disabled users."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

import shipyard as sy
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store import users as users_repo
from shipyard.store._schema import metadata, tokens


@pytest.fixture
def client(store_uri: str, tmp_path) -> sy.Client:  # type: ignore[no-untyped-def]
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


def dump_database(client: sy.Client) -> str:
    """Every row of every table, as text."""
    lines = []
    with client.store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                lines.append(f"{table.name}: {json.dumps(list(row), default=str)}")
    return "\n".join(lines)


def test_users_are_created_listed_and_audited(client: sy.Client) -> None:
    alice = client.create_user("alice", "admin")
    client.create_user("bob", "viewer")
    assert (alice.name, alice.role, alice.disabled, alice.created_by) == (
        "alice",
        "admin",
        False,
        client.actor,
    )
    assert [(u.name, u.role) for u in client.list_users()] == [
        ("alice", "admin"),
        ("bob", "viewer"),
    ]
    assert client.get_user("bob").role == "viewer"
    with pytest.raises(AlreadyExists, match="user 'alice' exists already"):
        client.create_user("alice", "viewer")
    with pytest.raises(NotFound, match="No user 'carol'"):
        client.get_user("carol")
    events = client.audit_events(object_type="user")
    assert [(e.action, e.object_id, json.loads(e.payload)) for e in events] == [
        ("user.create", "alice", {"role": "admin"}),
        ("user.create", "bob", {"role": "viewer"}),
    ]


@pytest.mark.parametrize("name", ["", "a b", "..", "a..b", "-x", "x" * 129, "é", 3, None])
def test_bad_user_names_are_refused(client: sy.Client, name: object) -> None:
    with pytest.raises(InvalidInput, match="A user name is"):
        client.create_user(name, "viewer")  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["root", "Admin", "", None, 3])
def test_bad_roles_are_refused(client: sy.Client, role: object) -> None:
    with pytest.raises(InvalidInput, match="A role is one of viewer, editor, admin"):
        client.create_user("alice", role)  # type: ignore[arg-type]
    assert client.list_users() == []


def test_a_role_change_applies_to_existing_tokens_and_is_audited(client: sy.Client) -> None:
    client.create_user("alice", "viewer")
    _, token = client.create_token("alice")
    assert client.set_user_role("alice", "editor").role == "editor"
    user = client.authenticate(token)
    assert user is not None
    assert user.role == "editor"
    assert client.set_user_role("alice", "editor").role == "editor"  # no change, no event
    roles = [e for e in client.audit_events(object_type="user") if e.action == "user.role"]
    assert [json.loads(e.payload) for e in roles] == [{"role": "editor", "previous": "viewer"}]
    with pytest.raises(InvalidInput):
        client.set_user_role("alice", "superuser")


def test_a_token_authenticates_its_user(client: sy.Client) -> None:
    client.create_user("alice", "editor")
    record, token = client.create_token("alice", "laptop")
    prefix, token_id, secret = token.split("_", 2)
    assert (prefix, token_id) == ("sy", record.token_id)
    assert len(secret) >= 43  # 32 random bytes, base64
    assert (record.user, record.name, record.created_by) == ("alice", "laptop", client.actor)
    assert (record.last_used_at, record.expires_at, record.revoked_at) == (None, None, None)
    user = client.authenticate(token)
    assert user is not None
    assert (user.name, user.role) == ("alice", "editor")
    # Two tokens of one user are different and both work.
    _, second = client.create_token("alice")
    assert second != token
    assert client.authenticate(second) is not None
    # The first use is recorded (for people reading `tokens list`).
    (listed, _) = client.list_tokens("alice")
    assert listed.token_id == record.token_id
    assert listed.last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: t.replace("sy_", "xx_", 1),  # wrong prefix
        lambda t: "sy_" + "0" * 12 + "_" + t.split("_", 2)[2],  # unknown id
        lambda t: t.rsplit("_", 1)[0] if t.count("_") > 2 else t.split("_", 2)[0],  # cut short
        lambda t: t + "x" * 200,  # far too long
        lambda t: "",
        lambda t: "Bearer " + t,
    ],
    ids=["wrong-secret", "prefix", "unknown-id", "truncated", "too-long", "empty", "with-scheme"],
)
def test_a_wrong_token_authenticates_nobody(client: sy.Client, mangle) -> None:  # type: ignore[no-untyped-def]
    client.create_user("alice", "admin")
    _, token = client.create_token("alice")
    assert client.authenticate(mangle(token)) is None


def test_tokens_are_stored_hashed_and_no_secret_reaches_any_table_or_audit_event(
    client: sy.Client,
) -> None:
    client.create_user("alice", "admin")
    record, token = client.create_token("alice", "ci", expires_days=30)
    client.authenticate(token)
    client.revoke_token(record.token_id)
    secret = token.split("_", 2)[2]
    digest = hashlib.sha256(secret.encode()).hexdigest()

    dump = dump_database(client)
    assert secret not in dump
    assert token not in dump
    # The hash is kept in the tokens table, and nowhere else.
    with client.store.engine.connect() as conn:
        stored = conn.execute(sa.select(tokens.c.hash)).scalar_one()
    assert stored == digest
    assert next(line for line in dump.splitlines() if digest in line).startswith("tokens:")
    assert sum(digest in line for line in dump.splitlines()) == 1
    events = client.audit_events()
    assert [e.action for e in events] == ["user.create", "token.create", "token.revoke"]
    for event in events:
        assert secret not in event.payload
        assert digest not in event.payload
    assert json.loads(events[1].payload) == {
        "user": "alice",
        "name": "ci",
        "expires_at": record.expires_at,
    }
    # Nor does a record handed out carry it.
    for listed in client.list_tokens():
        assert secret not in repr(listed)
        assert digest not in repr(listed)
    assert client.verify_audit().ok


def test_a_revoked_token_stops_working_at_once(client: sy.Client) -> None:
    client.create_user("alice", "editor")
    record, token = client.create_token("alice")
    _, other = client.create_token("alice")
    assert client.authenticate(token) is not None
    revoked = client.revoke_token(record.token_id)
    assert revoked.revoked_at is not None
    assert client.authenticate(token) is None
    assert client.authenticate(other) is not None  # only that token
    # Revoking again changes nothing and records nothing more.
    assert client.revoke_token(record.token_id).revoked_at == revoked.revoked_at
    assert [e.action for e in client.audit_events(object_type="token")].count("token.revoke") == 1
    statuses = {t.token_id: t.status(revoked.revoked_at + 1) for t in client.list_tokens()}
    assert statuses[record.token_id] == "revoked"
    with pytest.raises(NotFound, match="No token 'aaaaaaaaaaaa'"):
        client.revoke_token("aaaaaaaaaaaa")
    with pytest.raises(InvalidInput, match="A token id is 12 hexadecimal digits"):
        client.revoke_token(token)  # the whole token instead of its id


def test_an_expired_token_stops_working(client: sy.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.tracking import _client

    client.create_user("alice", "viewer")
    record, token = client.create_token("alice", expires_days=1)
    assert record.expires_at is not None
    assert record.expires_at - record.created_at == 86_400_000
    assert client.authenticate(token) is not None
    monkeypatch.setattr(_client, "_now_ms", lambda: record.expires_at)
    assert client.authenticate(token) is None
    assert client.list_tokens()[0].status(record.expires_at) == "expired"


@pytest.mark.parametrize("days", [0, -1, 3651, 1.5, "7", True])
def test_bad_lifetimes_are_refused(client: sy.Client, days: object) -> None:
    client.create_user("alice", "viewer")
    with pytest.raises(InvalidInput, match="lifetime"):
        client.create_token("alice", expires_days=days)  # type: ignore[arg-type]
    assert client.list_tokens() == []


def test_a_disabled_user_cannot_authenticate_until_enabled(client: sy.Client) -> None:
    client.create_user("alice", "admin")
    _, token = client.create_token("alice")
    assert client.disable_user("alice").disabled is True
    assert client.authenticate(token) is None
    assert client.disable_user("alice", disabled=False).disabled is False
    assert client.authenticate(token) is not None
    actions = [e.action for e in client.audit_events(object_type="user")]
    assert actions == ["user.create", "user.disable", "user.enable"]


def test_tokens_are_listed_per_user_without_secrets(client: sy.Client) -> None:
    client.create_user("alice", "editor")
    client.create_user("bob", "viewer")
    a, _ = client.create_token("alice", "one")
    b, _ = client.create_token("bob")
    c, _ = client.create_token("alice", "two")
    assert [t.token_id for t in client.list_tokens()] == [a.token_id, b.token_id, c.token_id]
    assert [t.name for t in client.list_tokens("alice")] == ["one", "two"]
    assert client.list_tokens("bob") == [b]
    with pytest.raises(NotFound):
        client.list_tokens("carol")
    with pytest.raises(NotFound):
        client.create_token("carol")
    assert not hasattr(a, "hash")
    assert not hasattr(a, "secret")


def test_last_use_is_written_at_most_once_a_minute(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.tracking import _client

    client.create_user("alice", "viewer")
    _, token = client.create_token("alice")
    now = 1_900_000_000_000
    monkeypatch.setattr(_client, "_now_ms", lambda: now)
    client.authenticate(token)
    assert client.list_tokens()[0].last_used_at == now
    now += users_repo.TOUCH_INTERVAL_MS - 1
    client.authenticate(token)
    assert client.list_tokens()[0].last_used_at == now - users_repo.TOUCH_INTERVAL_MS + 1
    now += 1
    client.authenticate(token)
    assert client.list_tokens()[0].last_used_at == now


def test_parse_token_accepts_only_the_documented_shape() -> None:
    assert users_repo.parse_token("sy_0123456789ab_secret_with_underscores") == (
        "0123456789ab",
        "secret_with_underscores",
    )
    for bad in ["sy_0123456789ab_", "sy_0123456789AB_x", "sy_012_x", "sy__x", None, b"sy_x"]:
        assert users_repo.parse_token(bad) is None
