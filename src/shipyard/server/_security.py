"""The server's outer walls: Host check, CORS, authentication and a body size cap.

:func:`install` wraps the app in these layers, outermost first:

1. **Host check** (DNS rebinding). A web page on ``evil.example`` whose name
   is re-pointed at 127.0.0.1 can make a browser send requests to a server on
   loopback; those carry ``Host: evil.example``. A request whose Host header
   (port ignored) is not an allowed host gets 400 ``invalid_host``. ``*``
   allows any host. ``/health`` is exempt: load balancers and probes call it by
   IP, and it tells nothing but the version.
2. **CORS**, closed by default: without ``cors_origins`` no response carries
   ``Access-Control-Allow-Origin``, so no other site's script can read one.
   Tokens travel in the Authorization header, never in cookies, so
   credentials are never allowed.
3. **Authentication and roles** when ``auth`` is on: see
   :mod:`shipyard.server._auth` (it runs before the body is read).
4. **Body size cap** for JSON routes: a body over ``max_body_size`` (16 MiB by
   default) gets 413 ``payload_too_large``, whether the client sent
   Content-Length (refused before a byte is read) or streamed it chunked
   (refused once the cap is passed).

   *Streaming routes are not capped.* The rule, for whoever adds a route: a
   route is a streaming upload route when its ``openapi_extra`` has
   ``"x-shipyard-upload": true`` (``_routes._common.UPLOAD_BODY``), or when
   its **path template** has a segment ``artifacts``, ``blobs`` or ``files``
   (``/api/v1/runs/{run_id}/artifacts/{path:path}``, say). Such a route reads
   its body in chunks and must bound and verify what it reads itself
   (Content-Length and sha256). The template is what counts, not the
   request's path, so a name such as ``files`` given as a path parameter of a
   JSON route does not lift the cap.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ConfigError
from shipyard.server import _auth
from shipyard.server._errors import error_body

MAX_JSON_BODY = 16 * 1024 * 1024
STREAMING_SEGMENTS = frozenset({"artifacts", "blobs", "files"})
UPLOAD_MARKER = "x-shipyard-upload"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Paths served whatever the Host header says.
HOST_EXEMPT_PATHS = frozenset({"/health"})
_ORIGIN = re.compile(r"https?://[^/\s?#]+")


def install(
    app: FastAPI,
    *,
    auth: bool,
    allowed_hosts: Sequence[str],
    cors_origins: Sequence[str] = (),
    max_body_size: int = MAX_JSON_BODY,
) -> None:
    """Wrap ``app`` in the layers described above (Starlette runs the last added first)."""
    hosts = check_allowed_hosts(allowed_hosts)
    origins = check_cors_origins(cors_origins)
    app.add_middleware(BodyLimitMiddleware, fastapi_app=app, max_body_size=max_body_size)
    if auth:
        app.add_middleware(_auth.AuthMiddleware, fastapi_app=app)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # X-Shipyard-Digest: the sha256 an upload is checked against and a download carries.
            allow_headers=["Authorization", "Content-Type", "X-Shipyard-Digest"],
            expose_headers=["X-Shipyard-Digest"],
            allow_credentials=False,
        )
    app.add_middleware(HostCheckMiddleware, allowed_hosts=hosts)


# ----------------------------------------------------------------------- hosts


def is_loopback(host: str) -> bool:
    name = _bare(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether binding ``host`` listens on every interface (0.0.0.0, ::)."""
    try:
        return ipaddress.ip_address(_bare(host)).is_unspecified
    except ValueError:
        return False


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """The Host names a server bound to ``bind_host`` answers to unless told otherwise:
    the bind host and the loopback names. A wildcard bind has no default (None given)."""
    if is_wildcard(bind_host):
        raise ConfigError(
            f"A server bound to {bind_host} listens on every interface, so it cannot guess "
            "the host names its clients use.",
            hint="Name each with --allowed-host (e.g. --allowed-host shipyard.internal), "
            "or '*' to accept any Host header.",
        )
    return tuple(dict.fromkeys([_bare(bind_host), *LOOPBACK_HOSTS]))


def check_allowed_hosts(hosts: Sequence[str]) -> frozenset[str]:
    checked = set()
    for host in hosts:
        name = _bare(host) if isinstance(host, str) else ""
        if not name or any(c.isspace() or c in "/@?#" for c in name):
            raise ConfigError(
                f"An allowed host is a host name or IP address without scheme or port, or "
                f"'*'; got {host!r}.",
                hint="Use e.g. --allowed-host shipyard.internal.",
            )
        checked.add(name)
    if not checked:
        raise ConfigError("No allowed host given.", hint="Give at least one --allowed-host.")
    return frozenset(checked)


def _bare(host: str) -> str:
    """``host`` lower-cased, without IPv6 brackets or a trailing dot."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".") if name != "." else name


def host_of(header: str) -> str:
    """The host part of a Host header value (``name``, ``name:port``, ``[v6]:port``)."""
    value = header.strip()
    if value.startswith("["):
        end = value.find("]")
        return _bare(value[: end + 1]) if end > 0 else ""
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return _bare(value)


class HostCheckMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed_hosts
        self.any = "*" in allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.any:
            header = Headers(scope=scope).get("host", "")
            if host_of(header) not in self.allowed and scope["path"] not in HOST_EXEMPT_PATHS:
                response = JSONResponse(
                    error_body(
                        "invalid_host",
                        f"This server does not answer to the host {header!r}.",
                        "If clients reach it by that name, start it with --allowed-host NAME "
                        "(the check blocks DNS rebinding).",
                    ),
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------ CORS


def check_cors_origins(origins: Sequence[str]) -> tuple[str, ...]:
    checked = []
    for origin in origins:
        if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
            raise ConfigError(
                f"A CORS origin is a scheme and host with an optional port, such as "
                f"'https://ui.example.com', or '*'; got {origin!r}.",
                hint="Leave out any path or trailing slash.",
            )
        checked.append(origin.lower())
    return tuple(checked)


# ------------------------------------------------------------------- body size


def is_streaming(route: Any) -> bool:
    """Whether an API route streams its body (see the rule in the module docstring)."""
    if getattr(route, "dependant", None) is None:
        return False
    if (route.openapi_extra or {}).get(UPLOAD_MARKER):
        return True
    return not STREAMING_SEGMENTS.isdisjoint(route.path.split("/"))


class BodyLimitMiddleware:
    """413 for a JSON route's body over the cap; streaming routes pass through untouched.

    The check sits in ``receive``: when a route first asks for the body, routing
    has put it in ``scope["route"]``, which says whether it streams (the route
    table is asked when it has not). The error is an HTTPException, the one
    kind FastAPI lets through its body reading.
    """

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, max_body_size: int) -> None:
        self.app = app
        self.table = _auth.RouteTable(fastapi_app)
        self.limit = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streaming: bool | None = None
        size = 0

        async def capped_receive() -> Message:
            nonlocal streaming, size
            if streaming is None:
                route = scope["route"] if "route" in scope else self.table.match(scope)
                streaming = is_streaming(route)
                length = Headers(scope=scope).get("content-length", "")
                if not streaming and length.isdigit() and int(length) > self.limit:
                    raise self._too_large()
            message = await receive()
            if not streaming:
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise self._too_large()
            return message

        await self.app(scope, capped_receive, send)

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            detail=f"The request body is over {self.limit:,} bytes, the limit for JSON requests. "
            "Send files through the artifact and dataset upload routes, which stream.",
        )
