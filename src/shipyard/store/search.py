"""Run search: a small filter/ordering tree compiled to SQL.

Metric conditions look at each run's latest point through the
``latest_metrics`` table and its (key, value) index, so a filter over many
thousands of runs reads only the rows it needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, exists, false, not_, or_, select

from shipyard.store import runs as runs_repo
from shipyard.store._schema import latest_metrics, params, runs, tags

Kind = Literal["metrics", "params", "tags", "attributes"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN"]

ATTRIBUTES = {
    "run_id": runs.c.run_id,
    "run_name": runs.c.name,
    "status": None,  # computed: see runs.effective_status
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "created_by": runs.c.created_by,
    "parent_run_id": runs.c.parent_run_id,
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    kind: Kind
    key: str
    op: Op
    value: Any  # str, float, or a tuple for IN / NOT IN


@dataclasses.dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    operands: tuple[Expr, ...]


Expr = Comparison | BoolOp


@dataclasses.dataclass(frozen=True)
class OrderBy:
    kind: Kind
    key: str
    descending: bool


def _compare(column: Any, op: Op, value: Any) -> ColumnElement[bool]:
    match op:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "LIKE":
            return column.like(value)
        case "ILIKE":
            return column.ilike(value)
        case "IN":
            return column.in_(value)
        case "NOT IN":
            return column.not_in(value)


def _compile(expr: Expr, stale_before: int) -> ColumnElement[bool]:
    if isinstance(expr, BoolOp):
        parts = [_compile(e, stale_before) for e in expr.operands]
        return and_(*parts) if expr.op == "and" else or_(*parts)
    if expr.kind == "attributes":
        column = (
            runs_repo.effective_status(stale_before)
            if expr.key == "status"
            else ATTRIBUTES[expr.key]
        )
        return _compare(column, expr.op, expr.value)
    if expr.kind == "metrics":
        if isinstance(expr.value, float) and expr.value != expr.value:
            return false()  # nothing compares true against NaN
        return exists().where(
            latest_metrics.c.run_pk == runs.c.pk,
            latest_metrics.c.key == expr.key,
            not_(latest_metrics.c.is_nan),
            _compare(latest_metrics.c.value, expr.op, expr.value),
        )
    table = params if expr.kind == "params" else tags
    return exists().where(
        table.c.run_pk == runs.c.pk,
        table.c.key == expr.key,
        _compare(table.c.value, expr.op, expr.value),
    )


def search(
    conn: Connection,
    *,
    experiment_ids: Sequence[str] | None,
    where: Expr | None,
    order_by: Sequence[OrderBy],
    limit: int,
    offset: int,
    stale_before: int,
) -> tuple[list[int], bool]:
    """Run primary keys of one page, and whether more pages follow."""
    query = select(runs.c.pk)
    if experiment_ids is not None:
        query = query.where(runs.c.experiment_id.in_([int(e) for e in experiment_ids]))
    if where is not None:
        query = query.where(_compile(where, stale_before))
    ordering: list[Any] = []
    for index, order in enumerate(order_by):
        if order.kind == "attributes":
            column: Any = (
                runs_repo.effective_status(stale_before)
                if order.key == "status"
                else ATTRIBUTES[order.key]
            )
        else:
            table = {"metrics": latest_metrics, "params": params, "tags": tags}[order.kind]
            alias = table.alias(f"order_{index}")
            query = query.outerjoin(
                alias, and_(alias.c.run_pk == runs.c.pk, alias.c.key == order.key)
            )
            column = alias.c.value
        # Runs without the key sort last in both directions.
        ordering.append(column.is_(None))
        ordering.append(column.desc() if order.descending else column.asc())
    ordering += [runs.c.start_time.desc(), runs.c.pk.desc()]
    query = query.order_by(*ordering).limit(limit + 1).offset(offset)
    pks = list(conn.execute(query).scalars())
    return pks[:limit], len(pks) > limit
