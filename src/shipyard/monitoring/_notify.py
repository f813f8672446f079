"""How an alert is told: a log line always, and a webhook POST to an allowed host.

A webhook sends data out of the network Shipyard runs in, and the URL is
chosen by whoever wrote the rule; so the request is held on a short leash:

- ``http`` or ``https`` only, no user name or password in the URL;
- the URL's host must be on the allow-list (setting ``webhook_allow``,
  ``SHIPYARD_WEBHOOK_ALLOW``): ``name`` (any port), ``name:port``, an IP
  address (``10.0.0.7``, ``[fd00::7]:8443``) or a network (``10.0.0.0/8``);
- the host is resolved once (:func:`socket.getaddrinfo`), and every address
  it resolves to must be public unless that address is listed itself, as an
  address or inside a listed network: a listed name that resolves to a
  loopback, private, link-local, multicast, reserved or unspecified address is
  refused (server-side request forgery into the local network);
- the connection goes to the first resolved address and no other: the
  network backend is pinned to it, so a second DNS answer (DNS rebinding)
  cannot redirect the request. The URL keeps its host name, so the ``Host``
  header, TLS SNI and certificate verification are for the name;
- 5 seconds for each of connect, write and read, no retries, no redirects (a
  3xx answer is a failure).

A failure never raises out of :func:`send`: it returns the reason, which the
caller records on the alert (``notify_error``) and logs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import socket
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import httpcore

from shipyard.errors import ConfigError, InvalidInput

log = logging.getLogger("shipyard.alerts")

SCHEMES = ("http", "https")
#: Seconds for each of connect, write and read.
TIMEOUT = 5.0
MAX_URL_LENGTH = 2048
_SETTING = "webhook_allow (SHIPYARD_WEBHOOK_ALLOW)"
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One allow-list entry: a host name or an address (a network), maybe with a port."""

    name: str | None
    network: IPNetwork | None
    port: int | None


class AllowList:
    """The hosts webhooks may call, from the ``webhook_allow`` setting's entries."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = [_entry(text) for text in entries]

    def permits_host(self, host: str, port: int) -> bool:
        """Whether the URL's host (a name or an address literal) and port are listed."""
        address = _address(host)
        for entry in self.entries:
            if entry.port is not None and entry.port != port:
                continue
            if address is None and entry.name == host:
                return True
            if address is not None and entry.network is not None and address in entry.network:
                return True
        return False

    def permits_address(self, address: IPAddress, port: int) -> bool:
        """Whether a resolved address is listed itself (needed for one that is not public)."""
        return any(
            entry.network is not None and address in entry.network and entry.port in (None, port)
            for entry in self.entries
        )


def _entry(text: str) -> _Entry:
    host, port = text.strip().lower(), None
    if host.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = host[1:].partition("]")
        host, port = inside, _port(text, rest.removeprefix(":")) if rest else None
    elif host.count(":") == 1:  # name:port or v4:port (a bare v6 address has several)
        host, _, after = host.partition(":")
        port = _port(text, after)
    try:
        return _Entry(None, ipaddress.ip_network(host, strict=False), port)
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not all(label and set(label) <= _NAME_CHARACTERS for label in labels):
        raise ConfigError(
            f"Setting {_SETTING} has the entry {text!r}, which is neither a host name nor an "
            "IP address or network.",
            hint="Write entries such as hooks.example.com, hooks.example.com:8443, "
            "10.0.0.7 or 10.0.0.0/8, separated by commas.",
        )
    return _Entry(host.rstrip("."), None, port)


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(
            f"Setting {_SETTING} has the entry {entry!r}, whose port {text!r} is not a "
            "number from 1 to 65535.",
            hint="Write HOST:PORT, e.g. hooks.example.com:8443.",
        )
    return int(text)


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _restricted(address: IPAddress) -> str | None:
    """Why ``address`` may not be called unless listed; None for a public address."""
    # Most specific first: a link-local or unspecified address is "private" too.
    for kind in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "not public"


@dataclasses.dataclass(frozen=True)
class Target:
    """A checked webhook URL, in the parts the request is made of (no second parse)."""

    scheme: str
    host: str
    port: int
    target: str  # path and query


def check_url(url: str, allow: AllowList) -> Target:
    """``url`` checked for scheme and form and its host against the allow-list (no DNS)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            f"A webhook URL must be a string of 1 to {MAX_URL_LENGTH} characters; got "
            f"{_shown(url)}.",
            hint="Give an http:// or https:// URL, e.g. https://hooks.example.com/shipyard.",
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(
            f"The webhook URL {_shown(url)} cannot be read: {exc}.",
            hint="Give an http:// or https:// URL, e.g. https://hooks.example.com/shipyard.",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidInput(
            f"The webhook URL {_shown(url)} has the scheme {parts.scheme!r}; only http and "
            "https are sent.",
            hint="Give an http:// or https:// URL.",
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "The webhook URL carries a user name or password (user:secret@host), which "
            "would be stored and shown with the rule.",
            hint="Put a token in the URL's path or query instead, as most webhook services do.",
        )
    host = (parts.hostname or "").rstrip(".")
    if not host or not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidInput(
            f"The webhook URL {_shown(url)} names no host, or holds white space, control "
            "characters or characters outside ASCII.",
            hint="Give a URL such as https://hooks.example.com/shipyard; percent-encode "
            "the path and write an international domain name in its xn-- form.",
        )
    port = port or (443 if scheme == "https" else 80)
    if not allow.permits_host(host, port):
        raise InvalidInput(
            f"The webhook host {host!r} (port {port}) is not on the allow-list.",
            hint=f"Add it to the setting {_SETTING}, e.g. SHIPYARD_WEBHOOK_ALLOW={host}; the "
            "server that runs the monitors reads it.",
        )
    path = parts.path or "/"
    return Target(scheme, host, port, f"{path}?{parts.query}" if parts.query else path)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def resolve(target: Target, allow: AllowList) -> IPAddress:
    """The one address the request goes to, resolved once and checked (see module docstring)."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(f"The webhook host {target.host!r} does not resolve: {exc}.") from None
    # An IPv6 link-local answer may carry a scope ("fe80::1%eth0").
    answers = [_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    addresses = [address for address in answers if address is not None]
    if not addresses or len(addresses) != len(answers):
        raise InvalidInput(f"The webhook host {target.host!r} resolved to no usable address.")
    for address in addresses:
        why = _restricted(address)
        if why is not None and not allow.permits_address(address, target.port):
            raise InvalidInput(
                f"The webhook host {target.host!r} resolves to {address}, a {why} address, "
                "which webhooks may not call unless it is listed itself.",
                hint=f"If that address is meant, add it to the setting {_SETTING} "
                f"(e.g. {address} or its network).",
            )
    return addresses[0]


class _PinnedBackend(httpcore.SyncBackend):
    """Opens every TCP connection to one address and port, whatever the request names."""

    def __init__(self, address: IPAddress, port: int) -> None:
        self.address, self.port = str(address), port

    def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.NetworkStream:
        return super().connect_tcp(self.address, self.port, *args, **kwargs)


def post(target: Target, address: IPAddress, payload: Mapping[str, Any]) -> None:
    """POST ``payload`` as JSON to ``target`` over a connection to ``address``; raise on failure."""
    body = json.dumps(payload, allow_nan=False, default=str).encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (b"User-Agent", b"shipyard-alerts"),
    ]
    timeout = {"connect": TIMEOUT, "read": TIMEOUT, "write": TIMEOUT, "pool": TIMEOUT}
    url = httpcore.URL(
        scheme=target.scheme,
        host=f"[{target.host}]" if ":" in target.host else target.host,  # an IPv6 literal
        port=target.port,
        target=target.target,
    )
    with (
        httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            network_backend=_PinnedBackend(address, target.port),
            max_connections=1,
            retries=0,
        ) as pool,
        pool.stream(
            "POST", url, headers=headers, content=body, extensions={"timeout": timeout}
        ) as response,
    ):
        if not 200 <= response.status < 300:
            redirect = " (redirects are not followed)" if 300 <= response.status < 400 else ""
            raise InvalidInput(f"The webhook answered HTTP {response.status}{redirect}.")


def send(url: str, allow_entries: Iterable[str], payload: Mapping[str, Any]) -> str | None:
    """Deliver one webhook; the reason it was not delivered, or None when it was."""
    try:
        allow = AllowList(allow_entries)
        target = check_url(url, allow)
        post(target, resolve(target, allow), payload)
    except (InvalidInput, ConfigError) as exc:
        return exc.message
    except (httpcore.TimeoutException, TimeoutError) as exc:
        return f"The webhook did not answer within {TIMEOUT:g} s ({type(exc).__name__})."
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        return f"The webhook could not be reached: {exc or type(exc).__name__}."
    return None
