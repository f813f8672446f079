"""Checks of what people give when they manage users and tokens."""

from __future__ import annotations

import re
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.store.users import ROLES
from shipyard.tracking import _validate

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
MAX_EXPIRES_DAYS = 3650


def user_name(name: Any) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"A user name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit, without '..'; got {name!r}.",
            hint="Use names such as 'alice' or 'ci-bot'.",
        )
    return name


def role(value: Any) -> str:
    if value not in ROLES:
        raise InvalidInput(
            f"A role is one of {', '.join(ROLES)}; got {value!r}.",
            hint="viewer reads; editor also writes runs, datasets and models; admin also "
            "manages users and tokens.",
        )
    return str(value)


def token_label(label: Any) -> str | None:
    return None if label is None else _validate.name("token", label)


def expires_days(days: Any) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXPIRES_DAYS:
        raise InvalidInput(
            f"A token's lifetime is a whole number of days from 1 to {MAX_EXPIRES_DAYS}; "
            f"got {days!r}.",
            hint="Leave it out for a token that lasts until it is revoked.",
        )
    return days


def token_id(value: Any) -> str:
    if not isinstance(value, str) or not _TOKEN_ID.fullmatch(value):
        raise InvalidInput(
            f"A token id is 12 hexadecimal digits, the part after 'sy_' in a token; got {value!r}.",
            hint="List token ids with `shipyard tokens list`.",
        )
    return value
