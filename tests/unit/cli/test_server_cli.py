"""``shipyard server``, ``users`` and ``tokens``: output, refusals, and one real start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import shipyard as sy
from shipyard.cli import cli
from shipyard.server import _app

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(store_uri: str) -> Invoke:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--uri", store_uri, *args], catch_exceptions=False)

    return run


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


def one_error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if code == 1:
        assert result.stdout == ""
        assert len(lines) == 1, result.stderr
    assert lines[-1].startswith("error: "), result.stderr
    return lines[-1]


# ------------------------------------------------------------------------ users


def test_users_create_list_set_role_and_disable(invoke: Invoke, client: sy.Client) -> None:
    created = invoke("users", "create", "alice", "--role", "editor")
    assert created.exit_code == 0, created.stderr
    assert "Created user alice (editor)" in created.stdout
    assert "shipyard tokens create alice" in created.stdout
    invoke("users", "create", "bob", "--role", "viewer")

    listed = json.loads(invoke("users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("alice", "editor", False),
        ("bob", "viewer", False),
    ]
    table = invoke("users", "list").stdout
    assert "2 users" in table
    assert "alice" in table
    assert "editor" in table

    assert invoke("users", "set-role", "bob", "admin").stdout == "User bob is now admin.\n"
    assert invoke("users", "disable", "bob").stdout == "User bob is disabled.\n"
    assert client.get_user("bob").disabled
    assert invoke("users", "disable", "bob", "--enable").stdout == "User bob is enabled.\n"
    assert (client.get_user("bob").role, client.get_user("bob").disabled) == ("admin", False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "bad name", "--role", "viewer"], "A user name is"),
        (["users", "create", "alice", "--role", "root"], "A role is one of viewer, editor, admin"),
        (["users", "set-role", "nobody", "viewer"], "No user 'nobody'"),
        (["users", "set-role", "alice", "owner"], "A role is one of"),
        (["users", "disable", "nobody"], "No user 'nobody'"),
        (["tokens", "create", "nobody"], "No user 'nobody'"),
        (["tokens", "create", "alice", "--expires-days", "0"], "lifetime"),
        (["tokens", "list", "nobody"], "No user 'nobody'"),
        (["tokens", "revoke", "nope"], "A token id is 12 hexadecimal digits"),
        (["tokens", "revoke", "0123456789ab"], "No token '0123456789ab'"),
    ],
)
def test_bad_input_is_one_error_line(
    invoke: Invoke, client: sy.Client, args: list[str], message: str
) -> None:
    client.create_user("alice", "viewer")
    assert message in one_error_line(invoke(*args))


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "alice"],  # --role is required
        ["tokens", "create"],
        ["tokens", "create", "alice", "--expires-days", "soon"],
        ["server", "--port", "0"],
        ["server", "--workers", "0"],
    ],
)
def test_usage_errors_exit_2(invoke: Invoke, args: list[str]) -> None:
    one_error_line(invoke(*args), code=2)


def test_a_duplicate_user_is_one_error_line(invoke: Invoke) -> None:
    invoke("users", "create", "alice", "--role", "viewer")
    line = one_error_line(invoke("users", "create", "alice", "--role", "admin"))
    assert "user 'alice' exists already" in line


# ----------------------------------------------------------------------- tokens


def test_tokens_create_prints_the_token_once_then_list_and_revoke(
    invoke: Invoke, client: sy.Client
) -> None:
    client.create_user("alice", "editor")
    created = invoke("tokens", "create", "alice", "--name", "laptop", "--expires-days", "30")
    assert created.exit_code == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n"  # alone on stdout, for scripts
    assert token.startswith("sy_")
    assert "cannot be shown again" in created.stderr
    assert token not in created.stderr
    user = client.authenticate(token)
    assert user is not None
    assert user.name == "alice"
    token_id = token.split("_")[1]

    listed = invoke("tokens", "list")
    assert listed.exit_code == 0
    assert token_id in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout
    (record,) = json.loads(invoke("tokens", "list", "alice", "--json").stdout)
    assert (record["token_id"], record["user"], record["name"], record["status"]) == (
        token_id,
        "alice",
        "laptop",
        "active",
    )
    assert record["expires_at"] is not None
    assert "hash" not in record

    revoked = invoke("tokens", "revoke", token_id)
    assert revoked.stdout == f"Revoked token {token_id} of alice.\n"
    assert client.authenticate(token) is None
    (record,) = json.loads(invoke("tokens", "list", "--json").stdout)
    assert record["status"] == "revoked"


# ----------------------------------------------------------------------- server


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_server_refuses_a_non_loopback_host_without_auth(invoke: Invoke, host: str) -> None:
    line = one_error_line(invoke("server", "--host", host))
    assert f"Refusing to serve on {host} without authentication" in line
    assert "--auth" in line
    assert "--insecure" in line


def test_server_on_every_interface_needs_named_hosts(invoke: Invoke) -> None:
    line = one_error_line(invoke("server", "--host", "0.0.0.0", "--auth"))
    assert "--allowed-host" in line
    bad_origin = invoke("server", "--auth", "--cors-origin", "ui.example.com")
    assert "CORS origin" in one_error_line(bad_origin)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Capture uvicorn.run instead of serving; the command's environment is restored after."""
    import uvicorn

    for name in (_app.OPTIONS_VARIABLE, "SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_ARTIFACTS"):
        monkeypatch.setenv(name, "")
    calls: list[dict] = []

    def run(app: str, **kwargs: object) -> None:
        calls.append(
            {"app": app, **kwargs, "options": json.loads(os.environ[_app.OPTIONS_VARIABLE])}
        )

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_server_insecure_starts_with_a_loud_warning(
    invoke: Invoke, started: list[dict], store_uri: str
) -> None:
    result = invoke(
        "server",
        "--host",
        "0.0.0.0",
        "--insecure",
        "--allowed-host",
        "ml.internal",
        "--port",
        "8123",
    )
    assert result.exit_code == 0, result.stderr
    assert "WARNING: serving on 0.0.0.0:8123 WITHOUT AUTHENTICATION" in result.stderr
    (call,) = started
    assert call["app"] == "shipyard.server._app:app_from_environment"
    assert (call["factory"], call["host"], call["port"], call["workers"]) == (
        True,
        "0.0.0.0",
        8123,
        1,
    )
    assert call["options"] == {"auth": False, "allowed_hosts": ["ml.internal"], "cors_origins": []}
    assert os.environ["SHIPYARD_URI"] == store_uri


def test_server_with_auth_and_no_users_says_how_to_add_one(
    invoke: Invoke, started: list[dict]
) -> None:
    result = invoke("server", "--auth", "--workers", "3", "--cors-origin", "https://ui.example.com")
    assert result.exit_code == 0, result.stderr
    assert "no users yet" in result.stderr
    assert "WARNING" not in result.stderr
    (call,) = started
    assert call["workers"] == 3
    assert call["options"] == {
        "auth": True,
        "allowed_hosts": ["127.0.0.1", "localhost", "::1"],
        "cors_origins": ["https://ui.example.com"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_starts_answers_and_stops(tmp_path: Path) -> None:
    """A real ``shipyard server --auth`` process on a free port, against a temp SQLite store."""
    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    admin = sy.Client(uri, artifacts=str(tmp_path / "blobs"))
    admin.create_user("alice", "editor")
    _, token = admin.create_token("alice")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_URI": uri, "SHIPYARD_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", "from shipyard.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "server", "--port", str(port), "--auth"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer in 30 s"
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"{base}/api/v1/experiments").status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/v1/experiments", json={"name": "e"}, headers=headers)
        assert created.status_code == 201, created.text
        assert admin.audit_events(object_type="experiment")[0].actor == "alice"
        evil = httpx.get(f"{base}/api/v1/experiments", headers={**headers, "Host": "evil.example"})
        assert evil.status_code == 400
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate(timeout=5)[0].decode()
    # A graceful stop: uvicorn finishes, then (recent versions) re-raises the SIGTERM it caught.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"on http://127.0.0.1:{port} (auth on" in output
