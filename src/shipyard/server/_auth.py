"""Who is calling, and may they: roles, principals and the ``requires`` dependency.

Every route declares the least role it needs with ``Depends(requires(Role.X))``;
a test walks the app's route table and fails on a route without one.

With ``auth`` on, a request is checked twice:

1. :class:`AuthMiddleware`, before routing, reads ``Authorization: Bearer
   <token>`` (401 without a valid one), finds the route the request will
   reach and checks the caller's role against the role it declares (403).
   FastAPI reads and parses a JSON body *before* it resolves dependencies, so
   without this a caller could make the server read 16 MiB, or turn a 401 or
   403 into a 422 with malformed JSON; with it, neither a stranger nor a
   viewer on a write route gets a byte of their body read. A route that
   declares no role counts as admin-only here: a forgotten declaration fails
   closed.
2. ``requires`` (the route's dependency) checks the role again, against the
   principal the middleware found, or authenticates itself when no middleware
   ran. It also hands the route its :class:`Principal`.

Nothing is cached between requests: the token is looked up in the store every
time, so a revoked token, an expired one or a disabled user is refused on the
very next request, by every replica sharing the store.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.server._errors import error_body, status_of
from shipyard.tracking import Client

#: Paths anyone may call, token or not.
PUBLIC_PATHS = frozenset({"/health"})
#: Where the middleware leaves the caller's principal for the rest of this one request.
PRINCIPAL_KEY = "shipyard.principal"


class Role(enum.IntEnum):
    """Each role can do everything the ones below it can."""

    viewer = 1  # reads
    editor = 2  # writes runs, datasets and models
    admin = 3  # manages users and tokens, moves protected aliases


@dataclasses.dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def client(self, request: Request) -> Client:
        """The server's client acting for this principal (its writes are audited under its name)."""
        return request.app.state.client.as_actor(self.name)


def requires(role: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's principal if their role is at least ``role``."""

    def dependency(request: Request) -> Principal:
        if not request.app.state.auth:
            # Without --auth the server trusts its (loopback) callers as its own actor.
            return Principal(request.app.state.client.actor, Role.admin)
        return _authenticate(request, role)

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the route-table test
    return dependency


def required_role(route: Any) -> Role | None:
    """The highest role a route's ``requires`` dependencies ask for (router-level ones
    included), or None when it declares none or is not an API route."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    found: list[Role] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop()
        role = getattr(sub.call, "required_role", None)
        if isinstance(role, Role):
            found.append(role)
        pending.extend(sub.dependencies)
    return max(found, default=None)


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route of ``app`` with its full path, ``methods`` and ``dependant``.

    Recent FastAPI keeps included routers as branches of the route table
    (``fastapi.routing.iter_route_contexts`` flattens them, with the dependencies
    of every include merged in); older FastAPI flattens them into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        return [route for route in app.routes if isinstance(route, APIRoute)]
    return [
        context
        for context in iter_route_contexts(app.router.routes)
        if isinstance(context.original_route, APIRoute)
    ]


# ------------------------------------------------------------------ refusals


@dataclasses.dataclass(eq=False)
class Refused(Exception):
    """Why a request is turned away: 401 (who are you?) or 403 (not allowed)."""

    status: int
    code: str
    message: str
    hint: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        if self.status != 401:
            return {}
        error = ', error="invalid_token"' if self.code == "invalid_token" else ""
        return {"WWW-Authenticate": f'Bearer realm="shipyard"{error}'}

    def response(self) -> JSONResponse:
        body = error_body(
            "unauthenticated" if self.status == 401 else "permission_denied",
            self.message,
            self.hint,
            **self.extra,
        )
        return JSONResponse(body, status_code=self.status, headers=self.headers)

    def http_exception(self) -> HTTPException:
        detail = f"{self.message} {self.hint}" if self.hint else self.message
        return HTTPException(self.status, detail=detail, headers=self.headers)


_TOKEN_HINT = (
    "Send `Authorization: Bearer <token>`; an admin creates tokens with "
    "`shipyard tokens create USER`."
)


def identify(client: Client, headers: Headers) -> Principal:
    """The principal of the request's bearer token; :class:`Refused` (401) otherwise."""
    header = headers.get("authorization")
    if header is None:
        raise Refused(401, "missing_token", "This server needs a token.", _TOKEN_HINT)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Refused(
            401,
            "invalid_token",
            "The Authorization header is not `Bearer <token>`.",
            _TOKEN_HINT,
        )
    user = client.authenticate(token)
    if user is None:
        # One answer for every reason, so a caller learns nothing about other tokens.
        raise Refused(
            401,
            "invalid_token",
            "The token is not valid: it is unknown, revoked or expired, or its user is disabled.",
            "Ask an admin for a new token (`shipyard tokens create USER`).",
        )
    return Principal(user.name, Role[user.role])


def check_role(principal: Principal, role: Role) -> None:
    if principal.role < role:
        raise Refused(
            403,
            "permission_denied",
            f"This needs the {role.name} role; user {principal.name!r} is a {principal.role.name}.",
            f"An admin can change it with `shipyard users set-role {principal.name} {role.name}`.",
            {"required_role": role.name},
        )


def _authenticate(request: Request, role: Role) -> Principal:
    principal = request.scope.get(PRINCIPAL_KEY)
    try:
        if not isinstance(principal, Principal):
            principal = identify(request.app.state.client, request.headers)
        check_role(principal, role)
    except Refused as refused:
        raise refused.http_exception() from None
    return principal


# ----------------------------------------------------------------- middleware


def role_for(route: Any) -> Role:
    """The role a request needs: its API route's declaration, or admin for an API route
    that forgot one (fail closed); viewer for anything else (the docs, the spec, a 404)."""
    if getattr(route, "dependant", None) is None:
        return Role.viewer
    return required_role(route) or Role.admin


class RouteTable:
    """Finds the API route a request will reach, before the router runs.

    It matches as Starlette does (path regex, then method, first match wins)
    over :func:`api_routes`, rebuilt when the app's route list changes.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._key: tuple[int, ...] = ()
        self._routes: list[Any] = []

    def routes(self) -> list[Any]:
        key = tuple(id(route) for route in self.app.router.routes)
        if key != self._key:
            self._routes, self._key = api_routes(self.app), key
        return self._routes

    def match(self, scope: Scope) -> Any | None:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        for route in self.routes():
            if route.path_regex.match(path) and method in route.methods:
                return route
        return None


class AuthMiddleware:
    """Authenticate (401) and authorise (403) before routing, so before the body is read.

    Every path but ``PUBLIC_PATHS`` needs a valid token. The role needed is the
    one the route the request will reach declares (see :func:`role_for`); the
    route's ``requires`` dependency checks it again after routing.
    """

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.table = RouteTable(fastapi_app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            principal = await run_in_threadpool(
                identify, self.fastapi_app.state.client, Headers(scope=scope)
            )
            check_role(principal, role_for(self.table.match(scope)))
        except Refused as refused:
            await refused.response()(scope, receive, send)
            return
        except ShipyardError as exc:  # the store cannot be reached, say
            response = JSONResponse(
                error_body(exc.code, exc.message, exc.hint), status_code=status_of(exc)
            )
            await response(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
