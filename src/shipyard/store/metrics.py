"""Metric points: appended in batches, with a per-run table of each key's latest point."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from sqlalchemy import Connection, Row, or_, select

from shipyard.store._schema import latest_metrics, metrics
from shipyard.store._sql import upsert
from shipyard.store.entities import Metric

#: (run_pk, key, value, step, timestamp_ms)
Point = tuple[int, str, float, int, int]


_COLUMNS = ("run_pk", "key", "value", "is_nan", "step", "timestamp")


@functools.cache
def _insert_sql(paramstyle: str) -> str:
    marker = "?" if paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {metrics.name} ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(_COLUMNS))}) ON CONFLICT DO NOTHING"
    )


def to_metric(row: Row) -> Metric:
    return Metric(
        key=row.key,
        value=math.nan if row.is_nan else row.value,
        step=row.step,
        timestamp=row.timestamp,
    )


def append(conn: Connection, points: Sequence[Point]) -> None:
    """Insert ``points`` and move each (run, key)'s latest point forward, in one transaction."""
    if not points:
        return
    rows = []
    latest: dict[tuple[int, str], tuple] = {}
    for run_pk, key, value, step, timestamp in points:
        is_nan = value != value
        row = (run_pk, key, 0.0 if is_nan else value, is_nan, step, timestamp)
        rows.append(row)
        best = latest.get((run_pk, key))
        if best is None or (step, timestamp) >= (best[4], best[5]):
            latest[(run_pk, key)] = row
    # The hot path: the driver's own executemany, without per-row work in SQLAlchemy.
    conn.exec_driver_sql(_insert_sql(conn.dialect.paramstyle), rows)
    upsert_latest = upsert(
        conn.dialect.name,
        latest_metrics,
        index=("run_pk", "key"),
        update_columns=("value", "is_nan", "step", "timestamp"),
        where=_is_newer,
    )
    latest_rows = [dict(zip(_COLUMNS, row, strict=True)) for row in latest.values()]
    for row in latest_rows:
        if row["is_nan"]:
            row["value"] = None  # NULL sorts a NaN metric last when ordering by it
    conn.execute(upsert_latest, latest_rows)


def _is_newer(incoming, current):  # type: ignore[no-untyped-def]
    return or_(
        incoming.step > current.step,
        (incoming.step == current.step) & (incoming.timestamp >= current.timestamp),
    )


def history(conn: Connection, run_pk: int, key: str) -> list[Metric]:
    query = (
        select(
            metrics.c.key, metrics.c.value, metrics.c.is_nan, metrics.c.step, metrics.c.timestamp
        )
        .where(metrics.c.run_pk == run_pk, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.value)
    )
    return [to_metric(row) for row in conn.execute(query)]
