"""Shipyard errors as HTTP responses: one JSON shape, a status per error class."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard import errors

#: The most specific class wins (checked in order).
STATUS: tuple[tuple[type[errors.ShipyardError], int], ...] = (
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.PermissionDenied, 403),
    (errors.IntegrityError, 422),
    (errors.InvalidInput, 400),
    (errors.ConfigError, 400),
    (errors.StoreUnavailable, 503),
)


def error_body(code: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"error": {"code": ..., "message": ..., "hint": ...}}``: the body of every 4xx/5xx."""
    return {"error": {"code": code, "message": message, "hint": hint, **extra}}


def status_of(exc: errors.ShipyardError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""

    @app.exception_handler(errors.ShipyardError)
    async def shipyard_error(request: Request, exc: errors.ShipyardError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.hint), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return JSONResponse(
            error_body(
                "invalid_input",
                f"Bad request: {first['where']}: {first['problem']}.",
                "See the OpenAPI spec at /api/v1/openapi.json.",
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthenticated",
            403: "permission_denied",
            404: "not_found",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
