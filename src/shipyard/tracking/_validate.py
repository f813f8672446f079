"""Checks of user-given names and values, shared by the client and the fluent API."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.store._schema import KEY_LENGTH, NAME_LENGTH

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_VALUE_LENGTH = 64_000


def key(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > KEY_LENGTH or _CONTROL.search(value):
        raise InvalidInput(
            f"A {kind} key must be a non-empty string of at most {KEY_LENGTH} printable "
            f"characters; got {value!r}.",
            hint="Use names such as 'learning_rate' or 'val/auc'.",
        )
    return value


# Metric keys repeat across millions of points; each distinct key is checked once.
_checked_metric_keys: set[str] = set()
_CHECKED_KEYS_LIMIT = 100_000
_INT64 = (-(2**63), 2**63)


def point(
    run_pk: int, k: Any, value: Any, step_: Any, timestamp_: Any
) -> tuple[int, str, float, int, int]:
    """One validated metric point; plain floats and ints take a fast path."""
    if k not in _checked_metric_keys:
        key("metric", k)
        if len(_checked_metric_keys) >= _CHECKED_KEYS_LIMIT:
            _checked_metric_keys.clear()
        _checked_metric_keys.add(k)
    value_type = type(value)
    if value_type is not float:
        value = float(value) if value_type is int else metric_value(k, value)
    if type(step_) is not int or not _INT64[0] <= step_ < _INT64[1]:
        step(k, step_)
    if type(timestamp_) is not int or not 0 <= timestamp_ < _INT64[1]:
        timestamp(k, timestamp_)
    return (run_pk, k, value, step_, timestamp_)


def name(kind: str, value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > NAME_LENGTH
        or _CONTROL.search(value)
    ):
        raise InvalidInput(
            f"A {kind} name must be a non-empty string of at most {NAME_LENGTH} printable "
            f"characters; got {value!r}."
        )
    return value


def text_value(kind: str, k: str, value: Any) -> str:
    """Params and tags are strings; numbers and booleans are turned into their text."""
    if isinstance(value, bool | int | float | str):
        text = str(value)
    else:
        raise InvalidInput(
            f"The value of {kind} {k!r} must be a string, number or boolean; got {type(value).__name__}.",
            hint="Log structured values as an artifact, or serialise them to a string first.",
        )
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInput(
            f"The value of {kind} {k!r} has {len(text)} characters; the limit is {MAX_VALUE_LENGTH}.",
            hint="Log long values as an artifact.",
        )
    return text


def text_mapping(kind: str, values: Mapping[str, Any] | None) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"{kind.capitalize()}s must be a mapping of key to value; got {type(values).__name__}."
        )
    return {key(kind, k): text_value(kind, k, v) for k, v in values.items()}


def metric_value(k: str, value: Any) -> float:
    # numbers.Real admits numpy scalars; bool is an int subclass but never a metric.
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"Metric {k!r} must be a real number (NaN and ±inf allowed); got {value!r}.")


def step(k: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise InvalidInput(
            f"The step of metric {k!r} must be an integer in the 64-bit range; got {value!r}."
        )
    return value


def timestamp(k: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidInput(
            f"The timestamp of metric {k!r} must be whole milliseconds since the epoch; got {value!r}."
        )
    return value
