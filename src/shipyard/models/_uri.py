"""Model references: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, and name rules."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from shipyard.errors import InvalidInput

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# An alias may not look like a version number, so ``NAME@3`` can never be ambiguous.
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_URI = re.compile(r"models:/(?P<name>[^/@]*)(?:/(?P<version>[^/@]*)|@(?P<alias>[^/@]*))")
RESERVED_ALIASES = frozenset({"latest"})


@dataclasses.dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return (
            f"models:/{self.name}/{self.version}"
            if self.version
            else f"models:/{self.name}@{self.alias}"
        )


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"A model name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit, without '..'; got {name!r}.",
            hint="Use names such as 'credit' or 'credit-risk.v2'.",
        )
    return name


def check_alias(alias: Any, *, settable: bool = True) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InvalidInput(
            f"An alias is 1 to 64 letters, digits, '_' or '-', starting with a letter or '_'; "
            f"got {alias!r}.",
            hint="Use aliases such as 'champion' or 'challenger'.",
        )
    if settable and alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"The alias {alias!r} is reserved: it always means the newest ready version.",
            hint="Choose another alias name.",
        )
    return alias


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        if isinstance(version, str) and version.isdigit() and int(version) >= 1:
            return int(version)
        raise InvalidInput(f"A model version is a whole number from 1; got {version!r}.")
    return version


def parse(uri: Any) -> ModelRef:
    """Parse ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (``@latest`` included)."""
    match = _URI.fullmatch(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise InvalidInput(
            f"Bad model URI {uri!r}.",
            hint="Write models:/NAME/VERSION or models:/NAME@ALIAS, e.g. models:/credit@champion.",
        )
    name = check_name(match.group("name"))
    if match.group("alias") is not None:
        return ModelRef(name, alias=check_alias(match.group("alias"), settable=False))
    return ModelRef(name, version=check_version(match.group("version")))
