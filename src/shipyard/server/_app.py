"""The FastAPI application: routers under /api/v1, errors as JSON, security middleware."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence

import anyio.to_thread
from fastapi import FastAPI

from shipyard._version import __version__
from shipyard.errors import ConfigError
from shipyard.server import _errors, _security
from shipyard.tracking import Client

API_PREFIX = "/api/v1"
#: How ``shipyard server`` hands its options to the app in each uvicorn worker
#: process (JSON); an internal channel, not a setting.
OPTIONS_VARIABLE = "SHIPYARD_SERVER_OPTIONS"


def create_app(
    client: Client | None = None,
    *,
    auth: bool = False,
    allowed_hosts: Sequence[str] = _security.LOOPBACK_HOSTS,
    cors_origins: Sequence[str] = (),
    max_body_size: int = _security.MAX_JSON_BODY,
) -> FastAPI:
    """The app serving ``client``'s store (a Client from the settings by default).

    ``auth`` requires a bearer token on every route but /health.
    ``allowed_hosts`` are the Host header values accepted (DNS rebinding).
    ``cors_origins`` are the web origins whose scripts may read responses (none by default).
    ``max_body_size`` caps JSON request bodies; streaming upload routes are not capped.
    See :mod:`shipyard.server._security`.
    """
    from shipyard.server import _routes

    app = FastAPI(
        lifespan=_close_deployments,
        title="Shipyard",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.client = client or Client()
    app.state.auth = auth
    app.state.allowed_hosts = tuple(allowed_hosts)
    _errors.install(app)
    _security.install(
        app,
        auth=auth,
        allowed_hosts=allowed_hosts,
        cors_origins=cors_origins,
        max_body_size=max_body_size,
    )
    for router in _routes.ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers. No token needed."""
        return {"status": "ok", "version": __version__}

    return app


@contextlib.asynccontextmanager
async def _close_deployments(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, flush and close the prediction logs of the deployments served here."""
    yield
    endpoints = getattr(app.state, "endpoints", None)
    if endpoints is not None:
        await anyio.to_thread.run_sync(endpoints.close)


def app_from_environment(environ: Mapping[str, str] | None = None) -> FastAPI:
    """The app ``shipyard server`` runs in each uvicorn worker (``--factory``).

    Options come from ``SHIPYARD_SERVER_OPTIONS`` (JSON, written by the
    command), the store from the usual settings. Started any other way, with
    the variable unset, it fails closed: auth on, loopback hosts, no CORS.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(OPTIONS_VARIABLE) or "{}"
    try:
        options = json.loads(raw)
        if not isinstance(options, dict):
            raise ValueError("not an object")
        settings = {
            "auth": bool(options.get("auth", True)),
            "allowed_hosts": list(options.get("allowed_hosts", _security.LOOPBACK_HOSTS)),
            "cors_origins": list(options.get("cors_origins", ())),
            "max_body_size": int(options.get("max_body_size", _security.MAX_JSON_BODY)),
        }
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{OPTIONS_VARIABLE} is not a JSON object of server options: {exc}.",
            hint="Start the server with `shipyard server`.",
        ) from exc
    return create_app(**settings)
