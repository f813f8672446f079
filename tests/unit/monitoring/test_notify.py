"""Webhook notifications: the allow-list, one DNS resolution pinned, no redirects, failures kept."""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import ConfigError
from shipyard.monitoring import _notify
from shipyard.monitoring._alerts import evaluate_rules
from unit.monitoring.test_alerts import add_monitor, add_window, make_client

PUBLIC = "93.184.216.34"
REAL_GETADDRINFO = socket.getaddrinfo


class Hook:
    """A local HTTP server that records each request and answers ``status``; HTTPS with
    ``tls`` (a server-side SSLContext)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 204
        self.delay = 0.0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                time.sleep(hook.delay)
                self.send_response(hook.status)
                if 300 <= hook.status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{hook.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    found = Hook()
    yield found
    found.close()


def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


def fake_dns(monkeypatch: pytest.MonkeyPatch, name: str, *answers: str) -> list[str]:
    """``name`` resolves to ``answers[0]``, then ``answers[1]``...; returns the names asked."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        asked.append(host)
        address = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def alert_with_webhook(
    tmp_path: Path, url: str, *, allow: tuple[str, ...]
) -> tuple[sy.Client, int]:
    """A client allowing ``allow`` (on SQLite: the store is not what is tested here), a
    monitor with a rule POSTing to ``url``, and a window that fires it; returns the client
    and the monitor's id."""
    client = make_client(sqlite_uri(tmp_path), tmp_path, webhook_allow=allow)
    monitor_id = add_monitor(client)
    client.create_alert_rule("credit-drift", "drift_share > 0.3", webhook=url)
    add_window(client, monitor_id, 1, drift_share=0.5)
    return client, monitor_id


# ------------------------------------------------------------------------ delivery


def test_an_allowed_host_receives_the_alert_as_json(tmp_path: Path, hook: Hook) -> None:
    url = f"http://127.0.0.1:{hook.port}/hooks/shipyard?token=abc"
    client, monitor_id = alert_with_webhook(tmp_path, url, allow=("127.0.0.1",))
    (opened,) = evaluate_rules(client, monitor_id)
    assert opened.notify_error is None
    assert opened.notified_at is not None
    (request,) = hook.received
    assert request["path"] == "/hooks/shipyard?token=abc"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert body == {
        "alert_id": opened.id,
        "rule": "drift_share > 0.3 for 1 window",
        "rule_text": "drift_share > 0.3 for 1 window",
        "monitor": "credit-drift",
        "deployment": "credit",
        "status": "open",
        "value": 0.5,
        "window_start": body["window_start"],
        "window_end": body["window_end"],
        "message": opened.message,
    }
    assert body["window_end"] - body["window_start"] == 3_600_000

    add_window(client, monitor_id, 2, drift_share=0.0)
    (closed,) = evaluate_rules(client, monitor_id)
    assert hook.received[1]["json"]["status"] == "closed"
    assert "no longer fires" in hook.received[1]["json"]["message"]
    assert closed.notify_error is None


def test_a_name_connects_to_its_resolved_address_with_its_own_host_header(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_dns(monkeypatch, "hooks.test", "127.0.0.1")
    url = f"http://hooks.test:{hook.port}/in"
    error = _notify.send(url, ("hooks.test", "127.0.0.1"), {"alert_id": 1})
    assert error is None
    assert asked == ["hooks.test"]
    assert hook.received[0]["headers"]["Host"] == f"hooks.test:{hook.port}"


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``hooks.test`` it signed: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("hooks.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_https_verifies_the_certificate_of_the_name_at_the_resolved_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hooks.test resolves to 127.0.0.1: the TLS handshake there sends SNI hooks.test and
    checks the certificate against hooks.test; another name's certificate is refused."""
    pytest.importorskip("cryptography")
    ca, cert, key = certificates(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_tls.sni_callback = lambda sock, server_name, context: sni.append(server_name)
    real_context = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda: real_context(cafile=str(ca)))
    fake_dns(monkeypatch, "hooks.test", "127.0.0.1")
    hook = Hook(server_tls)
    try:
        allow = ("hooks.test", "other.test", "127.0.0.1")
        assert _notify.send(f"https://hooks.test:{hook.port}/in", allow, {"a": 1}) is None
        assert sni == ["hooks.test"]
        assert hook.received[0]["headers"]["Host"] == f"hooks.test:{hook.port}"

        fake_dns(monkeypatch, "other.test", "127.0.0.1")
        error = _notify.send(f"https://other.test:{hook.port}/in", allow, {"a": 1})
        assert error is not None
        assert "certificate" in error.lower()
        assert len(hook.received) == 1
    finally:
        hook.close()


# ----------------------------------------------------------------------- refusals


def test_a_host_taken_off_the_list_is_refused_and_recorded(tmp_path: Path, hook: Hook) -> None:
    url = f"http://127.0.0.1:{hook.port}/in"
    client, monitor_id = alert_with_webhook(tmp_path, url, allow=("127.0.0.1",))
    runner = make_client(sqlite_uri(tmp_path), tmp_path, webhook_allow=("hooks.example.com",))
    (opened,) = evaluate_rules(runner, monitor_id)
    assert opened.status == "open"  # the alert opens all the same
    assert "'127.0.0.1' (port" in opened.notify_error
    assert "not on the allow-list" in opened.notify_error
    assert hook.received == []
    assert client.list_alerts()[0].notify_error == opened.notify_error


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_a_listed_name_that_resolves_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str, kind: str
) -> None:
    fake_dns(monkeypatch, "hooks.example.com", address)
    connects: list[str] = []
    monkeypatch.setattr(
        httpcore.SyncBackend, "connect_tcp", lambda self, host, *a, **k: connects.append(host)
    )
    error = _notify.send("https://hooks.example.com/x", ("hooks.example.com",), {})
    assert error is not None
    assert f"resolves to {address.removeprefix('::ffff:')}, a {kind} address" in error
    assert connects == []


def test_a_private_address_listed_as_an_address_or_network_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, "hooks.internal", "10.1.2.3")
    allow = _notify.AllowList(["hooks.internal", "10.0.0.0/8"])
    target = _notify.check_url("https://hooks.internal/x", allow)
    assert str(_notify.resolve(target, allow)) == "10.1.2.3"


def test_dns_rebinding_cannot_redirect_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public first answer is checked and used; a second lookup (127.0.0.1) never happens."""
    asked = fake_dns(monkeypatch, "hooks.example.com", PUBLIC, "127.0.0.1")
    connects: list[tuple[str, int]] = []

    def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        connects.append((host, port))
        raise httpcore.ConnectError("test: no network")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    error = _notify.send("https://hooks.example.com:8443/x", ("hooks.example.com",), {})
    assert asked == ["hooks.example.com"]
    assert connects == [(PUBLIC, 8443)]
    assert error is not None
    assert "could not be reached" in error


def test_a_redirect_is_not_followed(hook: Hook) -> None:
    hook.status = 302
    error = _notify.send(f"http://127.0.0.1:{hook.port}/in", ("127.0.0.1",), {})
    assert error == "The webhook answered HTTP 302 (redirects are not followed)."
    assert [r["path"] for r in hook.received] == ["/in"]


def test_an_error_status_and_a_slow_answer_are_failures(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.status = 500
    url = f"http://127.0.0.1:{hook.port}/in"
    assert _notify.send(url, ("127.0.0.1",), {}) == "The webhook answered HTTP 500."
    hook.status, hook.delay = 204, 0.5
    monkeypatch.setattr(_notify, "TIMEOUT", 0.1)
    error = _notify.send(url, ("127.0.0.1",), {})
    assert error is not None
    assert "did not answer within 0.1 s" in error


def test_an_unreachable_hook_is_recorded_not_raised(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/in"
    client, monitor_id = alert_with_webhook(tmp_path, url, allow=("127.0.0.1",))
    (opened,) = evaluate_rules(client, monitor_id)
    assert opened.notify_error is not None
    assert "could not be reached" in opened.notify_error


# -------------------------------------------------------------------- allow-list


@pytest.mark.parametrize(
    ("entry", "url", "allowed"),
    [
        ("hooks.example.com", "https://hooks.example.com/x", True),
        ("hooks.example.com", "https://HOOKS.example.com.:8443/x", True),
        ("hooks.example.com:8443", "https://hooks.example.com:8443/x", True),
        ("hooks.example.com:8443", "https://hooks.example.com/x", False),
        ("example.com", "https://hooks.example.com/x", False),
        ("10.0.0.0/8", "http://10.9.8.7/x", True),
        ("[::1]:8080", "http://[::1]:8080/x", True),
        ("::1", "http://[::1]:9/x", True),
        ("127.0.0.1", "http://localhost/x", False),
    ],
)
def test_the_allow_list_matches_hosts_and_ports(entry: str, url: str, allowed: bool) -> None:
    allow = _notify.AllowList([entry])
    try:
        _notify.check_url(url, allow)
    except _notify.InvalidInput:
        assert not allowed
    else:
        assert allowed


@pytest.mark.parametrize(
    "entry", ["hooks..example.com", "hooks.example.com:http", "a:0", "*.example.com", "[::1]x"]
)
def test_a_bad_allow_list_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="webhook_allow"):
        _notify.AllowList([entry])


def test_the_setting_reads_a_comma_separated_list(tmp_path: Path) -> None:
    environ = {"SHIPYARD_WEBHOOK_ALLOW": " Hooks.example.com, 10.0.0.0/8 ,,127.0.0.1:9000"}
    settings = Settings.load(environ=environ, cwd=tmp_path)
    assert settings.webhook_allow == ("hooks.example.com", "10.0.0.0/8", "127.0.0.1:9000")
    with pytest.raises(ConfigError, match="'https://x' is not a host name"):
        Settings.load(environ={"SHIPYARD_WEBHOOK_ALLOW": "https://x"}, cwd=tmp_path)
    assert Settings.load(environ={}, cwd=tmp_path).webhook_allow == ()
