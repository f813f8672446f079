"""Every error Shipyard raises on purpose.

    ShipyardError
    ├── NotFound(LookupError)           the named object does not exist
    ├── AlreadyExists                   an object with that identity exists already
    ├── Conflict                        the change contradicts what is stored
    ├── InvalidInput(ValueError)        an argument, filter, path or value is malformed
    │   └── UnsafePath                  a path or URI escapes the root it must stay in
    ├── IntegrityError                  stored bytes or records fail their digest / chain
    ├── PermissionDenied(PermissionError)
    ├── StoreUnavailable(ConnectionError)  the metadata store or blob store cannot be reached
    └── ConfigError(ValueError)         a setting has a value Shipyard cannot use

Each carries readable text that says what was expected, what came and how to
fix it, plus fields for code that wants to branch on the details. Only
``shipyard.server`` maps these to HTTP statuses and only ``shipyard.cli`` to
exit codes.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "ShipyardError",
    "StoreUnavailable",
    "UnsafePath",
]


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    #: A short machine-readable code, stable across releases.
    code = "shipyard_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class NotFound(ShipyardError, LookupError):
    code = "not_found"

    def __init__(self, kind: str, key: object, *, hint: str | None = None) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"No {kind} {key!r}.", hint=hint)


class AlreadyExists(ShipyardError):
    code = "already_exists"

    def __init__(self, kind: str, key: object, *, hint: str | None = None) -> None:
        self.kind = kind
        self.key = key
        article = "An" if kind[:1].lower() in "aeiou" else "A"
        super().__init__(f"{article} {kind} {key!r} exists already.", hint=hint)


class Conflict(ShipyardError):
    code = "conflict"


class InvalidInput(ShipyardError, ValueError):
    code = "invalid_input"


class UnsafePath(InvalidInput):
    code = "unsafe_path"

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"Refused path {path!r}: {reason}.",
            hint="Give a relative path made of plain names inside the root, such as 'plots/roc.png'.",
        )


class IntegrityError(ShipyardError):
    code = "integrity_error"


class PermissionDenied(ShipyardError, PermissionError):
    code = "permission_denied"


class StoreUnavailable(ShipyardError, ConnectionError):
    code = "store_unavailable"


class ConfigError(ShipyardError, ValueError):
    code = "config_error"
