"""The remote client's own plumbing: which URI makes one, and how server errors come back.

Everything a user calls is in ``tests/contract/``, against a live server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import shipyard as sy
from shipyard import errors
from shipyard.config import Settings
from shipyard.tracking import _remote
from shipyard.tracking._remote import RemoteClient


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("HTTP://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("https://sy.example.com/shipyard/api/v1/", "https://sy.example.com/shipyard"),
    ],
)
def test_a_server_uri_makes_a_remote_client(uri: str, url: str) -> None:
    client = sy.Client(uri)
    assert type(client) is RemoteClient
    assert client.url == url
    assert url in repr(client)


@pytest.mark.parametrize(
    "uri", ["http://", "http://ann:pw@host:5000", "http://host:5000?token=x", "http://host/#f"]
)
def test_a_malformed_server_uri_is_a_config_error(uri: str) -> None:
    with pytest.raises(errors.ConfigError, match="Bad server URI"):
        sy.Client(uri)


def test_a_store_uri_still_makes_an_embedded_client(tmp_path: Path) -> None:
    client = sy.Client(f"sqlite:///{tmp_path / 's.db'}", artifacts=str(tmp_path / "b"))
    assert type(client) is sy.Client
    assert type(client.as_actor("eve")) is sy.Client


def test_the_token_is_never_shown(tmp_path: Path) -> None:
    environ = {"SHIPYARD_TOKEN": "sy_abc_secret", "XDG_CONFIG_HOME": str(tmp_path)}
    settings = Settings.load(environ=environ, cwd=tmp_path, uri="http://127.0.0.1:5000")
    assert settings.token == "sy_abc_secret"
    client = sy.Client(settings=settings)
    assert "secret" not in repr(settings)
    assert "secret" not in repr(client)


def test_an_unreachable_server_is_store_unavailable_naming_it() -> None:
    client = sy.Client("http://127.0.0.1:9")
    with pytest.raises(errors.StoreUnavailable, match=r"http://127\.0\.0\.1:9"):
        client.list_experiments()


def _response(status: int, code: str | None, message: str = "m") -> httpx.Response:
    request = httpx.Request("GET", "http://127.0.0.1/api/v1/x")
    if code is None:
        return httpx.Response(status, text="<html>oops</html>", request=request)
    body = {"error": {"code": code, "message": message, "hint": "h"}}
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "not_found", errors.NotFound),
        (400, "invalid_input", errors.InvalidInput),
        (422, "invalid_input", errors.InvalidInput),
        (400, "unsafe_path", errors.UnsafePath),
        (403, "permission_denied", errors.PermissionDenied),
        (401, "unauthenticated", errors.PermissionDenied),
        (422, "integrity_error", errors.IntegrityError),
        (409, "conflict", errors.Conflict),
        (409, "already_exists", errors.AlreadyExists),
        (413, "payload_too_large", errors.InvalidInput),
        (503, "store_unavailable", errors.StoreUnavailable),
        (400, "config_error", errors.ConfigError),
        (500, "shipyard_error", errors.ShipyardError),
        (404, None, errors.NotFound),
        (502, None, errors.ShipyardError),
    ],
)
def test_error_bodies_come_back_as_shipyard_errors(
    status: int, code: str | None, expected: type[errors.ShipyardError]
) -> None:
    exc = _remote._error_from(_response(status, code), token_sent=True)
    assert type(exc) is expected
    if code is not None:
        assert (exc.message, exc.hint) == ("m", "h")
    else:
        assert str(status) in exc.message


def test_a_contract_violation_keeps_its_class() -> None:
    from shipyard.data import ContractViolation

    exc = _remote._error_from(_response(400, "contract_violation"), token_sent=True)
    assert isinstance(exc, ContractViolation)
    assert exc.report is None


def test_a_401_without_a_token_says_to_set_one() -> None:
    exc = _remote._error_from(_response(401, "unauthenticated"), token_sent=False)
    assert isinstance(exc, errors.PermissionDenied)
    assert "SHIPYARD_TOKEN" in str(exc)
