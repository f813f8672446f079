"""Data contracts: the expectations a dataset must meet, and their check over a stream.

A :class:`Contract` names, per column, the Arrow type, whether nulls are allowed,
inclusive bounds, the allowed categories and whether values must be unique,
plus a row key and row-count bounds. It is inferred from a first version
(:func:`infer_contract`), stored as a readable YAML document that people edit
(:meth:`Contract.to_yaml`, :meth:`Contract.from_yaml`), and every new version
is checked against it in the registration's single pass over record batches
(:class:`ContractChecker`). The :class:`ValidationReport` names each failed
expectation with a count and up to five example rows.

Why not pandera
---------------
Pandera was the first candidate: it is well kept and expressive. Its documentation
(Supported DataFrame Libraries) lists pandas, polars, ibis and pyspark backends,
and since 2026 (unionai-oss/pandera #2333 and #2427) a ``pyarrow.Table`` is
validated through its narwhals backend. Every one of them validates one whole
frame per ``validate()`` call; none takes a stream of record batches and keeps
state between calls. Fed 64k-row batches, ``unique`` would only compare rows
within a batch, failure counts and row indexes would restart at each batch, and a
row-count bound cannot be said at all; fed the whole table, it breaks the bound on
memory that registration keeps (a 5 GB CSV in under 1 GB resident). The checks
themselves are one or two Arrow compute kernels each, so they are written here on
``pyarrow.compute``, with counts, examples and seen keys carried across batches,
and no new dependency.

What is checked, and how
------------------------
- Schema, once, when the checker is made: every contract column is present, no
  other column is (unless ``allow_extra_columns``), and each has its type. A
  dictionary-encoded column counts as its value type. A column of another type
  whose values widen without loss (int32 to int64, float32 to double, string to
  large_string, ...) is reported and its values are still checked, cast; any
  other retyped column is reported and its values are not checked.
- Values, per batch, vectorised: ``not_null``, ``min`` and ``max`` (inclusive;
  numbers compared as numbers, dates and timestamps as dates and timestamps,
  text by code point), ``in_categories`` (a dictionary-encoded column is checked
  on its dictionary and spread back by index) and ``unique``. A batch's extremes
  (one numpy or Arrow pass) and its distinct values decide whether its rows need
  comparing at all, so a clean batch costs one pass per check; Python loops only
  run over the few example rows.
- NaN is not null. A NaN lies outside every range, so in a float column with a
  ``min`` or ``max`` it fails the ``not_nan`` expectation unless the rule says
  ``allow_nan: true``; a float column without bounds accepts NaN.
- Uniqueness across the whole stream keeps one 64-bit key per distinct value,
  in a few sorted numpy runs merged as they grow: 8 bytes a distinct key (twice
  that while merging), nothing per row. A single integer, date, time,
  timestamp, float or boolean column maps one to one onto 64 bits, so its check
  is exact. Text, bytes, decimals and composite keys are hashed and may collide,
  with odds of about n^2 / 2^65 for n distinct keys (3 in a million for ten
  million), which would report a false duplicate, never hide a true one. A row
  whose key holds a null is not compared (as SQL's UNIQUE); the ``nullable``
  rule speaks for nulls. ``failed`` counts the rows that repeat an earlier row's
  key. Identifiers that grow with the data skip the old runs by range and cost
  ~25 ns a row; keys in random order cost ~0.25-0.35 us a row, numpy's binary
  search being the largest cost of a check (a compiled hash set would remove it).
- Row counts, at the end: ``rows_min`` and ``rows_max`` (inclusive).

Inference rules (:func:`infer_contract`)
----------------------------------------
The inferred contract is a starting point that the first version meets; people
tighten it by editing the YAML.

- type: the observed Arrow type (a dictionary's value type); nullable: the
  column held a null.
- unique: an integer or text column whose exact distinct count equals its
  row count and its non-null count. On a handful of rows many columns look
  unique by chance: edit them. key: the first unique column whose name looks
  like an identifier (``id``, ``user_id``, ``orderId``, ``uuid``, ``key``), or none.
- min/max: the observed range of integer and float columns, exactly, not
  widened: a new extreme is reported, and in ``warn`` mode (the default) that
  is a note to edit, not a refusal. Dates and timestamps get the observed
  minimum but no maximum, because time moves forward; unique columns get no
  range, because identifiers grow; decimals get none, because a float bound may
  not hold the exact decimal; a float column that held an infinity gets none,
  because the profile's extremes are finite and do not say which sign came.
- allow_nan: true for float columns unless the profile reports ``nan_count == 0``
  (a profile without NaN counts cannot show their absence).
- categories: a text column with an exact distinct count of at most 50, and at
  most 5% of its non-null values, when the profile's top values list all of
  them.
- rows_min: 1 (an empty version is almost always a broken export; 0 when the
  first version is empty); rows_max: none, because datasets grow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from shipyard.errors import InvalidInput

__all__ = [
    "ColumnRule",
    "Contract",
    "ContractChecker",
    "Failure",
    "ValidationReport",
    "infer_contract",
]

MODES = ("warn", "strict")
#: Example rows kept per failed expectation.
MAX_EXAMPLES = 5
#: Example text longer than this is cut, so that a report stays readable and small.
MAX_EXAMPLE_CHARS = 200
#: Inference: a text column is categorical with at most this many distinct values ...
MAX_CATEGORIES = 50
#: ... that are at most this share of its non-null values.
MAX_CATEGORY_SHARE = 0.05

_RULE_FIELDS = ("type", "nullable", "min", "max", "allow_nan", "categories", "unique")
_CONTRACT_FIELDS = ("mode", "rows", "key", "allow_extra_columns", "columns")
_ROWS_FIELDS = ("min", "max")
#: Where a Contract field lives in the YAML document, when the names differ.
_YAML_PATHS = {"rows_min": ("rows", "min"), "rows_max": ("rows", "max")}
_ID_NAME = re.compile(r"(?:^|[_\-\s.])(?i:id|uuid|guid|key)$|[a-z0-9](?:Id|ID|Uuid|Key)$")

_TYPE_HINT = (
    "Use an Arrow type name such as int64, double, string, bool, date32[day], "
    "timestamp[us] or timestamp[us, tz=UTC], decimal128(10, 2)."
)
_NESTED_PREFIXES = (
    "list<",
    "large_list<",
    "fixed_size_list<",
    "struct<",
    "map<",
    "fixed_size_binary[",
)
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=([^\]]+))?\]")
_DECIMAL = re.compile(r"decimal(128|256)\((\d+), ?(\d+)\)")

_YAML_HEADER = """\
# Shipyard data contract: what every new version of this dataset must meet.
# Edit it freely; the edited document is stored as the next contract version.
#   mode                 warn: store a failing version with its report; strict: refuse it
#   rows                 inclusive bounds on the row count (null: no bound)
#   key                  columns whose values together identify a row (checked unique)
#   allow_extra_columns  accept columns that this contract does not name
#   columns              one entry per column, in order:
#     type        Arrow type: int64, double, string, bool, date32[day], timestamp[us], ...
#     nullable    whether nulls are allowed
#     min, max    inclusive bounds: numbers, or ISO text for dates and timestamps
#     allow_nan   float columns: accept NaN (otherwise NaN fails a min/max range)
#     categories  the only values a text column may hold
#     unique      no value may appear twice
"""


# ------------------------------------------------------------------ field validation


class _FieldError(Exception):
    """A contract field with a value we cannot use; its caller adds where it was written."""

    def __init__(self, field: str, problem: str, hint: str) -> None:
        super().__init__(field, problem, hint)
        self.field, self.problem, self.hint = field, problem, hint

    def invalid(self, where: str) -> InvalidInput:
        return InvalidInput(f"{where}: {self.field} {self.problem}.", hint=self.hint)


def _parse_type(text: object) -> pa.DataType | None:
    """The Arrow type a rule names; None for nested types, which are compared by name only."""
    if not isinstance(text, str) or not text:
        raise _FieldError("type", f"must be an Arrow type name, got {text!r}", _TYPE_HINT)
    if text.startswith(_NESTED_PREFIXES):
        return None
    try:
        if match := _TIMESTAMP.fullmatch(text):
            return pa.timestamp(match[1], tz=match[2])
        if match := _DECIMAL.fullmatch(text):
            make = pa.decimal128 if match[1] == "128" else pa.decimal256
            return make(int(match[2]), int(match[3]))
        return pa.type_for_alias(text)
    except (ValueError, pa.ArrowException) as exc:
        raise _FieldError("type", f"{text!r} is not an Arrow type ({exc})", _TYPE_HINT) from None


def _is_text(arrow_type: pa.DataType | None) -> bool:
    return arrow_type is not None and (
        pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    )


def _is_float(arrow_type: pa.DataType | None) -> bool:
    return arrow_type is not None and pa.types.is_floating(arrow_type)


def _is_number(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def _is_hashable(arrow_type: pa.DataType | None) -> bool:
    """Whether uniqueness can be checked on the type (see ``_value_keys``)."""
    if arrow_type is None:
        return False
    checks = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_boolean,
        pa.types.is_temporal,
        pa.types.is_decimal,
        pa.types.is_null,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
    )
    return any(check(arrow_type) for check in checks)


def _require_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _FieldError(
            field,
            f"must be true or false, got {value!r}",
            f"Write {field}: true or {field}: false.",
        )


def _plain_bound(value: object) -> object:
    """YAML reads unquoted dates and timestamps as Python objects; a rule keeps their ISO text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _bound_scalar(field: str, value: object, arrow_type: pa.DataType | None) -> pa.Scalar:
    """The Arrow scalar a bound compares as, for a column of ``arrow_type``."""
    hint = "Bound numbers with numbers, dates and timestamps with ISO text such as '2024-01-31' or '2024-01-31T12:00:00' (with an offset such as +00:00 when the type has a time zone), and text with text."
    if arrow_type is None or not (
        _is_number(arrow_type)
        or _is_text(arrow_type)
        or pa.types.is_timestamp(arrow_type)
        or pa.types.is_date(arrow_type)
    ):
        raise _FieldError(
            field,
            f"cannot bound a {arrow_type or 'nested'} column",
            "Remove the bound: min and max apply to numbers, dates, timestamps and text.",
        )
    if _is_number(arrow_type):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and math.isnan(value))
        ):
            raise _FieldError(
                field, f"must be a number for a {arrow_type} column, got {value!r}", hint
            )
        try:
            return pa.scalar(value)
        except OverflowError as exc:
            raise _FieldError(field, f"{value} does not fit in 64 bits", hint) from exc
    if not isinstance(value, str):
        raise _FieldError(field, f"must be text for a {arrow_type} column, got {value!r}", hint)
    if _is_text(arrow_type):
        return pa.scalar(value, arrow_type)
    try:
        return pa.scalar(value).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _FieldError(
            field, f"{value!r} is not a {arrow_type} value ({str(exc).splitlines()[0]})", hint
        ) from exc


def _check_categories(value: object, arrow_type: pa.DataType | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not _is_text(arrow_type):
        raise _FieldError(
            "categories",
            f"apply to text columns only, not {arrow_type or 'nested'}",
            "Remove categories; bound numbers with min and max.",
        )
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _FieldError(
            "categories",
            f"must be a list of text values, got {value!r}",
            "Write categories: [red, green, blue].",
        )
    for item in value:
        if not isinstance(item, str):
            raise _FieldError(
                "categories",
                f"must hold text only, got {item!r}",
                "Quote values such as '1' or 'yes' so that YAML reads them as text.",
            )
    if not value:
        raise _FieldError(
            "categories", "must list at least one value", "Remove categories to accept any value."
        )
    repeated = [item for item, times in Counter(value).items() if times > 1]
    if repeated:
        raise _FieldError("categories", f"list {repeated[0]!r} twice", "List each category once.")
    return tuple(value)


def _check_range(low: pa.Scalar | None, high: pa.Scalar | None) -> None:
    if low is not None and high is not None and pc.greater(low, high).as_py():
        raise _FieldError(
            "min",
            f"({low}) is greater than max ({high})",
            "Make min no greater than max, or remove one of them.",
        )


def _normalise_rule(fields: dict[str, Any]) -> dict[str, Any]:
    """Check a rule's fields; return them with the canonical spelling of type and bounds."""
    name, arrow_type = fields["name"], _parse_type(fields["type"])
    if not isinstance(name, str) or not name:
        raise _FieldError(
            "name",
            f"must be a non-empty text, got {name!r}",
            "Quote column names that YAML would read as numbers or dates.",
        )
    normal = {**fields, "type": fields["type"] if arrow_type is None else str(arrow_type)}
    for flag in ("nullable", "unique", "allow_nan"):
        _require_bool(flag, normal[flag])
    if normal["allow_nan"] and not _is_float(arrow_type):
        raise _FieldError(
            "allow_nan",
            f"applies to float columns only, not {normal['type']}",
            "Remove allow_nan from this column.",
        )
    scalars = {}
    for bound in ("min", "max"):
        normal[bound] = _plain_bound(normal[bound])
        scalars[bound] = (
            None if normal[bound] is None else _bound_scalar(bound, normal[bound], arrow_type)
        )
    _check_range(scalars["min"], scalars["max"])
    normal["categories"] = _check_categories(normal["categories"], arrow_type)
    if normal["unique"] and not _is_hashable(arrow_type):
        raise _FieldError(
            "unique",
            f"cannot be checked on a {normal['type']} column",
            "Remove unique from this column.",
        )
    return normal


def _check_rows(field: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _FieldError(
            field,
            f"must be a whole number of rows >= 0 or null, got {value!r}",
            "Write e.g. min: 1000, or null for no bound.",
        )


def _normalise_key(key: object, rules: Mapping[str, ColumnRule]) -> tuple[str, ...] | None:
    if key is None:
        return None
    names = (key,) if isinstance(key, str) else key
    if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
        raise _FieldError(
            "key",
            f"must be a column name or a list of them, got {key!r}",
            "Write key: id, or key: [store, day].",
        )
    hint = (
        "Name columns of this contract, each once, whose types can be compared (not nested types)."
    )
    for name in names:
        if name not in rules:
            raise _FieldError("key", f"names {name!r}, which is not a column of the contract", hint)
        if not _is_hashable(_parse_type(rules[name].type)):
            raise _FieldError(
                "key", f"names {name!r}, whose type {rules[name].type} cannot be compared", hint
            )
        if names.count(name) > 1:  # a key has a handful of columns
            raise _FieldError("key", f"names {name!r} twice", hint)
    return tuple(names) or None


def _normalise_contract(fields: dict[str, Any]) -> dict[str, Any]:
    """Check a contract's fields; return them with columns as a tuple and key as a tuple or None."""
    columns = fields["columns"]
    if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
        raise _FieldError(
            "columns",
            f"must be a sequence of ColumnRule, got {columns!r}",
            "Build each column with ColumnRule(...).",
        )
    columns = tuple(columns)
    if not all(isinstance(rule, ColumnRule) for rule in columns):
        raise _FieldError(
            "columns",
            "must hold ColumnRule objects only",
            "Build each column with ColumnRule(...).",
        )
    repeated = [name for name, times in Counter(rule.name for rule in columns).items() if times > 1]
    if repeated:
        raise _FieldError(
            "columns",
            f"name {repeated[0]!r} twice",
            "Each column appears once; merge the two entries.",
        )
    if fields["mode"] not in MODES:
        raise _FieldError(
            "mode",
            f"must be 'warn' or 'strict', got {fields['mode']!r}",
            "warn stores a failing version with its report; strict refuses it.",
        )
    _require_bool("allow_extra_columns", fields["allow_extra_columns"])
    low, high = fields["rows_min"], fields["rows_max"]
    _check_rows("rows_min", low)
    _check_rows("rows_max", high)
    if low is not None and high is not None and low > high:
        raise _FieldError(
            "rows_min",
            f"({low}) is greater than the maximum ({high})",
            "Make the minimum no greater than the maximum.",
        )
    key = _normalise_key(fields["key"], {rule.name: rule for rule in columns})
    return {**fields, "columns": columns, "key": key}


def _set_fields(instance: object, normal: dict[str, Any]) -> None:
    """Store normalised values on a frozen dataclass (only its own __post_init__ calls this)."""
    for name, value in normal.items():
        object.__setattr__(instance, name, value)


# ---------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class ColumnRule:
    """What one column must hold. Bounds are inclusive; see the module docstring for NaN."""

    name: str
    #: Arrow type name, e.g. "int64", "double", "string", "timestamp[us]", "date32[day]".
    type: str
    nullable: bool = True
    #: Numbers for numeric columns; ISO text for dates and timestamps; text for text columns.
    min: float | int | str | None = None
    max: float | int | str | None = None
    categories: tuple[str, ...] | None = None
    unique: bool = False
    #: Float columns with a range: accept NaN (by default NaN fails ``not_nan``).
    allow_nan: bool = False

    def __post_init__(self) -> None:
        try:
            _set_fields(self, _normalise_rule(dataclasses.asdict(self)))
        except _FieldError as exc:
            raise exc.invalid(f"Column rule {self.name!r}") from None


@dataclass(frozen=True)
class Contract:
    """The expectations a dataset must meet; read and written as YAML."""

    columns: tuple[ColumnRule, ...]
    rows_min: int | None = None
    rows_max: int | None = None
    mode: Literal["warn", "strict"] = "warn"
    allow_extra_columns: bool = False
    #: Columns whose values together identify a row; checked unique.
    key: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        fields = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        try:
            _set_fields(self, _normalise_contract(fields))
        except _FieldError as exc:
            raise exc.invalid("Contract") from None

    def to_yaml(self) -> str:
        """The contract as a commented YAML document, in a stable order; ``from_yaml`` reads it back."""
        document = {
            "mode": self.mode,
            "rows": {"min": self.rows_min, "max": self.rows_max},
            "key": None if self.key is None else list(self.key),
            "allow_extra_columns": self.allow_extra_columns,
            "columns": {rule.name: _rule_document(rule) for rule in self.columns},
        }
        body = yaml.dump(
            document,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=100,
        )
        return _YAML_HEADER + body

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<contract>") -> Contract:
        """Read a contract document; a malformed one raises InvalidInput naming source, line and field."""
        try:
            document = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f", line {mark.line + 1}" if mark else ""
            raise InvalidInput(
                f"{source}{line}: not valid YAML: {exc.problem or exc.context}.",
                hint="Fix the YAML syntax: indentation, colons, quotes; inside {...} or [...], quote values that hold brackets or commas, such as 'timestamp[us]'.",
            ) from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{source}: not valid YAML: {exc}.") from None
        return _Reader(source, document).contract()


def _rule_document(rule: ColumnRule) -> dict[str, Any]:
    """A rule as YAML fields; optional fields at their defaults are left out."""
    entry: dict[str, Any] = {"type": rule.type, "nullable": rule.nullable}
    if rule.min is not None:
        entry["min"] = rule.min
    if rule.max is not None:
        entry["max"] = rule.max
    if rule.allow_nan:
        entry["allow_nan"] = True
    if rule.categories is not None:
        entry["categories"] = list(rule.categories)
    if rule.unique:
        entry["unique"] = True
    return entry


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists (``key: [a, b]``): one column rule per indented block."""


_Dumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)
# Line separators and control characters in a plain or single-quoted scalar come back
# as spaces or break the line; double quotes make PyYAML escape them (\N, \L, \x85).
_Dumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style=None if data.isprintable() else '"'
    ),
)


class _Mapping(dict):
    """A YAML mapping that remembers its own line, each key's line, and keys written twice."""

    line: int
    lines: dict[Any, int]
    repeated: list[tuple[Any, int]]


class _Loader(yaml.SafeLoader):
    """A safe loader whose mappings are ``_Mapping``s (PyYAML otherwise keeps the last repeat)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line, mapping.lines, mapping.repeated = node.start_mark.line + 1, {}, []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be plain text", key_node.start_mark
            )
        line = key_node.start_mark.line + 1
        if key in mapping:
            mapping.repeated.append((key, line))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines.setdefault(key, line)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Turns a loaded YAML document into a Contract; every refusal names source, line and field."""

    def __init__(self, source: str, document: object) -> None:
        self.source, self.document = source, document

    def fail(
        self, path: Sequence[Any], problem: str, hint: str, *, line: int | None = None
    ) -> InvalidInput:
        line = line or self._line(path)
        where = self.source if line is None else f"{self.source}, line {line}"
        return InvalidInput(f"{where}: {_dotted(path)} {problem}.", hint=hint)

    def _line(self, path: Sequence[Any]) -> int | None:
        """The line of the deepest part of ``path`` that was written."""
        node, line = self.document, None
        for part in path:
            if not isinstance(node, _Mapping):
                break
            line = node.lines.get(part, node.line)
            if part not in node:
                break
            node = node[part]
        return line

    def mapping(
        self, path: tuple[Any, ...], value: object, allowed: Sequence[str], what: str
    ) -> _Mapping:
        """``value`` as a mapping with no repeated and no unknown keys."""
        if not isinstance(value, _Mapping):
            raise self.fail(
                path,
                f"must be a mapping of {what}, got {value!r}",
                f"Indent {', '.join(allowed)} under {path[-1]}:.",
            )
        if value.repeated:
            key, line = value.repeated[0]
            raise self.fail(path, f"has {key!r} twice", "Write each field once.", line=line)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                guess = f"Did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    (*path, key),
                    "is not a known field",
                    f"{guess}Allowed fields: {', '.join(allowed)}.",
                )
        return value

    def contract(self) -> Contract:
        if not isinstance(self.document, _Mapping):
            raise InvalidInput(
                f"{self.source}: a contract is a YAML mapping, got {self.document!r}.",
                hint=f"Write the fields {', '.join(_CONTRACT_FIELDS)} at the top level.",
            )
        top = self.mapping((), self.document, _CONTRACT_FIELDS, "contract fields")
        if "columns" not in top:
            raise InvalidInput(
                f"{self.source}: the contract has no columns field.",
                hint="Add columns: with one entry per column (columns: {} for none).",
            )
        rules = tuple(self.rule(name, spec) for name, spec in self.columns(top["columns"]).items())
        rows = top.get("rows")
        rows = {} if rows is None else self.mapping(("rows",), rows, _ROWS_FIELDS, "row bounds")
        fields = {
            "columns": rules,
            "rows_min": rows.get("min"),
            "rows_max": rows.get("max"),
            "mode": top.get("mode", "warn"),
            "allow_extra_columns": top.get("allow_extra_columns", False),
            "key": top.get("key"),
        }
        try:
            return Contract(**_normalise_contract(fields))
        except _FieldError as exc:
            raise self.fail(
                _YAML_PATHS.get(exc.field, (exc.field,)), exc.problem, exc.hint
            ) from None

    def columns(self, value: object) -> _Mapping:
        if not isinstance(value, _Mapping):
            raise self.fail(
                ("columns",),
                f"must be a mapping of column name to rule, got {value!r}",
                "Write columns: then one indented entry per column, e.g. age: {type: int64}.",
            )
        if value.repeated:
            name, line = value.repeated[0]
            raise self.fail(
                ("columns",),
                f"names {name!r} twice",
                "Each column appears once; merge the two entries.",
                line=line,
            )
        for name in value:
            if not isinstance(name, str):
                raise self.fail(
                    ("columns", name), "is not text", f"Quote the column name: '{name}':."
                )
        return value

    def rule(self, name: str, spec: object) -> ColumnRule:
        path = ("columns", name)
        spec = self.mapping(path, spec, _RULE_FIELDS, "rule fields")
        if "type" not in spec:
            raise self.fail(path, "has no type", _TYPE_HINT)
        fields = {
            "name": name,
            "nullable": True,
            "min": None,
            "max": None,
            "categories": None,
            "unique": False,
            "allow_nan": False,
        }
        try:
            return ColumnRule(**_normalise_rule({**fields, **spec}))
        except _FieldError as exc:
            raise self.fail((*path, exc.field), exc.problem, exc.hint) from None


def _dotted(path: Sequence[Any]) -> str:
    """``columns.age.min``; the document itself for the empty path."""
    return ".".join(map(str, path)) or "the contract"


# ------------------------------------------------------------------------ the report


@dataclass(frozen=True)
class Failure:
    """One failed expectation: what was expected, what came, how often, and where."""

    #: not_null, not_nan, min, max, in_categories, unique, type, column_present,
    #: no_extra_columns, rows_min or rows_max.
    expectation: str
    #: The column, or None for the dataset's row count and for a composite key.
    column: str | None
    #: Failing rows; 1 for a schema-level or row-count expectation.
    failed: int
    message: str
    #: Up to five ``{"row": index, "value": value}``, values made JSON-ready.
    examples: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking one dataset version against its contract."""

    passed: bool
    rows_checked: int
    failures: tuple[Failure, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN, no dates: examples hold text for those)."""
        return {
            "passed": self.passed,
            "rows_checked": self.rows_checked,
            "failures": [
                {**dataclasses.asdict(failure), "examples": list(failure.examples)}
                for failure in self.failures
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        try:
            failures = tuple(
                Failure(**{**item, "examples": tuple(item["examples"])})
                for item in data["failures"]
            )
            return cls(
                passed=bool(data["passed"]),
                rows_checked=int(data["rows_checked"]),
                failures=failures,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"A stored validation report is malformed: {exc!r}.",
                hint="Give the dict that ValidationReport.to_dict() made.",
            ) from None

    def summary(self) -> str:
        """One line when every expectation is met, else one line per failed expectation."""
        if self.passed:
            return f"All expectations met on {self.rows_checked:,} rows."
        return "\n".join(_summary_line(failure) for failure in self.failures)


def _summary_line(failure: Failure) -> str:
    where = f" {failure.column!r}" if failure.column is not None else ""
    shown = ", ".join(f"row {example['row']}: {example['value']!r}" for example in failure.examples)
    return f"{failure.expectation}{where}: {failure.message}" + (
        f" (e.g. {shown})" if shown else ""
    )


def _plain_values(values: pa.Array) -> list[Any]:
    """JSON-ready Python values: exact text for dates, times and decimals, hex for bytes."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_temporal(kind) or pa.types.is_decimal(kind):
        # Arrow's own text is exact (nanoseconds included) and stores as JSON.
        return pc.cast(values, pa.string()).to_pylist()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [None if value is None else value.hex() for value in values.to_pylist()]
    if pa.types.is_struct(kind):  # a composite key's values, one dict per row
        fields = [_plain_values(part) for part in values.flatten()]
        names = [kind.field(i).name for i in range(kind.num_fields)]
        return [dict(zip(names, row, strict=True)) for row in zip(*fields, strict=True)]
    return [_plain(value) for value in values.to_pylist()]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        return value[:MAX_EXAMPLE_CHARS] + "…"
    return value


def _plain_scalar(value: pa.Scalar) -> Any:
    return _plain_values(pa.array([value], value.type))[0]


@dataclass
class _Tally:
    """The running count and first examples of one expectation over the stream."""

    expectation: str
    column: str | None
    failed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, failing: pa.BooleanArray, values: pa.Array, row_offset: int) -> None:
        """Count the rows where ``failing`` is true; keep examples until there are enough."""
        count = failing.true_count
        if not count:
            return
        self.failed += count
        wanted = MAX_EXAMPLES - len(self.examples)
        if wanted > 0:
            rows = pc.indices_nonzero(failing)[:wanted]
            picked = _plain_values(values.take(rows))
            self.examples += [
                {"row": row_offset + row, "value": value}
                for row, value in zip(rows.to_pylist(), picked, strict=True)
            ]

    def failure(self, message: str) -> Failure:
        return Failure(self.expectation, self.column, self.failed, message, tuple(self.examples))


def _per_row(values: pa.Array, compute: Any) -> pa.Array:
    """``compute`` per row; on a dictionary column, computed once per distinct value and spread by index."""
    if pa.types.is_dictionary(values.type):
        return pc.take(compute(values.dictionary), values.indices)
    return compute(values)


# ---------------------------------------------------------------------- value checks


class _NotNull:
    """No nulls (the null count comes with each Arrow array, so a clean batch costs nothing)."""

    def __init__(self, name: str) -> None:
        self.tally = _Tally("not_null", name)

    def update(self, values: pa.Array, row_offset: int) -> None:
        if values.null_count:
            self.tally.add(pc.is_null(values), values, row_offset)

    def failures(self, rows: int) -> list[Failure]:
        tally = self.tally
        return (
            [tally.failure(f"expected no nulls; {tally.failed:,} of {rows:,} rows are null")]
            if tally.failed
            else []
        )


def _extremes(values: pa.Array) -> tuple[pa.Scalar | None, pa.Scalar | None, bool]:
    """The lowest and highest value (NaN aside; None when there are none), and whether NaN occurs."""
    if pa.types.is_floating(values.type) and not values.null_count and len(values):
        # numpy's SIMD min/max is ~10x Arrow's for floats, and a NaN minimum reveals NaN.
        numbers = values.to_numpy(zero_copy_only=True)
        lowest = numbers.min()
        if not np.isnan(lowest):
            return pa.scalar(lowest, values.type), pa.scalar(numbers.max(), values.type), False
        has_nan = True
    else:
        has_nan = pa.types.is_floating(values.type) and pc.any(pc.is_nan(values)).as_py() is True
    extremes = pc.min_max(values)  # skips nulls and NaN
    lowest, highest = extremes["min"], extremes["max"]
    return (lowest, highest, has_nan) if lowest.is_valid else (None, None, has_nan)


class _Range:
    """Inclusive ``min``/``max``, and ``not_nan`` for float columns with a range."""

    def __init__(self, rule: ColumnRule, arrow_type: pa.DataType) -> None:
        self.rule = rule
        self.low = None if rule.min is None else _bound_scalar("min", rule.min, arrow_type)
        self.high = None if rule.max is None else _bound_scalar("max", rule.max, arrow_type)
        self.check_nan = _is_float(arrow_type) and not rule.allow_nan
        self.below, self.above, self.nan = (
            _Tally("min", rule.name),
            _Tally("max", rule.name),
            _Tally("not_nan", rule.name),
        )
        self.lowest: pa.Scalar | None = None
        self.highest: pa.Scalar | None = None

    def update(self, values: pa.Array, row_offset: int) -> None:
        lowest, highest, has_nan = _extremes(
            values.dictionary if pa.types.is_dictionary(values.type) else values
        )
        if self.check_nan and has_nan:
            self.nan.add(_per_row(values, pc.is_nan), values, row_offset)
        # The batch's extremes decide whether its rows need comparing at all.
        if self.low is not None and lowest is not None and pc.less(lowest, self.low).as_py():
            self.below.add(_per_row(values, lambda v: pc.less(v, self.low)), values, row_offset)
            if self.lowest is None or pc.less(lowest, self.lowest).as_py():
                self.lowest = lowest
        if self.high is not None and highest is not None and pc.greater(highest, self.high).as_py():
            self.above.add(_per_row(values, lambda v: pc.greater(v, self.high)), values, row_offset)
            if self.highest is None or pc.greater(highest, self.highest).as_py():
                self.highest = highest

    def failures(self, rows: int) -> list[Failure]:
        found = []
        if self.nan.failed:
            found.append(
                self.nan.failure(
                    f"expected numbers within the range; {self.nan.failed:,} of {rows:,} rows are NaN (allow_nan: true accepts them)"
                )
            )
        if self.below.failed:
            found.append(
                self.below.failure(
                    f"expected values >= {self.rule.min!r}; {self.below.failed:,} of {rows:,} rows are below, the lowest {_plain_scalar(self.lowest)!r}"
                )
            )
        if self.above.failed:
            found.append(
                self.above.failure(
                    f"expected values <= {self.rule.max!r}; {self.above.failed:,} of {rows:,} rows are above, the highest {_plain_scalar(self.highest)!r}"
                )
            )
        return found


class _Categories:
    """Every non-null value is one of the rule's categories."""

    def __init__(self, rule: ColumnRule) -> None:
        self.allowed = pa.array(rule.categories, pa.string())
        self.tally = _Tally("in_categories", rule.name)

    def update(self, values: pa.Array, row_offset: int) -> None:
        allowed = self.allowed.cast(
            values.dictionary.type if pa.types.is_dictionary(values.type) else values.type
        )
        # The batch's few distinct values decide whether its rows need comparing at all.
        distinct = pc.unique(values.dictionary if pa.types.is_dictionary(values.type) else values)
        if pc.all(pc.is_in(distinct.drop_null(), value_set=allowed)).as_py() is not False:
            return
        inside = _per_row(values, lambda v: pc.is_in(v, value_set=allowed, skip_nulls=True))
        self.tally.add(pc.and_(pc.invert(inside), pc.is_valid(values)), values, row_offset)

    def failures(self, rows: int) -> list[Failure]:
        if not self.tally.failed:
            return []
        shown = ", ".join(map(repr, self.allowed.to_pylist()[:10])) + (
            ", ..." if len(self.allowed) > 10 else ""
        )
        return [
            self.tally.failure(
                f"expected one of {len(self.allowed)} categories ({shown}); {self.tally.failed:,} of {rows:,} rows hold other values"
            )
        ]


# ---------------------------------------------------------------------- uniqueness

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection on 64-bit values that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    return x


_BYTE_VALUES = _mix(np.arange(256, dtype=np.uint64) + _GOLDEN) | np.uint64(1)


def _bytes_hashes(values: pa.Array) -> np.ndarray:
    """A 64-bit hash per string: a sum over its bytes of (a random odd number per byte value)
    times (a random odd number per position), mixed with the length.

    The sum is done for a whole batch at once with a cumulative sum cut at the
    string offsets, so there is no loop over rows.
    """
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    offset_type = np.int64 if large else np.int32
    buffers, size = values.buffers(), np.dtype(offset_type).itemsize
    offsets = np.frombuffer(buffers[1], offset_type, len(values) + 1, values.offset * size)
    offsets = offsets.astype(np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(buffers[2], np.uint8, last - first, first)
        if last > first
        else np.zeros(0, np.uint8)
    )
    starts, lengths = offsets[:-1] - first, np.diff(offsets)
    position = np.arange(last - first, dtype=np.int64) - np.repeat(starts, lengths)
    weights = _mix(np.arange(int(lengths.max(initial=0)), dtype=np.uint64) + _MIX_2) | np.uint64(1)
    per_byte = _BYTE_VALUES[data] * weights[position]
    running = np.concatenate((np.zeros(1, np.uint64), np.cumsum(per_byte, dtype=np.uint64)))
    totals = running[offsets[1:] - first] - running[starts]
    return _mix(totals ^ _mix(lengths.astype(np.uint64) + _GOLDEN))


def _fixed_width_keys(values: pa.Array) -> np.ndarray:
    """Each integer, date, time, timestamp or duration as a uint64 in the same order (nulls: anything)."""
    width = values.type.bit_width // 8
    if pa.types.is_unsigned_integer(values.type):
        raw = np.frombuffer(values.buffers()[1], f"<u{width}", len(values), values.offset * width)
        return raw.astype(np.uint64)
    raw = np.frombuffer(values.buffers()[1], f"<i{width}", len(values), values.offset * width)
    # Flipping the sign bit maps int64 order onto uint64 order.
    return raw.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)


def _value_keys(values: pa.Array) -> np.ndarray:
    """A uint64 per row, equal for equal values; a row that is null gets an arbitrary one.

    Numbers, dates, times and booleans map one to one (exact, and ordered for
    integers and times, so that growing identifiers fall outside old runs); text,
    bytes and decimals are hashed.
    """
    kind = values.type
    if pa.types.is_dictionary(kind):
        if not len(values.dictionary):
            return np.zeros(len(values), np.uint64)
        indices = pc.fill_null(values.indices, 0).to_numpy().astype(np.int64)
        return _value_keys(values.dictionary)[indices]
    if pa.types.is_null(kind):
        return np.zeros(len(values), np.uint64)
    if pa.types.is_decimal(kind):
        return _bytes_hashes(pc.cast(values, pa.string()))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or _is_text(kind):
        return _bytes_hashes(values)
    if pa.types.is_floating(kind):
        # Equal numbers must map alike: + 0.0 turns -0.0 into 0.0, and every NaN gets one pattern.
        numbers = pc.fill_null(values.cast(pa.float64()), 0.0).to_numpy() + 0.0
        numbers[np.isnan(numbers)] = np.nan
        return numbers.view(np.uint64)
    if pa.types.is_boolean(kind):
        return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(np.uint64)
    return _fixed_width_keys(values)


def _row_keys(columns: list[pa.Array]) -> np.ndarray:
    """One uint64 per row for a key of one column (exact where ``_value_keys`` is) or several (hashed)."""
    if len(columns) == 1:
        return _value_keys(columns[0])
    keys = _mix(_value_keys(columns[0]) + _GOLDEN)
    for values in columns[1:]:
        keys = _mix(keys * _MIX_1 + _mix(_value_keys(values) + _GOLDEN))
    return keys


class _SeenKeys:
    """Every distinct key seen so far, as a few sorted runs of uint64 (8 bytes a key).

    A batch's new keys become a run; runs merge when the newer one reaches half
    the older one's size, so there are about log2(keys / batch) of them and each
    key is copied that often. A key is looked up only in runs whose range holds
    it, which makes identifiers that grow with the data almost free; keys in
    random order (hashed text, shuffled identifiers) pay a binary search per run.
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Record ``keys``; return True where a key was seen before (in an earlier batch or row)."""
        ordered = np.sort(keys)
        repeat = ordered[1:] == ordered[:-1]
        fresh = ordered[np.concatenate(([True], ~repeat))] if repeat.any() else ordered
        earlier = self._contains(fresh)
        self._insert(fresh[~earlier])
        if len(fresh) == len(keys) and not earlier.any():
            return np.zeros(len(keys), bool)
        return _repeats(keys, fresh[earlier])

    def _contains(self, fresh: np.ndarray) -> np.ndarray:
        """Which of the sorted, distinct ``fresh`` keys are in a run."""
        found = np.zeros(len(fresh), bool)
        for run in self.runs:
            low = np.searchsorted(fresh, run[0], side="left")
            high = np.searchsorted(fresh, run[-1], side="right")
            if low < high:
                inside = fresh[low:high]
                found[low:high] |= run[np.searchsorted(run, inside)] == inside
        return found

    def _insert(self, new: np.ndarray) -> None:
        if len(new):
            self.runs.append(new)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            newer, older = self.runs.pop(), self.runs.pop()
            merged = np.concatenate((older, newer))
            if older[-1] > newer[0]:  # ranges overlap; runs of growing keys are in order already
                merged.sort(kind="stable")  # timsort finds the two runs: a linear merge
            self.runs.append(merged)


def _repeats(keys: np.ndarray, old: np.ndarray) -> np.ndarray:
    """True for rows whose key is in ``old`` (sorted) or in an earlier row of ``keys``."""
    order = np.argsort(keys, kind="stable")  # stable: a key's first row sorts first
    ordered = keys[order]
    seen = np.zeros(len(keys), bool)
    seen[order[1:][ordered[1:] == ordered[:-1]]] = True
    if len(old):
        seen |= old[np.minimum(np.searchsorted(old, keys), len(old) - 1)] == keys
    return seen


class _Unique:
    """No two rows share a value of ``names`` (one column, or a composite key)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.seen = _SeenKeys()
        self.tally = _Tally("unique", names[0] if len(names) == 1 else None)

    def update(self, columns: list[pa.Array], row_offset: int) -> None:
        keys = _row_keys(columns)
        complete = None
        for values in columns:
            if values.null_count:
                valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
                complete = valid if complete is None else complete & valid
        if complete is None:
            repeated = self.seen.add(keys)
        else:
            repeated = np.zeros(len(keys), bool)
            repeated[complete] = self.seen.add(keys[complete])
        if repeated.any():
            shown = (
                columns[0]
                if len(columns) == 1
                else pa.StructArray.from_arrays(columns, names=list(self.names))
            )
            self.tally.add(pa.array(repeated), shown, row_offset)

    def failures(self, rows: int) -> list[Failure]:
        if not self.tally.failed:
            return []
        what = (
            "each value"
            if len(self.names) == 1
            else f"each combination of {', '.join(map(repr, self.names))}"
        )
        return [
            self.tally.failure(
                f"expected {what} to appear once; {self.tally.failed:,} of {rows:,} rows repeat an earlier row"
            )
        ]


# ------------------------------------------------------------------------ the checker


def _extra_columns(contract: Contract, schema: pa.Schema) -> list[Failure]:
    known = {rule.name for rule in contract.columns}
    return [
        Failure(
            "no_extra_columns",
            item.name,
            1,
            f"expected only the contract's columns; the data adds {item.name!r} of type {item.type} (allow_extra_columns: true accepts it)",
        )
        for item in schema
        if item.name not in known
    ]


_MANTISSA_BITS = {16: 11, 32: 24, 64: 53}


def _widens(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether every value of ``source`` converts to ``target`` without loss."""
    if pa.types.is_integer(source) and pa.types.is_integer(target):
        if pa.types.is_signed_integer(source) == pa.types.is_signed_integer(target):
            return target.bit_width >= source.bit_width
        return pa.types.is_unsigned_integer(source) and target.bit_width > source.bit_width
    if pa.types.is_integer(source) and pa.types.is_floating(target):
        return source.bit_width < _MANTISSA_BITS[target.bit_width]
    if pa.types.is_floating(source) and pa.types.is_floating(target):
        return target.bit_width >= source.bit_width
    pairs = (
        {pa.string(), pa.large_string()},
        {pa.binary(), pa.large_binary()},
        {pa.date32(), pa.date64()},
    )
    return any(source in pair and target in pair for pair in pairs)


@dataclass
class _Column:
    """How one contract column is read from each batch, and what is checked on it."""

    name: str
    index: int
    cast: pa.DataType | None
    checks: list[Any]


class ContractChecker:
    """Checks a stream of record batches against a contract, in one pass and bounded memory.

    Schema-level expectations are decided here; ``update`` checks each batch's
    values; ``report`` adds the row-count bounds and returns what failed.
    """

    def __init__(self, contract: Contract, schema: pa.Schema) -> None:
        self.contract = contract
        self.rows = 0
        self.schema_failures: list[Failure] = []
        self.columns = [column for rule in contract.columns if (column := self._plan(rule, schema))]
        if not contract.allow_extra_columns:
            self.schema_failures += _extra_columns(contract, schema)
        checked = {column.name for column in self.columns}
        self.uniques = [_Unique(key) for key in self._unique_keys(checked)]

    def _plan(self, rule: ColumnRule, schema: pa.Schema) -> _Column | None:
        """The column's checks; None when it is missing or too retyped for its values to be checked."""
        if rule.name not in schema.names:
            message = f"expected a column {rule.name!r} of type {rule.type}; the data has none"
            self.schema_failures.append(Failure("column_present", rule.name, 1, message))
            return None
        index = schema.names.index(rule.name)
        actual = schema.field(index).type
        expected = _parse_type(rule.type)
        plain = actual.value_type if pa.types.is_dictionary(actual) else actual
        cast = None
        if str(plain) != rule.type:
            if expected is None or not _widens(plain, expected):
                message = f"expected {rule.type}, found {actual}; converting {plain} to {rule.type} can lose or refuse values, so the column's values were not checked"
                self.schema_failures.append(Failure("type", rule.name, 1, message))
                return None
            message = f"expected {rule.type}, found {actual}; {plain} converts to {rule.type} without loss, so the values were checked as {rule.type}"
            self.schema_failures.append(Failure("type", rule.name, 1, message))
            cast = expected
        checks: list[Any] = []
        if not rule.nullable:
            checks.append(_NotNull(rule.name))
        if rule.min is not None or rule.max is not None:
            checks.append(_Range(rule, expected))
        if rule.categories is not None:
            checks.append(_Categories(rule))
        return _Column(rule.name, index, cast, checks)

    def _unique_keys(self, checkable: set[str]) -> list[tuple[str, ...]]:
        """Unique columns and the key, each once, among the columns whose values are checked."""
        keys = [(rule.name,) for rule in self.contract.columns if rule.unique]
        if self.contract.key is not None and self.contract.key not in keys:
            keys.append(self.contract.key)
        return [key for key in keys if checkable.issuperset(key)]

    def update(self, batch: pa.RecordBatch, row_offset: int) -> None:
        """Check one batch whose first row is row ``row_offset`` of the dataset."""
        self.rows += batch.num_rows
        prepared = {}
        for column in self.columns:
            values = batch.column(column.index)
            if column.cast is not None:
                values = values.cast(column.cast)
            prepared[column.name] = values
            for check in column.checks:
                check.update(values, row_offset)
        for unique in self.uniques:
            unique.update([prepared[name] for name in unique.names], row_offset)

    def report(self) -> ValidationReport:
        failures = list(self.schema_failures)
        for check in [check for column in self.columns for check in column.checks] + self.uniques:
            failures += check.failures(self.rows)
        failures += self._row_count_failures()
        return ValidationReport(
            passed=not failures, rows_checked=self.rows, failures=tuple(failures)
        )

    def _row_count_failures(self) -> list[Failure]:
        low, high = self.contract.rows_min, self.contract.rows_max
        if low is not None and self.rows < low:
            message = f"expected at least {_rows(low)}; the data has {_rows(self.rows)}"
            return [Failure("rows_min", None, 1, message)]
        if high is not None and self.rows > high:
            message = f"expected at most {_rows(high)}; the data has {_rows(self.rows)}"
            return [Failure("rows_max", None, 1, message)]
        return []


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


# ------------------------------------------------------------------------- inference


def infer_contract(
    schema: pa.Schema, profile: Any, *, mode: Literal["warn", "strict"] = "warn"
) -> Contract:
    """A contract that the profiled version meets, by the rules in the module docstring.

    ``profile`` needs ``.rows`` and ``.columns[name]`` with ``count`` (non-null
    values), ``nulls``, ``distinct`` (None when unknown), ``distinct_is_exact``,
    ``min``, ``max`` and ``top_values`` (a mapping of value to count, or
    (value, count) pairs), and may have ``nan_count`` and ``inf_count`` (as
    :class:`shipyard.data._profile.ColumnProfile` has).
    """
    rows = int(profile.rows)
    rules = tuple(_infer_rule(item, profile.columns[item.name], rows) for item in schema)
    key = next((rule.name for rule in rules if rule.unique and _ID_NAME.search(rule.name)), None)
    return Contract(
        columns=rules,
        rows_min=min(1, rows),
        rows_max=None,
        mode=mode,
        key=None if key is None else (key,),
    )


def _infer_rule(item: pa.Field, stats: Any, rows: int) -> ColumnRule:
    arrow_type = item.type.value_type if pa.types.is_dictionary(item.type) else item.type
    unique = _looks_unique(arrow_type, stats, rows)
    low, high = (None, None) if unique else _observed_range(arrow_type, stats)
    nans = getattr(stats, "nan_count", None)
    return ColumnRule(
        name=item.name,
        type=str(arrow_type),
        nullable=int(stats.nulls) > 0,
        min=low,
        max=high,
        categories=_observed_categories(arrow_type, stats),
        unique=unique,
        allow_nan=_is_float(arrow_type) and (nans is None or int(nans) > 0),
    )


def _looks_unique(arrow_type: pa.DataType, stats: Any, rows: int) -> bool:
    if not (pa.types.is_integer(arrow_type) or _is_text(arrow_type)):
        return False
    if stats.distinct is None or not stats.distinct_is_exact:
        return False
    return 0 < rows == int(stats.count) == int(stats.distinct)


def _observed_range(arrow_type: pa.DataType, stats: Any) -> tuple[Any, Any]:
    """Observed bounds that the rule can hold exactly (None where it cannot, or should not)."""
    if pa.types.is_floating(arrow_type) and getattr(stats, "inf_count", None):
        return None, None
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return _inferred_bound(stats.min, arrow_type), _inferred_bound(stats.max, arrow_type)
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return _inferred_bound(stats.min, arrow_type), None
    return None, None


def _inferred_bound(value: Any, arrow_type: pa.DataType) -> Any:
    """A profile's extreme as a rule bound, or None when it is missing or does not read back."""
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        value = value.isoformat()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        _bound_scalar("min", value, arrow_type)
    except _FieldError:
        return None
    return value


def _observed_categories(arrow_type: pa.DataType, stats: Any) -> tuple[str, ...] | None:
    """The column's values, sorted, when it looks categorical and the profile lists them all."""
    if not _is_text(arrow_type) or stats.distinct is None or not stats.distinct_is_exact:
        return None
    distinct = int(stats.distinct)
    if not 0 < distinct <= min(MAX_CATEGORIES, MAX_CATEGORY_SHARE * int(stats.count)):
        return None
    top = stats.top_values or ()
    values = list(top) if isinstance(top, Mapping) else [pair[0] for pair in top]
    if len(values) < distinct or not all(isinstance(value, str) for value in values):
        return None
    return tuple(sorted(values))
