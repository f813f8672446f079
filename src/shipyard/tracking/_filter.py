"""Parse run filters and orderings into the store's search tree.

Grammar (keywords are case-insensitive)::

    filter     := and_expr ("OR" and_expr)*
    and_expr   := atom ("AND" atom)*
    atom       := "(" filter ")" | comparison
    comparison := field op value | field ["NOT"] "IN" "(" value ("," value)* ")"
    field      := ("metrics" | "params" | "tags" | "attributes") "." (name | `quoted name`)
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"

``metric`` / ``param`` / ``tag`` / ``attribute`` and a bare attribute name
(``status``, ``run_name``) are accepted too. Metrics compare with numbers;
params and tags with strings (equality, LIKE, IN) as in MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shipyard.errors import InvalidInput
from shipyard.store.search import ATTRIBUTES, BoolOp, Comparison, Expr, Kind, OrderBy

_KINDS: dict[str, Kind] = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}
_ALL_OPS = _STRING_OPS | {"<", "<=", ">", ">="}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf(?:inity)?|nan)(?![\w.]))
  | (?P<field>[A-Za-z_]\w*(?:\.(?:`[^`]+`|[\w\-/.]+))?)
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.IGNORECASE,
)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                raise _error(text, pos, f"unexpected character {text[pos]!r}")
            kind = match.lastgroup or ""
            if kind != "ws":
                self.items.append((kind, match.group(), pos))
            pos = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def next(self, expected: str) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise _error(
                self.text, len(self.text), f"expected {expected}, got the end of the filter"
            )
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "field" and token[1].upper() in words:
            self.index += 1
            return True
        return False


def _error(text: str, pos: int, what: str) -> InvalidInput:
    return InvalidInput(
        f"Bad filter {text!r} at character {pos + 1}: {what}.",
        hint="Example: metrics.auc > 0.9 and params.model = 'lr' and tags.team = 'risk'.",
    )


def parse_filter(text: str | None) -> Expr | None:
    if text is None or not text.strip():
        return None
    tokens = _Tokens(text)
    expr = _or(tokens)
    leftover = tokens.peek()
    if leftover is not None:
        raise _error(text, leftover[2], f"expected AND, OR or the end, got {leftover[1]!r}")
    return expr


def _or(tokens: _Tokens) -> Expr:
    parts = [_and(tokens)]
    while tokens.keyword("OR"):
        parts.append(_and(tokens))
    return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))


def _and(tokens: _Tokens) -> Expr:
    parts = [_atom(tokens)]
    while tokens.keyword("AND"):
        parts.append(_atom(tokens))
    return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))


def _atom(tokens: _Tokens) -> Expr:
    token = tokens.peek()
    if token is not None and token[1] == "(":
        tokens.next("(")
        expr = _or(tokens)
        closing = tokens.next("')'")
        if closing[1] != ")":
            raise _error(tokens.text, closing[2], f"expected ')', got {closing[1]!r}")
        return expr
    return _comparison(tokens)


def _field(text: str, token: tuple[str, str, int]) -> tuple[Kind, str]:
    kind_name, value, pos = token
    if kind_name != "field":
        raise _error(text, pos, f"expected a field such as metrics.auc, got {value!r}")
    prefix, dot, key = value.partition(".")
    if not dot:
        if value in ATTRIBUTES:
            return "attributes", value
        raise _error(
            text,
            pos,
            f"{value!r} is not a field; write metrics.{value}, params.{value} or tags.{value}",
        )
    kind = _KINDS.get(prefix.lower())
    if kind is None:
        raise _error(
            text, pos, f"unknown field prefix {prefix!r}; use metrics, params, tags or attributes"
        )
    key = key.strip("`")
    if kind == "attributes":
        key = {"name": "run_name"}.get(key, key)
        if key not in ATTRIBUTES:
            raise _error(
                text, pos, f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}"
            )
    return kind, key


def _comparison(tokens: _Tokens) -> Comparison:
    text = tokens.text
    field_token = tokens.next("a field")
    kind, key = _field(text, field_token)
    op_token = tokens.peek()
    if tokens.keyword("NOT"):
        if not tokens.keyword("IN"):
            raise _error(text, tokens.next("IN")[2], "expected IN after NOT")
        op = "NOT IN"
    elif tokens.keyword("IN"):
        op = "IN"
    elif tokens.keyword("LIKE", "ILIKE"):
        op = tokens.items[tokens.index - 1][1].upper()
    else:
        kind_name, raw, pos = tokens.next("an operator")
        if kind_name != "op":
            raise _error(
                text, pos, f"expected an operator (=, !=, <, <=, >, >=, LIKE, IN), got {raw!r}"
            )
        op = {"==": "=", "<>": "!="}.get(raw, raw)
    numeric = kind == "metrics" or (kind == "attributes" and key in _NUMERIC_ATTRIBUTES)
    allowed = _ALL_OPS - {"LIKE", "ILIKE"} if numeric else _STRING_OPS
    if op not in allowed:
        assert op_token is not None
        raise _error(
            text,
            op_token[2],
            f"{op} does not apply to {kind}.{key}; use one of {', '.join(sorted(allowed))}",
        )
    if op in ("IN", "NOT IN"):
        opening = tokens.next("'('")
        if opening[1] != "(":
            raise _error(text, opening[2], f"expected '(' after {op}")
        values = [_value(tokens, numeric)]
        while (sep := tokens.next("',' or ')'"))[1] == ",":
            values.append(_value(tokens, numeric))
        if sep[1] != ")":
            raise _error(text, sep[2], f"expected ',' or ')', got {sep[1]!r}")
        return Comparison(kind, key, op, tuple(values))  # type: ignore[arg-type]
    return Comparison(kind, key, op, _value(tokens, numeric))  # type: ignore[arg-type]


def _value(tokens: _Tokens, numeric: bool) -> str | float:
    kind_name, raw, pos = tokens.next("a value")
    if numeric:
        if kind_name != "number":
            raise _error(tokens.text, pos, f"expected a number, got {raw!r}")
        return float(raw)
    if kind_name != "string":
        raise _error(tokens.text, pos, f"expected a quoted string such as 'lr', got {raw!r}")
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def parse_order_by(clauses: Sequence[str] | None) -> list[OrderBy]:
    result = []
    for clause in clauses or ():
        parts = clause.strip().rsplit(None, 1)
        direction = "ASC"
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            clause, direction = parts[0], parts[1].upper()
        tokens = _Tokens(clause.strip())
        token = tokens.next("a field")
        if tokens.peek() is not None:
            raise InvalidInput(
                f"Bad order_by clause {clause!r}.",
                hint="Write a field and an optional direction, such as 'metrics.auc DESC'.",
            )
        kind, key = _field(clause, token)
        result.append(OrderBy(kind, key, direction == "DESC"))
    return result
